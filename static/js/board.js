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
    if (!el) return;
    if (window.Sortable) {
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
            move(evt.item, evt.to.dataset.stage).then(function (ok) {
              var select = ok && evt.item.querySelector("select.move-select");
              if (select) fillOptions(select);
            });
          }
        });
      });
    }
    el.querySelectorAll("select.move-select").forEach(function (select) {
      if (select.dataset.ready) return;
      select.dataset.ready = "1";
      fillOptions(select);
    });
    updateScroll();
  }

  // The menu lists every stage of the line but the card's own.
  function fillOptions(select) {
    var options = document.getElementById("move-options");
    if (!options) return;
    var current = select.closest(".deal-card").dataset.stage;
    while (select.options.length > 1) select.remove(1);
    Array.prototype.forEach.call(options.content.children, function (option) {
      if (option.value !== current) select.appendChild(option.cloneNode(true));
    });
  }

  // The card's menu ("Move to…"): the arrow keys only choose (a closed select changes its value
  // on every arrow press); Enter moves the card, Escape or leaving the menu puts it back.
  // A pick with the mouse, or from the opened list, is deliberate and moves at once.
  var CHOOSING_KEYS = ["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home", "End", "PageUp", "PageDown"];

  function moveSelect(target) {
    return target && target.closest ? target.closest("select.move-select") : null;
  }

  function setPending(select, on) {
    select.classList.toggle("pending", on);
    var card = select.closest(".deal-card");
    var hint = card && card.querySelector(".move-pending-hint");
    if (on && !hint && card) {
      hint = document.createElement("p");
      hint.className = "move-pending-hint";
      hint.setAttribute("aria-hidden", "true");  // screen readers hear #move-hint, the select's description
      hint.textContent = board().dataset.moveHint || "";
      card.appendChild(hint);
    } else if (!on && hint) {
      hint.remove();
    }
  }

  function cancelChoice(select) {
    select.value = "";
    delete select.dataset.choosing;
    setPending(select, false);
  }

  function commit(select) {
    var toStage = select.value;
    var card = select.closest(".deal-card");
    cancelChoice(select);
    var target = board().querySelector('ol.cards[data-stage="' + toStage + '"]');
    if (!toStage || !target) return;
    target.insertBefore(card, target.firstElementChild);
    move(card, toStage).then(function (ok) {
      var again = document.querySelector("#deal-" + card.dataset.deal + " select.move-select");
      if (!again) return;
      if (ok) fillOptions(again);
      again.focus();
    });
  }

  document.addEventListener("keydown", function (event) {
    var select = moveSelect(event.target);
    if (!select) return;
    if (event.key === "Enter") {
      event.preventDefault();
      if (select.value) commit(select);
    } else if (event.key === "Escape") {
      if (select.value) {
        event.preventDefault();
        cancelChoice(select);
      }
    } else if (event.altKey || event.key === " " || event.key === "F4") {
      delete select.dataset.choosing;  // these open the list: what is picked there counts
    } else if (CHOOSING_KEYS.indexOf(event.key) >= 0 || event.key.length === 1) {
      select.dataset.choosing = "1";
    }
  });

  document.addEventListener("pointerdown", function (event) {
    var select = moveSelect(event.target);
    if (select) delete select.dataset.choosing;
  });

  document.addEventListener("change", function (event) {
    var select = moveSelect(event.target);
    if (!select) return;
    if (select.dataset.choosing) {
      setPending(select, !!select.value);
      return;
    }
    if (select.value) commit(select);
  });

  document.addEventListener("focusout", function (event) {
    var select = moveSelect(event.target);
    if (select && select.value) cancelChoice(select);
  });

  // Horizontal scroll: edge shadows and arrow buttons show while there is more to either side.
  function updateScroll() {
    var el = board();
    var wrap = el && el.closest(".board-scroller");
    if (!wrap) return;
    var max = el.scrollWidth - el.clientWidth;
    var left = el.scrollLeft > 1;
    var right = el.scrollLeft < max - 1;
    wrap.classList.toggle("more-left", left);
    wrap.classList.toggle("more-right", right);
    wrap.querySelectorAll("[data-board-scroll]").forEach(function (button) {
      button.hidden = button.dataset.boardScroll === "-1" ? !left : !right;
    });
  }

  document.addEventListener("scroll", function (event) {
    if (event.target.id === "board-columns") updateScroll();
  }, true);
  window.addEventListener("resize", updateScroll);

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-board-scroll]");
    var el = board();
    if (!button || !el) return;
    var columns = el.querySelectorAll(".column");
    if (columns.length < 2) return;
    // a page at a time less one column (the edge column stays in view), ending on a column's edge
    var step = columns[1].offsetLeft - columns[0].offsetLeft;
    var pages = Math.max(1, Math.floor(el.clientWidth / step) - 1);
    var first = Math.round(el.scrollLeft / step) + Number(button.dataset.boardScroll) * pages;
    el.scrollTo({ left: Math.max(0, first) * step, behavior: "smooth" });
  });

  // Don't swap the board under a card being dragged; the next poll catches up.
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (dragging && event.detail.elt && event.detail.elt.id === "board-columns") event.preventDefault();
  });
  document.addEventListener("htmx:afterSettle", initBoard);
  document.addEventListener("DOMContentLoaded", initBoard);
})();
