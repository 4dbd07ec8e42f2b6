// Embed the family portal in a provider's website:
//   <div data-family-portal="https://aquakids.example-portal.com/" data-section="bookings"></div>
//   <script src="https://aquakids.example-portal.com/static/js/embed.js" async></script>
// The frame grows to its content, deep links open a section, and the parent's
// place inside the portal survives a reload of the provider's page.
(function () {
  "use strict";
  var KEY = "family-portal-path";
  document.querySelectorAll("[data-family-portal]").forEach(function (holder) {
    var base = new URL(holder.getAttribute("data-family-portal"));
    var remembered = sessionStorage.getItem(KEY + ":" + base.origin);
    var section = holder.getAttribute("data-section");
    var src = new URL(remembered || "/", base);
    if (section && !remembered) src.hash = section;
    var frame = document.createElement("iframe");
    frame.src = src.href;
    frame.title = holder.getAttribute("data-title") || "Family portal";
    frame.style.cssText = "width:100%;border:0;min-height:480px;display:block";
    frame.setAttribute("allow", "payment");
    holder.appendChild(frame);
    window.addEventListener("message", function (event) {
      if (event.origin !== base.origin || !event.data || event.source !== frame.contentWindow) return;
      if (event.data.type === "portal:height") frame.style.height = Math.ceil(event.data.height) + "px";
      if (event.data.type === "portal:path") sessionStorage.setItem(KEY + ":" + base.origin, event.data.path);
    });
  });
})();
