// Robots (issue 16): the robot form shows only the fields of each action's kind and adds or removes
// action rows (a copy of the formset's empty form); the Robots view announces what was saved and
// keeps the focus on the button that moved a robot. Without this script every field shows and
// "Add an action" posts the form back with one more row.
(function () {
  "use strict";

  // The robot form ------------------------------------------------------------------------------

  function showKind(row) {
    var select = row.querySelector("[data-action-kind]");
    var kind = select ? select.value : "";
    row.querySelectorAll("[data-kinds]").forEach(function (box) {
      var kinds = box.dataset.kinds.split(" ");
      box.hidden = kinds.indexOf(kind) === -1;
    });
  }

  function showWhen(form) {
    var trigger = form.querySelector("select[name=trigger]");
    var idle = form.querySelector("[data-when-idle]");
    if (trigger && idle) idle.hidden = trigger.value !== "idle";
  }

  function initRow(row) {
    var remove = row.querySelector(".action-remove");
    var box = remove && remove.querySelector("input[type=checkbox]");
    if (box && !row.querySelector("[data-remove-action]")) {
      // The "remove" checkbox becomes a button; the row is hidden and marked for deletion.
      remove.hidden = true;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "btn small danger";
      button.dataset.removeAction = "";
      button.textContent = remove.textContent.trim();
      remove.parentNode.appendChild(button);
      if (box.checked) row.hidden = true;
    }
    showKind(row);
  }

  function visibleRows(list) {
    return Array.prototype.filter.call(list.querySelectorAll("[data-action-row]"), function (row) { return !row.hidden; });
  }

  function initForm(form) {
    if (form.dataset.ready) return;
    form.dataset.ready = "1";
    var list = form.querySelector("#action-rows");
    var total = form.querySelector("input[name=actions-TOTAL_FORMS]");
    var template = document.getElementById("action-template");
    list.querySelectorAll("[data-action-row]").forEach(initRow);
    showWhen(form);

    form.addEventListener("change", function (event) {
      if (event.target.matches("[data-action-kind]")) showKind(event.target.closest("[data-action-row]"));
      if (event.target.matches("select[name=trigger]")) showWhen(form);
    });
    form.addEventListener("click", function (event) {
      var add = event.target.closest("[data-add-action]");
      if (add && template && total) {
        event.preventDefault();
        var index = parseInt(total.value, 10) || 0;
        var holder = document.createElement("ol");
        holder.innerHTML = template.innerHTML.replace(/__prefix__/g, String(index));
        var row = holder.querySelector("[data-action-row]");
        list.appendChild(row);
        total.value = String(index + 1);
        initRow(row);
        var first = row.querySelector("select, input, textarea");
        if (first) first.focus();
        return;
      }
      var remove = event.target.closest("[data-remove-action]");
      if (remove) {
        var gone = remove.closest("[data-action-row]");
        if (visibleRows(list).length <= 1) return; // a robot keeps at least one action
        gone.querySelector(".action-remove input[type=checkbox]").checked = true;
        gone.hidden = true;
        var next = visibleRows(list)[0];
        var focus = next && next.querySelector("select");
        if (focus) focus.focus();
      }
    });
  }

  // The Robots view -------------------------------------------------------------------------------

  function status(text) {
    var box = document.getElementById("robots-status");
    if (!box || !text) return;
    box.textContent = text;
    box.hidden = false;
    clearTimeout(box._timer);
    box._timer = setTimeout(function () { box.hidden = true; }, 4000);
  }

  document.addEventListener("robots-status", function (event) { status(event.detail && event.detail.text); });

  // A moved robot's arrow may be disabled at its new place: the focus goes to the other arrow.
  var lastMove = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var active = document.activeElement;
    lastMove = active && active.id ? active.id : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!lastMove) return;
    var again = document.getElementById(lastMove);
    if (again && again.disabled) {
      again = document.getElementById(lastMove.replace(/-(up|down)$/, function (_m, way) { return way === "up" ? "-down" : "-up"; }));
    }
    if (again && !again.disabled) again.focus();
    lastMove = null;
  });

  function init() {
    var form = document.getElementById("robot-form");
    if (form) initForm(form);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
