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
    // Only the bar scrolls: scrollIntoView would also move the page (and,
    // inside a provider's website, the provider's page around the frame).
    var chip = document.querySelector(".family-bar .chip.is-active");
    var bar = chip && chip.closest("ul");
    if (!bar) return;
    var left = chip.getBoundingClientRect().left - bar.getBoundingClientRect().left + bar.scrollLeft;
    if (left < bar.scrollLeft) bar.scrollLeft = left;
    else if (left + chip.offsetWidth > bar.scrollLeft + bar.clientWidth) bar.scrollLeft = left + chip.offsetWidth - bar.clientWidth;
  }
  document.addEventListener("DOMContentLoaded", revealActiveChip);

  // "Report a problem" describes the page the parent is on now, also after
  // in-page navigation (htmx) changed the address: the server reads the
  // child from the page's address.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-report-problem]");
    if (!link) return;
    var url = new URL(link.href, window.location.href);
    url.search = "?page=" + encodeURIComponent(window.location.pathname + window.location.search);
    link.href = url.toString();
  });

  // A link whose swap failed (network, server error, or no answer in time)
  // still goes where it says: a full page load shows the page or the error,
  // never a click that silently did nothing.
  function followLink(event) {
    var elt = event.detail && event.detail.elt;
    var link = elt && elt.closest && elt.closest("a[href][hx-get]");
    if (link && link.getAttribute("href").charAt(0) !== "#") window.location.assign(link.href);
  }
  ["htmx:responseError", "htmx:sendError", "htmx:timeout"].forEach(function (name) {
    document.addEventListener(name, followLink);
  });

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

  // A payment page opened from the embedded portal reports success to it.
  function reportPaid() {
    if (window.opener && document.querySelector("#payment-status.payment-succeeded")) {
      try { window.opener.postMessage({ type: "portal:paid" }, location.origin); } catch (e) { /* closed */ }
    }
  }
  document.addEventListener("DOMContentLoaded", reportPaid);
  document.addEventListener("htmx:afterSettle", reportPaid);

  // --- Inside a provider's website (an iframe) ---------------------------------
  var embedded = window.self !== window.top;
  // Only the provider's own websites (the ones allowed to frame us) hear from us.
  var parentOrigins = (document.documentElement.dataset.frameOrigins || "").split(" ").filter(Boolean);
  function tell(message) {
    if (!embedded) return;
    parentOrigins.forEach(function (origin) { window.parent.postMessage(message, origin); });
  }
  function report() {
    tell({ type: "portal:height", height: document.documentElement.scrollHeight });
    tell({ type: "portal:path", path: location.pathname + location.search + location.hash });
  }
  if (embedded) {
    document.documentElement.classList.add("is-embedded");
    window.addEventListener("load", report);
    window.addEventListener("resize", report);
    document.addEventListener("htmx:afterSettle", report);
    if (window.ResizeObserver) new ResizeObserver(report).observe(document.body);
    // Paying happens top-level in a new tab (Stripe's card form and 3-D Secure
    // do not belong in a nested frame); the frame refreshes when the parent
    // comes back.
    document.addEventListener("click", function (event) {
      var link = event.target.closest && event.target.closest("a[data-handoff]");
      if (!link) return;
      event.preventDefault();
      // The login cookie here belongs to the provider's site: the new tab
      // continues with a single-use link minted now, on this click, for this
      // parent and this order. The tab opens at once (a pop-up must open on the
      // click itself) and goes to the link when it arrives.
      var tab = window.open("", "_blank");
      var body = new FormData();
      body.append("back", (location.ancestorOrigins && location.ancestorOrigins[0]) || document.referrer || "");
      var headers = { "Accept": "application/json" };
      try { headers["X-CSRFToken"] = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { /* none */ }
      fetch(link.dataset.handoff, { method: "POST", body: body, headers: headers, credentials: "same-origin" })
        .then(function (response) { if (!response.ok) throw new Error(String(response.status)); return response.json(); })
        .then(function (data) {
          if (tab) tab.location.href = data.url;
          else window.open(data.url, "_blank");
        })
        .catch(function () {
          if (tab) tab.location.href = link.href;
          else window.open(link.href, "_blank");
        });
    });
    // The payment tab tells us when it is done: refresh the money sections.
    window.addEventListener("message", function (event) {
      if (event.origin !== location.origin || !event.data || event.data.type !== "portal:paid") return;
      document.querySelectorAll("[data-refresh-on-return]").forEach(function (section) {
        htmx.ajax("GET", section.getAttribute("hx-get"), { target: section, swap: "outerHTML" });
      });
    });
    // Cookies refused in the frame: say so and offer the portal in a new tab.
    document.addEventListener("DOMContentLoaded", function () {
      var notice = document.getElementById("cookie-notice");
      if (notice && document.cookie.indexOf("csrftoken=") === -1) notice.hidden = false;
    });
  }
})();

// Character counters under bounded text fields (components/form_fields.html):
// the page says the limit without JavaScript; with it, the count follows
// what is typed. Screen readers hear it only when the limit is near.
(function () {
  "use strict";
  function update(counter, field, announce) {
    var max = parseInt(counter.getAttribute("data-max"), 10);
    var used = field.value.length;
    var over = used - max;
    var text = over > 0
      ? counter.getAttribute("data-over").replace("{over}", over)
      : counter.getAttribute("data-text").replace("{used}", used).replace("{max}", max);
    counter.textContent = text;
    counter.classList.toggle("is-over", over > 0);
    counter.setAttribute("aria-live", announce && used >= max * 0.9 ? "polite" : "off");
  }
  function wire(root) {
    (root || document).querySelectorAll(".char-count[data-for]").forEach(function (counter) {
      var field = document.getElementById(counter.getAttribute("data-for"));
      if (!field || field.dataset.counterWired) return;
      field.dataset.counterWired = "1";
      var described = (field.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      if (described.indexOf(counter.id) === -1) described.push(counter.id);
      field.setAttribute("aria-describedby", described.join(" "));
      update(counter, field, false);
      field.addEventListener("input", function () { update(counter, field, true); });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { wire(document); });
  document.addEventListener("htmx:afterSwap", function (event) { wire(event.target); });
})();
