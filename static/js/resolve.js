// Disagreement page: "Use this text" copies an annotator's version into the gold editor; the
// keys choose the gold label (its number, as on the labeling page) and resolve (Enter). No label
// is chosen until the reviewer picks one.
(() => {
  const form = document.getElementById("resolve-form");
  const editor = window.shikomiEditor;
  if (editor) {
    document.querySelectorAll(".use-text").forEach((button) => {
      button.addEventListener("click", () => {
        const messages = JSON.parse(button.nextElementSibling.textContent);
        editor.turns.replaceChildren();
        // The whole message: tool calls, results' call ids, reasoning and weights too.
        messages.forEach((m) => editor.fill(editor.addTurn(), m));
      });
    });
  }
  if (!form) return;

  const typing = window.shikomi.typing;  // base.js
  const submit = () => form.requestSubmit(document.getElementById("resolve-submit"));

  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.isComposing) return;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); return; }
    const active = document.activeElement;
    if (typing(active)) {
      if (e.key === "Escape") active.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey) return;
    const choice = form.querySelector(`input[name=label][data-shortcut="${CSS.escape(e.key)}"]`);
    if (choice) {
      e.preventDefault();
      choice.checked = true;
      choice.dispatchEvent(new Event("change", { bubbles: true }));
      return;
    }
    if (e.key === "Enter") {
      // A link, a button ("Use this text") or a folded section keeps its own Enter.
      if (active && active.closest("a, button, summary")) return;
      e.preventDefault();
      submit();
    }
  });
})();
