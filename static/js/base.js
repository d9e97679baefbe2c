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
