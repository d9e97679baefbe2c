// Disagreement page: "Use this text" copies an annotator's version into the gold editor.
(() => {
  const editor = window.shikomiEditor;
  if (!editor) return;
  document.querySelectorAll(".use-text").forEach((button) => {
    button.addEventListener("click", () => {
      const messages = JSON.parse(button.nextElementSibling.textContent);
      editor.turns.replaceChildren();
      // The whole message: tool calls, results' call ids, reasoning and weights too.
      messages.forEach((m) => editor.fill(editor.addTurn(), m));
    });
  });
  document.addEventListener("keydown", (e) => {
    const active = document.activeElement;
    if (active && (active.tagName === "TEXTAREA" || active.tagName === "SELECT")) return;
    const choice = document.querySelector(`#resolve-form input[name=label][data-shortcut="${CSS.escape(e.key)}"]`);
    if (choice) choice.checked = true;
  });
})();
