// Voronka: small behaviours on top of htmx. No inline scripts (CSP).
(function () {
  "use strict";

  function modal() { return document.getElementById("modal"); }

  // Every htmx request carries the CSRF token (attribute inheritance is off: nothing leaks
  // from an ancestor's hx-target or hx-swap into a nested element by accident).
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) event.detail.headers["X-CSRFToken"] = meta.content;
  });

  // Anything htmx loads into the modal body opens the dialog; [data-close-modal] closes it.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id === "modal-body") {
      var dialog = modal();
      if (!dialog.open) dialog.showModal();
      var first = dialog.querySelector("[autofocus], input:not([type=hidden]), select, textarea, button");
      if (first) first.focus();
    }
    initBulk();
  });
  // New content (an outerHTML swap replaces its target): make its lists sortable.
  document.addEventListener("htmx:afterSettle", function () { initSortables(document); });
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-close-modal]")) {
      modal().close();
    }
  });
  document.addEventListener("close", function (event) {
    if (event.target.id === "modal") document.getElementById("modal-body").innerHTML = "";
  }, true);

  // Column settings: drag with SortableJS, or move with the arrow buttons (keyboard).
  function initSortables(root) {
    (root || document).querySelectorAll("[data-sortable]").forEach(function (list) {
      if (list.dataset.sortableReady) return;
      list.dataset.sortableReady = "1";
      if (window.Sortable) {
        window.Sortable.create(list, {
          handle: list.dataset.handle || ".handle", animation: 120, draggable: ".sortable-item",
          onEnd: function (evt) {
            // Lists tied to an order form (funnel settings) save as soon as the drag ends.
            var form = list.dataset.orderForm && document.getElementById(list.dataset.orderForm);
            if (form && evt.oldIndex !== evt.newIndex) form.requestSubmit();
          }
        });
      }
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-move]");
    if (!button) return;
    var item = button.closest(".sortable-item");
    if (button.dataset.move === "up" && item.previousElementSibling) {
      item.parentNode.insertBefore(item, item.previousElementSibling);
    } else if (button.dataset.move === "down" && item.nextElementSibling) {
      item.parentNode.insertBefore(item.nextElementSibling, item);
    }
    button.focus();
  });

  // Mass actions: tick rows (or the whole page, or every client matching the filter).
  function initBulk() {
    var form = document.getElementById("bulk-form");
    if (!form || form.dataset.ready) return;
    form.dataset.ready = "1";
    var bar = document.getElementById("bulk-bar");
    var countEl = document.getElementById("bulk-count");
    var scope = document.getElementById("bulk-scope");
    var all = document.getElementById("check-all");
    var everything = document.getElementById("bulk-all");
    var boxes = function () { return form.querySelectorAll("input[name=ids]"); };
    function refresh() {
      if (!bar) return;
      var ticked = form.querySelectorAll("input[name=ids]:checked").length;
      bar.hidden = ticked === 0;
      if (scope.value === "filter") {
        countEl.textContent = form.dataset.allLabel;
      } else {
        countEl.textContent = form.dataset.tickedLabel + ": " + ticked;
      }
      if (everything) everything.hidden = !(all && all.checked) || scope.value === "filter";
    }
    form.addEventListener("change", function (event) {
      if (event.target === all) {
        boxes().forEach(function (box) { box.checked = all.checked; });
      }
      if (event.target.name === "ids" || event.target === all) scope.value = "ids";
      refresh();
    });
    if (everything) {
      everything.addEventListener("click", function () { scope.value = "filter"; refresh(); });
    }
    refresh();
  }

  // Tabs ([data-tabs]): buttons with aria-controls show one panel at a time; arrows move along.
  document.addEventListener("click", function (event) {
    var tab = event.target.closest("[data-tabs] [role=tab]");
    if (!tab) return;
    var bar = tab.closest("[data-tabs]");
    bar.querySelectorAll("[role=tab]").forEach(function (other) {
      var selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      var panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) panel.hidden = !selected;
    });
  });

  // Merge page (seed 004's «Копировать»): "Copy →" keeps the left client's value for that field.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-merge-copy]");
    if (!button) return;
    var left = button.closest("[data-merge-row]").querySelector("input[type=radio][value=other]");
    if (left) { left.checked = true; left.focus(); }
  });

  // Layout editor: the trash marks a row deleted (saved with the form) and hides it.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-delete-row]");
    if (!button) return;
    var row = button.closest(".layout-row");
    row.querySelector(".delete-flag").value = "1";
    row.hidden = true;
  });

  // A textarea with data-counter shows how many characters are used.
  document.addEventListener("input", function (event) {
    var area = event.target;
    if (!area.dataset || !area.dataset.counter) return;
    var counter = document.getElementById(area.dataset.counter);
    if (counter) counter.textContent = area.value.length + " / " + area.maxLength;
  });

  // The comment box's @mention autocomplete: a chosen colleague replaces the @word being typed.
  document.addEventListener("click", function (event) {
    var option = event.target.closest("[data-mention]");
    if (!option) return;
    var area = document.getElementById("comment-text");
    if (!area) return;
    area.value = area.value.replace(/@[^\s@]*$/, "@" + option.dataset.mention + " ");
    area.dispatchEvent(new Event("input", { bubbles: true }));
    area.focus();
  });

  // Clients table: "+" lists the row's deals under it, "−" hides them (seed 002).
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-expand]");
    if (!button) return;
    var row = button.closest("tr");
    var open = button.getAttribute("aria-expanded") === "true";
    if (open) {
      var next = row.nextElementSibling;
      if (next && next.classList.contains("deals-row")) next.remove();
      button.setAttribute("aria-expanded", "false");
      button.textContent = "+";
      return;
    }
    button.setAttribute("aria-expanded", "true");
    button.textContent = "−";
    window.htmx.ajax("GET", button.dataset.expand, { target: row, swap: "afterend" });
  });

  // Shifts (issue 14): the running clock, and what a shift button did, said in a toast.
  function tickShiftClocks() {
    var now = Date.now() / 1000;
    document.querySelectorAll("[data-shift-clock]").forEach(function (clock) {
      var worked = Math.max(0, Math.floor((now - Number(clock.dataset.started) - Number(clock.dataset.paused || 0)) / 60));
      var hours = Math.floor(worked / 60), minutes = worked % 60;
      var ru = document.documentElement.lang === "ru";
      var mm = (minutes < 10 ? "0" : "") + minutes;
      clock.textContent = hours ? hours + (ru ? " ч " : " h ") + mm + (ru ? " мин" : " min") : minutes + (ru ? " мин" : " min");
    });
  }
  setInterval(tickShiftClocks, 30000);
  var toastTimer = null;
  function toast(text, isError) {
    var box = document.getElementById("app-toast");
    if (!box || !text) return;
    box.textContent = text;
    box.classList.toggle("error", !!isError);
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { box.hidden = true; }, 4000);
  }
  document.addEventListener("shift-changed", function (event) {
    var detail = event.detail || {};
    toast(detail.text, detail.ok === false);
  });

  // A new notification (a deal given to me…): a short sound, if My settings allow it.
  var lastUnread = null;
  document.addEventListener("htmx:afterSwap", function (event) {
    // the bell is swapped outerHTML: the element now in the page is the new one, not event.detail.target
    var bell = document.getElementById("bell-count");
    if (!bell || bell.dataset.unread === undefined) return;
    var unread = Number(bell.dataset.unread);
    if (lastUnread !== null && unread > lastUnread && document.body.dataset.sound === "on") chime();
    lastUnread = unread;
  });
  function chime() {
    try {
      var Audio = window.AudioContext || window.webkitAudioContext;
      var context = new Audio();
      var tone = context.createOscillator(), gain = context.createGain();
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.08, context.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.0001, context.currentTime + 0.4);
      tone.connect(gain).connect(context.destination);
      tone.start();
      tone.stop(context.currentTime + 0.4);
      document.body.dataset.chimed = String(Number(document.body.dataset.chimed || 0) + 1);
    } catch (error) { /* no sound where audio is not allowed */ }
  }

  document.addEventListener("DOMContentLoaded", function () {
    initSortables(document);
    initBulk();
  });
})();
