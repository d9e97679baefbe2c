// Selects marked data-autosubmit send their form when changed (the language menu).
document.addEventListener("change", (e) => {
  if (e.target.matches("select[data-autosubmit]")) e.target.form.requestSubmit();
});
