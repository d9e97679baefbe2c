// The rule editor shows only the chosen kind's parameters. Without JavaScript every
// fieldset shows and the server reads only the chosen kind's.
function showKind(form) {
  const kind = form.querySelector("select[name=kind]").value;
  form.querySelectorAll("fieldset[data-kind]").forEach((fieldset) => {
    fieldset.hidden = fieldset.dataset.kind !== kind;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("rule-form");
  if (form) showKind(form);
});

document.addEventListener("change", (event) => {
  if (event.target.matches("#rule-form select[name=kind]")) showKind(event.target.form);
});

// Forms that destroy something ask first (the message is in data-confirm).
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
