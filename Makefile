# Two commands for a new user: `make run` and `make test`. Both set up what
# they need: virtualenv, pinned dependencies, embedded PostgreSQL and Redis
# when DATABASE_URL / REDIS_URL are unset, the Stripe stand-in when no
# STRIPE_SECRET_KEY is set.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock | cksum | cut -d' ' -f1)

.PHONY: install run test lint lock bench drill clean-data

$(STAMP): requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python -m devtools run

test: install
	$(BIN)/python -m devtools test $(ARGS)

bench: install
	$(BIN)/python -m devtools bench $(ARGS)

drill: install
	$(BIN)/python -m devtools drill

# Ruff, the import rules (docs/architecture.md) and the types. mypy loads the
# settings (django-stubs) but never connects: the addresses are placeholders.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DEBUG=1 DATABASE_URL=postgresql://lint@localhost/lint REDIS_URL=redis://localhost/0 \
	  $(BIN)/mypy .

# Re-resolve the pinned dependencies from pyproject.toml.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install -q --upgrade pip
	.lockenv/bin/pip install -q '.[test]'
	(echo '# Pinned versions of every dependency (direct and transitive). Regenerate with `make lock`.'; \
	 .lockenv/bin/pip freeze --exclude family-portal) > requirements.lock
	rm -rf .lockenv

clean-data:
	rm -rf .data
