// Funnel settings: names renamed in place, lists reordered by drag (SortableJS) or Alt+↑/↓ on a
// handle, actions in small "⋯" menus. Every write is a POST carrying the CSRF token; the server
// answers an htmx write with the piece it changed (or with the error and what was typed).
(function () {
  "use strict";

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function status(text, isError) {
    var box = document.getElementById("settings-status");
    if (!box || !text) return;
    box.textContent = text;
    box.classList.toggle("error", !!isError);
    box.hidden = false;
    clearTimeout(box._timer);
    box._timer = setTimeout(function () { box.hidden = true; }, isError ? 8000 : 4000);
  }

  // Rename in place -----------------------------------------------------------------------------

  function openEdit(box) {
    if (!box) return;
    var form = box.querySelector(".inline-edit-form");
    var show = box.querySelector("[data-inline-edit]");
    form.hidden = false;
    if (show) show.hidden = true;
    box.classList.add("editing");
    var input = form.querySelector("input[type=text]");
    input.focus();
    input.select();
  }

  function cancelEdit(box) {
    var form = box.querySelector(".inline-edit-form");
    var show = box.querySelector("[data-inline-edit]");
    var input = form.querySelector("input[type=text]");
    input.value = input.dataset.saved;
    input.removeAttribute("aria-invalid");
    var error = box.querySelector(".inline-error");
    if (error) error.remove();
    form.hidden = true;
    box.classList.remove("editing");
    if (show) {
      show.hidden = false;
      show.focus();
    }
  }

  document.addEventListener("click", function (event) {
    var show = event.target.closest("[data-inline-edit]");
    if (show) {
      openEdit(show.closest(".inline-edit"));
      return;
    }
    var menuItem = event.target.closest("[data-inline-edit-for]");
    if (menuItem) {
      closeMenus(null);
      openEdit(document.getElementById(menuItem.dataset.inlineEditFor));
      return;
    }
    var cancel = event.target.closest("[data-inline-cancel]");
    if (cancel) cancelEdit(cancel.closest(".inline-edit"));
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var form = event.target.closest && event.target.closest(".inline-edit-form");
    if (form) {
      event.preventDefault();
      cancelEdit(form.closest(".inline-edit"));
    }
  });

  // "⋯" menus and colour swatches (<details>): one open at a time, Escape or a click outside closes.

  function closeMenus(except) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (menu !== except) menu.open = false;
    });
  }

  document.addEventListener("click", function (event) {
    var menu = event.target.closest("details.menu");
    closeMenus(menu);
    if (menu && event.target.closest(".menu-items button")) {
      // the chosen action runs (htmx listens to the same click); the menu folds away
      setTimeout(function () { menu.open = false; }, 0);
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var menu = event.target.closest && event.target.closest("details.menu[open]");
    if (menu) {
      event.preventDefault();
      menu.open = false;
      menu.querySelector("summary").focus();
    }
  });

  // Reorder -------------------------------------------------------------------------------------

  function listOf(item) {
    return item && item.closest("[data-reorder-url]");
  }

  function items(list) {
    return Array.prototype.filter.call(list.children, function (child) {
      return child.matches(list.dataset.item);
    });
  }

  function order(list) {
    return items(list).map(function (item) { return item.dataset.key; });
  }

  function restore(list, keys) {
    keys.forEach(function (key) {
      var item = items(list).find(function (el) { return el.dataset.key === key; });
      if (item) list.appendChild(item);
    });
  }

  // Saves the list as shown; puts it back as it was when the server refuses.
  function save(list, before) {
    var body = new URLSearchParams();
    order(list).forEach(function (key) { body.append("order", key); });
    list.setAttribute("aria-busy", "true");
    return fetch(list.dataset.reorderUrl, {
      method: "POST",
      headers: { "X-CSRFToken": csrf(), "Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true" },
      body: body,
      credentials: "same-origin"
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        list.removeAttribute("aria-busy");
        if (response.ok) {
          status(data.text);
          return;
        }
        restore(list, before);
        status(data.error || list.dataset.errorText || response.statusText, true);
      });
    }).catch(function () {
      list.removeAttribute("aria-busy");
      restore(list, before);
      status(document.documentElement.lang === "ru" ? "Нет связи с сервером: порядок не сохранён." : "No connection: the order was not saved.", true);
    });
  }

  function step(item, direction) {
    var list = listOf(item);
    if (!list) return;
    var siblings = items(list);
    var index = siblings.indexOf(item);
    var target = siblings[index + direction];
    if (!target) return;
    var before = order(list);
    if (direction < 0) list.insertBefore(item, target);
    else list.insertBefore(item, target.nextSibling);
    save(list, before);
  }

  function initLists(root) {
    if (!window.Sortable) return;
    (root || document).querySelectorAll("[data-reorder-url]").forEach(function (list) {
      if (list.dataset.reorderReady) return;
      list.dataset.reorderReady = "1";
      var before = null;
      window.Sortable.create(list, {
        handle: list.dataset.handle,
        draggable: list.dataset.item,
        animation: 120,
        onStart: function () { before = order(list); closeMenus(null); },
        onEnd: function (evt) {
          if (evt.oldIndex !== evt.newIndex) save(list, before);
        }
      });
    });
  }

  // Keyboard: Alt+↑ / Alt+↓ on a handle moves its row; the handle keeps the focus.
  document.addEventListener("keydown", function (event) {
    var handle = event.target.closest && event.target.closest(".drag-handle");
    if (!handle || !event.altKey || (event.key !== "ArrowUp" && event.key !== "ArrowDown")) return;
    event.preventDefault();
    var list = handle.closest("[data-reorder-url]");
    var item = handle.closest(list.dataset.item);
    step(item, event.key === "ArrowUp" ? -1 : 1);
    handle.focus();
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-reorder-move]");
    if (!button) return;
    var list = button.closest("[data-reorder-url]");
    var item = button.closest(list.dataset.item);
    closeMenus(null);
    step(item, button.dataset.reorderMove === "up" ? -1 : 1);
    var handle = item.querySelector(list.dataset.handle);
    if (handle) handle.focus();
  });

  // htmx ------------------------------------------------------------------------------------------

  // The server names what it saved (HX-Trigger: settings-status); the status line announces it.
  document.addEventListener("settings-status", function (event) {
    status(event.detail && event.detail.text);
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    initLists(document);
    var target = event.detail.elt;
    if (!target || !target.querySelector || !document.contains(target)) return;
    var focus = target.matches("[data-autofocus]") ? target : target.querySelector("[data-autofocus], [aria-invalid=true]");
    if (!focus && (!document.activeElement || document.activeElement === document.body)) {
      // the edited piece was replaced: the focus goes back to its name
      focus = target.querySelector("[data-inline-edit]:not([hidden])");
    }
    if (focus) {
      focus.focus();
      if (focus.select) focus.select();
    }
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { initLists(document); });
  else initLists(document);
})();
