/* bedcheck console: live progress and countdown, sortable tables, keyboard work in the queue and on a flag,
   reasons that fit the decision, drafts kept across a lost session, image zoom, the hospital picker.
   Plain script, no build step; every page works without it (forms post normally). */
(function () {
  "use strict";
  var POLL_MS = 1500;
  var BAR_WIDTH = 220;

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function text(el, value) { if (el) { el.textContent = String(value); } }
  function typing(event) {
    var tag = (event.target && event.target.tagName) || "";
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || event.target.isContentEditable;
  }
  function format(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (_, key) { return values[key] !== undefined ? values[key] : ""; });
  }

  function labels() {
    var node = document.getElementById("labels");
    try { return node ? JSON.parse(node.textContent) : {}; } catch (e) { return {}; }
  }

  /* --- dashboard: progress, per-hospital counts, devices not answering, countdown ---------------------- */
  function update(live, p) {
    var names = labels();
    live.dataset.status = p.status;
    var status = document.getElementById("campaign-status");
    text(status, names[p.status] || p.status);
    if (status) { status.className = "status-" + p.status; }
    text(document.getElementById("done"), p.done);
    text(document.getElementById("total"), p.total);
    text(document.getElementById("rate"), (p.verification_rate * 100).toFixed(1) + "%");
    Object.keys(p.counts).forEach(function (verdict) {
      var n = p.counts[verdict];
      var bar = $('#chart rect[data-verdict="' + verdict + '"]');
      if (bar) { bar.setAttribute("width", p.total ? (BAR_WIDTH * n / p.total).toFixed(1) : "0"); }
      text($('#chart [data-count="' + verdict + '"]'), n);
    });
    Object.keys(p.by_hospital).forEach(function (hid) {
      var row = $('#by-hospital tr[data-hospital-id="' + hid + '"]');
      if (!row) { return; }
      var counts = p.by_hospital[hid];
      var total = Object.keys(counts).reduce(function (s, k) { return s + counts[k]; }, 0);
      var bar = row.querySelector("progress");
      bar.max = total;
      bar.value = total - (counts.pending || 0);
      bar.parentNode.dataset.value = String(bar.value);
      $all("td[class^='h-']", row).forEach(function (cell) {
        var key = cell.className.slice(2);
        var value = key === "total" ? total : (counts[key] || 0);
        cell.dataset.value = String(value);
        text(cell, value);
      });
      row.classList.toggle("silent", Boolean(p.not_answering && p.not_answering[hid]));
    });
    var panel = document.getElementById("not-answering");
    if (panel) {
      var silent = p.not_answering || {};
      var list = panel.querySelector("ul");
      list.textContent = "";
      Object.keys(silent).forEach(function (hid) {
        var item = document.createElement("li");
        item.dataset.hospitalId = hid;
        item.textContent = ((names.hospitals || {})[hid] || hid) + ": " + format(names.not_fetched_n, { n: silent[hid] });
        list.appendChild(item);
      });
      panel.classList.toggle("hidden", Object.keys(silent).length === 0);
    }
    if (p.status !== "running") {
      var clock = document.getElementById("clock");
      if (clock && p.timed_out) {
        clock.innerHTML = "";
        var big = document.createElement("span");
        big.className = "big"; big.id = "ended"; big.textContent = names.ended_at_deadline;
        var summary = document.createElement("span");
        summary.id = "timed-out-summary"; summary.textContent = format(names.timed_out_summary, { n: p.unanswered });
        clock.appendChild(big); clock.appendChild(summary);
      } else if (clock && p.seconds_to_complete !== null) {
        clock.innerHTML = "";
        var secs = document.createElement("span");
        secs.className = "big"; secs.id = "seconds"; secs.textContent = String(Math.round(p.seconds_to_complete));
        clock.appendChild(secs); clock.appendChild(document.createTextNode(names.seconds_to_complete));
      }
    }
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

  function countdown(live) {
    var node = document.getElementById("countdown");
    var deadline = Date.parse(live.dataset.deadline || "");
    if (!node || isNaN(deadline)) { return; }
    function tick() {
      if (live.dataset.status !== "running" || !document.body.contains(node)) { return; }
      var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      var minutes = Math.floor(left / 60), seconds = left % 60;
      node.textContent = left > 0 ? minutes + ":" + (seconds < 10 ? "0" : "") + seconds : labels().deadline_passed;
      node.classList.toggle("soon", left > 0 && left <= 120);
      window.setTimeout(tick, 1000);
    }
    tick();
  }

  /* --- sortable tables (the per-hospital progress) ------------------------------------------------------ */
  function sortable(table) {
    $all("th[data-sort-key]", table).forEach(function (th, index) {
      th.tabIndex = 0;
      th.setAttribute("role", "button");
      function sortBy() {
        var numeric = th.hasAttribute("data-numeric");
        var descending = th.dataset.dir !== "desc";
        $all("th[data-sort-key]", table).forEach(function (other) { delete other.dataset.dir; });
        th.dataset.dir = descending ? "desc" : "asc";
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[index].dataset.value || a.cells[index].textContent;
          var y = b.cells[index].dataset.value || b.cells[index].textContent;
          var order = numeric ? (Number(x) - Number(y)) : x.localeCompare(y, undefined, { numeric: true });
          return descending ? -order : order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      }
      th.addEventListener("click", sortBy);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(); } });
    });
  }

  /* --- reasons that fit the chosen decision ------------------------------------------------------------ */
  function fitReasons(select, decision) {
    var chosen = select.options[select.selectedIndex];
    $all("option[data-for]", select).forEach(function (option) {
      var fits = option.dataset.for === decision;
      option.hidden = !fits;
      option.disabled = !fits;
    });
    if (chosen && chosen.dataset.for && chosen.dataset.for !== decision) { select.value = ""; }
  }

  /* --- the flag queue: j/k, x, Enter, /, select all, bulk ----------------------------------------------- */
  function queue(table) {
    var rows = $all("tbody tr", table);
    var current = -1;
    function focusRow(index) {
      if (!rows.length) { return; }
      current = Math.max(0, Math.min(rows.length - 1, index));
      rows.forEach(function (row, i) { row.classList.toggle("current", i === current); });
      var link = rows[current].querySelector("a.open");
      if (link) { link.focus(); }
    }
    document.addEventListener("keydown", function (e) {
      if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) { return; }
      if (e.key === "j" || e.key === "ArrowDown") { e.preventDefault(); focusRow(current + 1); }
      else if (e.key === "k" || e.key === "ArrowUp") { e.preventDefault(); focusRow(current - 1); }
      else if (e.key === "x" && current >= 0) {
        var box = rows[current].querySelector("input[type=checkbox]");
        if (box) { box.checked = !box.checked; box.dispatchEvent(new Event("change", { bubbles: true })); }
      } else if ((e.key === "o" || e.key === "Enter") && current >= 0 && document.activeElement.tagName !== "A") {
        rows[current].querySelector("a.open").click();
      } else if (e.key === "/") { e.preventDefault(); var q = document.getElementById("f-q"); if (q) { q.focus(); } }
    });
    var all = document.getElementById("select-all");
    function count() {
      text(document.getElementById("selected-count"), $all("input[name=ids]:checked", table).length);
    }
    if (all) {
      all.addEventListener("change", function () {
        $all("input[name=ids]", table).forEach(function (box) { box.checked = all.checked; });
        count();
      });
    }
    table.addEventListener("change", count);
    var to = document.getElementById("bulk-to"), reason = document.getElementById("bulk-reason");
    if (to && reason) {
      fitReasons(reason, to.value);
      to.addEventListener("change", function () { fitReasons(reason, to.value); });
    }
    count();
  }

  /* --- a flag: decision keys, Ctrl+Enter submits and opens the next ------------------------------------- */
  function reviewForm(form) {
    var reason = document.getElementById("reason");
    var radios = $all("input[name=to]", form);
    function chosen() { var r = radios.filter(function (x) { return x.checked; })[0]; return r ? r.value : ""; }
    radios.forEach(function (radio) { radio.addEventListener("change", function () { fitReasons(reason, chosen()); }); });
    fitReasons(reason, chosen());
    document.addEventListener("keydown", function (e) {
      if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
        e.preventDefault();
        var next = document.getElementById("submit-next");
        if (next) { next.click(); }
        return;
      }
      if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) { return; }
      var n = parseInt(e.key, 10);
      if (n >= 1 && n <= radios.length) {
        e.preventDefault();
        radios[n - 1].checked = true;
        fitReasons(reason, chosen());
        reason.focus();
      }
    });
  }

  /* --- drafts: what was typed survives a lost session and a sign-in ------------------------------------ */
  function drafts() {
    var store;
    try { store = window.sessionStorage; } catch (e) { return; }
    var cleared = document.body.dataset.clearDraft;
    if (cleared && /\/\d+$/.test(cleared)) {
      Object.keys(store).forEach(function (key) { if (key.indexOf("draft:" + cleared + ":") === 0) { store.removeItem(key); } });
    }
    $all("form[data-draft]").forEach(function (form) {
      $all("[data-draft-field]", form).forEach(function (field) {
        var key = "draft:" + form.dataset.draft + ":" + field.dataset.draftField;
        if (!field.value && store.getItem(key)) { field.value = store.getItem(key); }
        field.addEventListener("input", function () { store.setItem(key, field.value); });
      });
    });
  }

  /* --- zoom: the pictures of one group (enrolled beside captured) open together, side by side ---------- */
  function zoom() {
    var dialog = document.getElementById("zoom-dialog");
    if (!dialog || typeof dialog.showModal !== "function") { return; }
    var pair = dialog.querySelector(".zoom-pair");
    $all("a[data-zoom]").forEach(function (link) {
      link.addEventListener("click", function (e) {
        e.preventDefault();
        var group = link.closest(".faces");
        var links = group ? $all("a[data-zoom]", group) : [link];
        pair.textContent = "";
        links.forEach(function (other) {
          var figure = document.createElement("figure");
          var caption = other.closest("figure") && other.closest("figure").querySelector("figcaption");
          var img = document.createElement("img");
          img.src = other.href;
          img.alt = caption ? caption.textContent : "";
          if (caption) { var c = document.createElement("figcaption"); c.textContent = caption.textContent; figure.appendChild(c); }
          figure.appendChild(img);
          pair.appendChild(figure);
        });
        pair.style.setProperty("--n", String(links.length));
        dialog.showModal();
      });
    });
  }

  /* --- the launch form's hospital picker --------------------------------------------------------------- */
  function picker(box) {
    var search = document.getElementById("hospital-search");
    var boxes = $all("input[name=hospitals]", box);
    var scope = document.getElementById("scope-hospitals");
    function count() { text(document.getElementById("picked-count"), boxes.filter(function (b) { return b.checked; }).length); }
    search.addEventListener("input", function () {
      var needle = search.value.trim().toLowerCase();
      boxes.forEach(function (b) { b.closest("li").hidden = needle && b.dataset.name.toLowerCase().indexOf(needle) < 0; });
    });
    search.addEventListener("focus", function () { scope.checked = true; });
    box.addEventListener("change", function () { scope.checked = true; count(); });
    document.getElementById("pick-shown").addEventListener("click", function () {
      boxes.forEach(function (b) { if (!b.closest("li").hidden) { b.checked = true; } });
      scope.checked = true; count();
    });
    document.getElementById("pick-none").addEventListener("click", function () {
      boxes.forEach(function (b) { b.checked = false; }); count();
    });
    count();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("live");
    if (live && live.dataset.progressUrl) {
      countdown(live);
      window.setTimeout(function () { poll(live); }, POLL_MS);
    }
    $all("table.sortable").forEach(sortable);
    var table = document.getElementById("flag-table");
    if (table) { queue(table); }
    var form = document.getElementById("review-form");
    if (form) { reviewForm(form); }
    drafts();
    zoom();
    // On a phone the queue's filters fold away: the rows come first; a search typed stays open.
    var fold = document.getElementById("filters-fold");
    if (fold && window.matchMedia("(max-width: 640px)").matches && !($("#f-q") && $("#f-q").value)) {
      fold.removeAttribute("open");
    }
    var box = document.getElementById("hospital-picker");
    if (box) { picker(box); }
    $all("a[data-back]").forEach(function (link) {
      link.addEventListener("click", function (e) { if (window.history.length > 1) { e.preventDefault(); window.history.back(); } });
    });
    var path = window.location.pathname.split("/")[2] || "";
    var current = $('nav a[data-nav="' + path + '"]');
    if (current) { current.classList.add("active"); }
  });
}());
