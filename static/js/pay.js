// Card entry with Stripe.js: the card goes to Stripe (a SetupIntent makes a
// PaymentMethod), our server only ever sees the PaymentMethod id. The
// SetupIntent is asked for when a new card is submitted (one per card entry,
// never on a page view). 3-D Secure is handled with confirmCardPayment; our
// server is then asked once for Stripe's answer and the payment page shows it.
(function () {
  "use strict";
  var form = document.getElementById("pay-form");
  if (!form) return;
  var newCard = document.getElementById("new-card");
  var newBank = document.getElementById("new-bank");

  function chosen() {
    var checked = form.querySelector('input[name="payment_method"]:checked');
    return checked ? checked.value : "new";
  }
  // A saved card chosen: the new card's fields are hidden (without this
  // script every field shows and the page still works).
  function toggle() {
    newCard.hidden = chosen() !== "new";
    if (newBank) newBank.hidden = chosen() !== "bank";
  }
  form.addEventListener("change", toggle);
  toggle();

  if (typeof Stripe === "undefined") return;
  var stripe = Stripe(form.dataset.key);
  var card = stripe.elements().create("card");
  card.mount("#card-element");
  var errorBox = document.getElementById("pay-error");
  var button = document.getElementById("pay-button");
  var pmInput = document.getElementById("stripe-pm");
  var csrf = form.querySelector('input[name="csrfmiddlewaretoken"]').value;
  // A new card typed: the PaymentMethod made for the previous one no longer applies.
  card.on("change", function () { pmInput.value = ""; });

  function show(id, message) {
    var box = document.getElementById(id);
    if (!box) return false;
    var item = box.querySelector("li");
    (item || box).textContent = message;
    box.hidden = false;
    return true;
  }
  function clear() {
    errorBox.hidden = true;
    ["card-error", "save-error", "holder-error", "iban-error", "mandate-error"].forEach(function (id) {
      var box = document.getElementById(id);
      if (box) box.hidden = true;
    });
  }
  function fail(message, field) {
    message = message || "Something went wrong. Nothing was charged; please try again.";
    if (!(field && show(field + "-error", message))) {
      errorBox.textContent = message;
      errorBox.hidden = false;
    }
    button.disabled = false;
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": csrf }
    });
  }

  async function newPaymentMethod() {
    var response = await post(form.dataset.setupUrl, new FormData());
    var setup = await response.json();
    if (!response.ok) throw new Error(setup.message);
    var result = await stripe.confirmCardSetup(setup.client_secret, { payment_method: { card: card } });
    if (result.error) throw new Error(result.error.message);
    var pm = result.setupIntent.payment_method;
    return typeof pm === "string" ? pm : pm.id;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    clear();
    button.disabled = true;
    if (chosen() === "new" && !pmInput.value) {
      try {
        pmInput.value = await newPaymentMethod();
      } catch (error) {
        return fail(error.message, "card");
      }
    }
    if (form.dataset.mode === "save") { form.submit(); return; }
    var response = await post(form.action || window.location.href, new FormData(form));
    var result;
    try { result = await response.json(); } catch (e) { window.location.reload(); return; }
    if (result.attempt) form.querySelector('input[name="attempt"]').value = result.attempt;
    if (!response.ok) {
      if (result.field === "card") pmInput.value = "";
      if (result.url && !result.field) { window.location.href = result.url; return; }
      return fail(result.message, result.field);
    }
    if (result.status === "requires_action" && result.client_secret) {
      await stripe.confirmCardPayment(result.client_secret);
      // Back from the bank: ask our server once to read Stripe's answer.
      try { await post(result.check, new FormData()); } catch (e) { /* the page polls */ }
    }
    window.location.href = result.url;
  });
})();
