// Small enhancements on top of server-rendered pages and htmx swaps.
(function () {
  "use strict";

  // Keep keyboard focus and tell screen readers what changed when a swap
  // replaces the element that had focus (e.g. a child chip in the family bar).
  var focusedId = null;
  document.addEventListener("htmx:beforeSwap", function () {
    var active = document.activeElement;
    focusedId = active && active.id ? active.id : null;
  });
  // On a phone the family bar scrolls sideways: keep the focused child in view.
  function revealActiveChip() {
    var chip = document.querySelector(".family-bar .chip.is-active");
    if (chip && chip.scrollIntoView) chip.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
  document.addEventListener("DOMContentLoaded", revealActiveChip);

  document.addEventListener("htmx:afterSettle", function (event) {
    revealActiveChip();
    var trigger = event.detail && event.detail.requestConfig && event.detail.requestConfig.elt;
    var announce = trigger && trigger.getAttribute && trigger.getAttribute("data-announce");
    if (focusedId) {
      var again = document.getElementById(focusedId);
      if (again) again.focus();
    }
    var live = document.getElementById("live");
    if (live && announce) live.textContent = announce;
    var dashboard = document.getElementById("dashboard");
    if (dashboard && dashboard.dataset.title) document.title = dashboard.dataset.title;
  });
})();
