// What every page's keyboard shortcuts share: a field that takes keys, where shortcuts never
// fire (radios, checkboxes, buttons and the like take none). Pages' scripts load after this one.
window.shikomi = window.shikomi || {};
(() => {
  const notTyped = ["radio", "checkbox", "button", "submit", "reset", "range", "color", "file", "hidden"];
  window.shikomi.typing = (el) => !!el && (el.isContentEditable || el.tagName === "TEXTAREA" ||
    el.tagName === "SELECT" || (el.tagName === "INPUT" && !notTyped.includes(el.type)));
})();

// Selects marked data-autosubmit send their form when changed (the language menu).
document.addEventListener("change", (e) => {
  if (e.target.matches("select[data-autosubmit]")) e.target.form.requestSubmit();
});

// htmx leaves 4xx answers unswapped; an element marked data-swap-statuses="400 409" shows them
// (a refused restore explains why). Here rather than in hx-on: the Content-Security-Policy
// allows no eval.
document.addEventListener("htmx:beforeSwap", (e) => {
  const marked = e.target.closest("[data-swap-statuses]");
  if (marked && marked.dataset.swapStatuses.split(" ").includes(String(e.detail.xhr.status))) {
    e.detail.shouldSwap = true;
    e.detail.isError = false;
  }
});
