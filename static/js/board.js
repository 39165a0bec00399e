// The kanban board: drag cards (SortableJS) or move them with the card's menu (keyboard).
// A move carries the stage and version the user saw; a 409 means someone was faster.
(function () {
  "use strict";
  var dragging = false;

  function board() { return document.getElementById("board-columns"); }
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }
  function status(text, isError) {
    var box = document.getElementById("board-status");
    if (!box) return;
    box.textContent = text;
    box.classList.toggle("error", !!isError);
    box.hidden = false;
    clearTimeout(box._timer);
    box._timer = setTimeout(function () { box.hidden = true; }, 6000);
  }
  function refreshTotals() {
    var el = board();
    if (el && window.htmx) window.htmx.ajax("GET", el.dataset.totalsUrl, { target: "#board-status", swap: "none" });
  }
  function reloadBoard() {
    if (window.htmx) window.htmx.trigger(document.body, "board-stale");
  }
  function cardSibling(card, direction) {
    var node = direction < 0 ? card.previousElementSibling : card.nextElementSibling;
    while (node && !node.classList.contains("deal-card")) {
      node = direction < 0 ? node.previousElementSibling : node.nextElementSibling;
    }
    return node ? node.dataset.deal : "";
  }

  function move(card, toStage) {
    var el = board();
    var body = new URLSearchParams({
      stage: toStage,
      seen_stage: card.dataset.stage,
      seen_version: card.dataset.version,
      before: cardSibling(card, -1),
      after: cardSibling(card, 1)
    });
    var url = el.dataset.moveUrl.replace("/0/", "/" + card.dataset.deal + "/");
    card.classList.add("saving");
    return fetch(url, {
      method: "POST",
      headers: { "X-CSRFToken": csrf(), "Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true" },
      body: body,
      credentials: "same-origin"
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        card.classList.remove("saving");
        if (response.ok) {
          card.dataset.stage = data.stage;
          card.dataset.version = data.version;
          refreshTotals();
          return true;
        }
        status(data.error || card.dataset.errorText || "Error", true);
        reloadBoard();
        return false;
      });
    }).catch(function () {
      card.classList.remove("saving");
      status(document.documentElement.lang === "ru" ? "Нет связи с сервером: ход не сохранён." : "No connection: the move was not saved.", true);
      reloadBoard();
    });
  }

  function initBoard() {
    var el = board();
    if (!el || !window.Sortable) return;
    el.querySelectorAll("ol.cards").forEach(function (list) {
      if (list.dataset.ready) return;
      list.dataset.ready = "1";
      window.Sortable.create(list, {
        group: "board-" + el.dataset.funnel,
        draggable: ".deal-card",
        filter: "a, select, .move-menu",
        preventOnFilter: false,
        animation: 120,
        onStart: function () { dragging = true; },
        onEnd: function (evt) {
          dragging = false;
          if (evt.from === evt.to && evt.oldIndex === evt.newIndex) return;
          move(evt.item, evt.to.dataset.stage);
        }
      });
    });
    var options = document.getElementById("move-options");
    el.querySelectorAll("select.move-select").forEach(function (select) {
      if (select.dataset.ready || !options) return;
      select.dataset.ready = "1";
      var current = select.closest(".deal-card").dataset.stage;
      Array.prototype.forEach.call(options.content.children, function (option) {
        if (option.value !== current) select.appendChild(option.cloneNode(true));
      });
    });
  }

  // The card's menu: move to the top of another column, by keyboard or mouse.
  document.addEventListener("change", function (event) {
    var select = event.target.closest("select.move-select");
    if (!select || !select.value) return;
    var card = select.closest(".deal-card");
    var target = board().querySelector('ol.cards[data-stage="' + select.value + '"]');
    if (!target) return;
    target.insertBefore(card, target.firstElementChild);
    move(card, select.value).then(function () {
      var again = document.querySelector('#deal-' + card.dataset.deal + ' select.move-select');
      if (again) again.focus();
    });
    select.value = "";
  });

  // Don't swap the board under a card being dragged; the next poll catches up.
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (dragging && event.detail.elt && event.detail.elt.id === "board-columns") event.preventDefault();
  });
  document.addEventListener("htmx:afterSettle", initBoard);
  document.addEventListener("DOMContentLoaded", initBoard);
})();
