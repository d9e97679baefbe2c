// The rule editor shows only the chosen kind's parameters. Without JavaScript every
// fieldset shows and the server reads only the chosen kind's.
function showKind(form) {
  const kind = form.querySelector("select[name=kind]").value;
  form.querySelectorAll("fieldset[data-kind]").forEach((fieldset) => {
    fieldset.hidden = fieldset.dataset.kind !== kind;
  });
}

// A metadata rule compares its field with a value, or searches it with keywords or a pattern:
// only the fields of the chosen test show.
const METADATA_FIELDS = {
  value: (op) => !["keywords", "regex", "exists", "missing"].includes(op),
  keywords: (op) => op === "keywords",
  mode: (op) => op === "keywords",
  whole_word: (op) => op === "keywords",
  pattern: (op) => op === "regex",
  case_sensitive: (op) => op === "keywords" || op === "regex",
  fold_width: (op) => op === "keywords" || op === "regex",
};

function showMetadataOp(form) {
  const select = form.querySelector("select[name=metadata_op]");
  if (!select) return;
  Object.entries(METADATA_FIELDS).forEach(([name, shown]) => {
    const input = form.querySelector(`[name=metadata_${name}]`);
    const row = input && input.closest(".field");
    if (row) row.hidden = !shown(select.value);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("rule-form");
  if (form) {
    showKind(form);
    showMetadataOp(form);
  }
});

document.addEventListener("change", (event) => {
  if (event.target.matches("#rule-form select[name=kind]")) showKind(event.target.form);
  if (event.target.matches("#rule-form select[name=metadata_op]")) showMetadataOp(event.target.form);
});

// An LLM rule's preview asks its model about a dozen examples, which takes seconds and may
// cost money on a paid server: it runs when a field is changed (on leaving it), not while
// the instruction is being typed.
document.addEventListener("htmx:confirm", (event) => {
  const form = event.detail.elt;
  if (form.id !== "rule-form") return;
  const kind = form.querySelector("select[name=kind]").value;
  const trigger = event.detail.triggeringEvent;
  if (kind === "llm" && trigger && trigger.type === "input") event.preventDefault();
});

// Forms that destroy something ask first (the message is in data-confirm).
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
