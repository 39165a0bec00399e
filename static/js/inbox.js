// The inbox (issue 15): Enter sends, Shift+Enter starts a new line, "/" opens the quick replies
// (arrows to choose, Enter or Tab to insert, Escape to close); {name} and {manager} are filled in.
// The chat keeps its scroll at the bottom when new messages arrive, unless the reader scrolled up.
(function () {
  "use strict";

  function quickReplies() {
    var box = document.querySelector(".inbox");
    if (!box) return [];
    try { return JSON.parse(box.dataset.quickReplies || "[]"); } catch (e) { return []; }
  }

  function fill(text, area) {
    return text.replace(/\{name\}/g, area.dataset.clientName || "").replace(/\{manager\}/g, area.dataset.manager || "");
  }

  function menuFor(area) { return area.parentNode.querySelector(".quick-menu"); }

  function showMenu(area) {
    var menu = menuFor(area);
    if (!menu) return;
    var value = area.value;
    if (value.charAt(0) !== "/" || value.indexOf("\n") !== -1) { menu.hidden = true; return; }
    var typed = value.slice(1).toLowerCase();
    var found = quickReplies().filter(function (q) { return q.title.toLowerCase().indexOf(typed) === 0; }).slice(0, 8);
    menu.textContent = "";
    found.forEach(function (q, i) {
      var li = document.createElement("li");
      li.setAttribute("role", "option");
      li.dataset.text = q.text;
      li.textContent = "/" + q.title + " — " + q.text.slice(0, 80);
      if (i === 0) li.setAttribute("aria-selected", "true");
      li.addEventListener("mousedown", function (event) { event.preventDefault(); choose(area, li); });
      menu.appendChild(li);
    });
    menu.hidden = found.length === 0;
  }

  function choose(area, li) {
    area.value = fill(li.dataset.text, area);
    menuFor(area).hidden = true;
    area.focus();
  }

  function move(menu, step) {
    var items = Array.prototype.slice.call(menu.children);
    var at = items.findIndex(function (li) { return li.getAttribute("aria-selected") === "true"; });
    if (at >= 0) items[at].removeAttribute("aria-selected");
    at = (at + step + items.length) % items.length;
    items[at].setAttribute("aria-selected", "true");
  }

  document.addEventListener("input", function (event) {
    if (event.target.id === "composer-text") showMenu(event.target);
  });

  document.addEventListener("keydown", function (event) {
    var area = event.target;
    if (area.id !== "composer-text") return;
    var menu = menuFor(area);
    if (menu && !menu.hidden) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") { event.preventDefault(); move(menu, event.key === "ArrowDown" ? 1 : -1); return; }
      if (event.key === "Enter" || event.key === "Tab") {
        var chosen = menu.querySelector("[aria-selected=true]");
        if (chosen) { event.preventDefault(); choose(area, chosen); return; }
      }
      if (event.key === "Escape") { menu.hidden = true; return; }
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (area.value.trim() || (area.form.querySelector("input[type=file]") || {}).value) area.form.requestSubmit();
    }
  });

  function stick(list) {
    if (list) list.scrollTop = list.scrollHeight;
  }

  var nearBottom = true;
  document.addEventListener("scroll", function (event) {
    var list = event.target;
    if (list.id === "chat-messages") nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }, true);

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target.id === "chat" || (target.id === "chat-messages" && nearBottom)) {
      stick(document.getElementById("chat-messages"));
      if (target.id === "chat") {
        var area = document.getElementById("composer-text");
        if (area) area.focus();
      }
    }
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.elt && event.detail.elt.id === "chat-messages" && nearBottom) stick(event.detail.elt);
  });

  document.addEventListener("DOMContentLoaded", function () {
    stick(document.getElementById("chat-messages"));
    var current = document.querySelector(".conversation.is-current");
    if (current) current.scrollIntoView({ block: "nearest" });
  });
})();
