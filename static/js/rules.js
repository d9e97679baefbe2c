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

// Weak labels to accept: every row is chosen at first; unticking one leaves it out. The form
// sends the choice as "all except these ids" (mode except) or, after "Select none", as "only
// these ids" (mode only), so choosing among 100,000 rows sends only the ids that differ.
function acceptState() {
  const mode = document.getElementById("accept-mode");
  const ids = document.getElementById("accept-ids");
  if (!mode || !ids) return null;
  const set = new Set(ids.value.split(",").filter(Boolean));
  return { mode, ids, set, only: mode.value === "only" };
}

function acceptSave(state) {
  state.ids.value = Array.from(state.set).join(",");
  if (state.mode.value === "all" && state.set.size) state.mode.value = "except";
  const rows = document.getElementById("accept-rows");
  const total = rows ? parseInt(rows.dataset.total, 10) || 0 : 0;
  const chosen = state.only ? state.set.size : Math.max(0, total - state.set.size);
  const line = document.getElementById("accept-chosen");
  if (line) line.textContent = line.dataset.text.replace("{n}", chosen).replace("{total}", total);
  const submit = document.getElementById("accept-submit");
  if (submit) submit.disabled = chosen === 0;
}

function acceptShow(state) {
  document.querySelectorAll("#accept-rows .accept-pick").forEach((box) => {
    box.checked = state.only ? state.set.has(box.value) : !state.set.has(box.value);
  });
}

function acceptPick(state, box, chosen) {
  box.checked = chosen;
  if (chosen === state.only) state.set.add(box.value);
  else state.set.delete(box.value);
}

document.addEventListener("change", (event) => {
  if (!event.target.matches("#accept-rows .accept-pick")) return;
  const state = acceptState();
  if (!state) return;
  acceptPick(state, event.target, event.target.checked);
  acceptSave(state);
});

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-accept-select]");
  if (!button) return;
  const state = acceptState();
  if (!state) return;
  const what = button.dataset.acceptSelect;
  if (what === "all" || what === "none") {
    state.mode.value = what === "all" ? "all" : "only";
    state.only = what === "none";
    state.set.clear();
    acceptShow(state);
  } else {
    document.querySelectorAll("#accept-rows .accept-pick").forEach((box) => acceptPick(state, box, what === "page-all"));
  }
  acceptSave(state);
});

// A new page of rows shows the choice made so far; a new threshold or source starts afresh
// (the summary comes back with every row chosen).
document.addEventListener("htmx:afterSwap", () => {
  const state = acceptState();
  if (!state) return;
  acceptShow(state);
  acceptSave(state);
});
