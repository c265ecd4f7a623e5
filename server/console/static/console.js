/* bedcheck console: live progress of the campaign on the dashboard (polls a JSON route; no build step). */
(function () {
  "use strict";
  var POLL_MS = 1500;
  var BAR_WIDTH = 220;

  function text(el, value) { if (el) { el.textContent = String(value); } }

  function labels() {
    var node = document.getElementById("labels");
    try { return node ? JSON.parse(node.textContent) : {}; } catch (e) { return {}; }
  }

  function update(live, p) {
    var names = labels();
    live.dataset.status = p.status;
    var status = document.getElementById("campaign-status");
    text(status, names[p.status] || p.status);
    if (status) { status.className = "status-" + p.status; }
    text(document.getElementById("done"), p.done);
    text(document.getElementById("total"), p.total);
    text(document.getElementById("rate"), (p.verification_rate * 100).toFixed(1) + "%");
    if (p.seconds_to_complete !== null) { text(document.getElementById("seconds"), Math.round(p.seconds_to_complete)); }
    Object.keys(p.counts).forEach(function (verdict) {
      var n = p.counts[verdict];
      var bar = document.querySelector('#chart rect[data-verdict="' + verdict + '"]');
      if (bar) { bar.setAttribute("width", p.total ? (BAR_WIDTH * n / p.total).toFixed(1) : "0"); }
      text(document.querySelector('#chart [data-count="' + verdict + '"]'), n);
    });
    Object.keys(p.by_hospital).forEach(function (hid) {
      var row = document.querySelector('#by-hospital tr[data-hospital-id="' + hid + '"]');
      if (!row) { return; }
      var counts = p.by_hospital[hid];
      var total = Object.keys(counts).reduce(function (s, k) { return s + counts[k]; }, 0);
      var bar = row.querySelector("progress");
      bar.max = total;
      bar.value = total - (counts.pending || 0);
      text(row.querySelector(".h-verified"), counts.verified || 0);
      text(row.querySelector(".h-total"), total);
    });
  }

  function poll(live) {
    if (live.dataset.status !== "running") { return; }
    fetch(live.dataset.progressUrl, { credentials: "same-origin", headers: { "accept": "application/json" } })
      .then(function (r) {
        if (r.redirected || r.status === 401) { window.location.reload(); return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (p) { if (p) { update(live, p); } })
      .catch(function () { /* network hiccup: try again at the next tick */ })
      .then(function () { window.setTimeout(function () { poll(live); }, POLL_MS); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("live");
    if (live && live.dataset.progressUrl) { window.setTimeout(function () { poll(live); }, POLL_MS); }
    var path = window.location.pathname.split("/")[2] || "";
    var current = document.querySelector('nav a[data-nav="' + path + '"]');
    if (current) { current.classList.add("active"); }
  });
}());
