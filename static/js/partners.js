// Copy buttons (partners' postback URLs, the card's registration links): a button with
// data-copy="<input id>" copies that input's value; without the Clipboard API (plain http), the
// text is selected so Ctrl+C copies it. Delegated from the document: works in htmx-swapped blocks.
(function () {
  "use strict";
  function done(button) {
    var label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    button.textContent = button.dataset.copied || label;
    window.setTimeout(function () { button.textContent = label; }, 1500);
  }
  function selectIt(input) {
    input.focus();
    input.select();
    try { return document.execCommand("copy"); } catch (e) { return false; }
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var input = document.getElementById(button.dataset.copy);
    if (!input) return;
    event.preventDefault();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () { done(button); }, function () {
        if (selectIt(input)) done(button);
      });
    } else if (selectIt(input)) {
      done(button);
    }
  });
})();
