"""The local Stripe stand-in: localstripe (a stateful fake of the Stripe API
with a fake Stripe.js and signed webhooks), extended where the portal depends
on Stripe's behaviour. Development tooling only: billing/ talks to it exactly
as it talks to Stripe.

    python -m devtools.stripe_standin --port 8420

What it adds to localstripe, module by module:
- idempotency.py: Idempotency-Key honoured for 24 h (replay, 400 on other
  parameters, 409 while running);
- behaviour.py: an in-memory store (constant-time calls), Stripe's decline
  codes, 402 authentication_required off-session, SEPA debits that stay
  processing until settled or failed, refund events;
- faults.py: 500s, timeouts and dropped connections on demand;
- app.py: the application, the /_test/ routes and the command line;
- cards.py: Stripe's test cards.
"""
