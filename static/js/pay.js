// Card entry with Stripe.js: the card goes to Stripe (a SetupIntent makes a
// PaymentMethod), our server only ever sees the PaymentMethod id. 3-D Secure
// is handled with confirmCardPayment; the payment page then polls the result.
(function () {
  "use strict";
  var form = document.getElementById("pay-form");
  if (!form || typeof Stripe === "undefined") return;
  var stripe = Stripe(form.dataset.key);
  var card = stripe.elements().create("card");
  card.mount("#card-element");
  var errorBox = document.getElementById("pay-error");
  var button = document.getElementById("pay-button");
  var newCard = document.getElementById("new-card");

  function chosen() {
    var checked = form.querySelector('input[name="payment_method"]:checked');
    return checked ? checked.value : "new";
  }
  function toggle() { newCard.hidden = chosen() !== "new"; }
  form.addEventListener("change", toggle);
  toggle();

  function fail(message) {
    errorBox.textContent = message || "Something went wrong. Nothing was charged; please try again.";
    errorBox.hidden = false;
    button.disabled = false;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    errorBox.hidden = true;
    button.disabled = true;
    if (chosen() === "new") {
      var setup = await stripe.confirmCardSetup(form.dataset.setupSecret, { payment_method: { card: card } });
      if (setup.error) return fail(setup.error.message);
      var pm = setup.setupIntent.payment_method;
      document.getElementById("stripe-pm").value = typeof pm === "string" ? pm : pm.id;
    }
    if (form.dataset.mode === "save") { form.submit(); return; }
    var response = await fetch(form.action || window.location.href, {
      method: "POST", body: new FormData(form), headers: { "Accept": "application/json" }, credentials: "same-origin"
    });
    if (!response.ok) { window.location.reload(); return; }
    var result = await response.json();
    if (result.status === "requires_action" && result.client_secret) {
      await stripe.confirmCardPayment(result.client_secret);
    }
    window.location.href = result.url + "?sync=1";
  });
})();
