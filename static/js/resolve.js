// Disagreement page: "Use this text" copies an annotator's version into the gold editor.
(() => {
  const editor = window.shikomiEditor;
  if (!editor) return;
  document.querySelectorAll(".use-text").forEach((button) => {
    button.addEventListener("click", () => {
      const messages = JSON.parse(button.nextElementSibling.textContent);
      editor.turns.replaceChildren();
      messages.forEach((m) => {
        const node = editor.addTurn();
        node.className = `turn ${m.role}`;
        node.querySelector("select").value = m.role;
        node.querySelector("textarea").value = m.content;
      });
    });
  });
  document.addEventListener("keydown", (e) => {
    const active = document.activeElement;
    if (active && (active.tagName === "TEXTAREA" || active.tagName === "SELECT")) return;
    const choice = document.querySelector(`#resolve-form input[name=label][data-shortcut="${CSS.escape(e.key)}"]`);
    if (choice) choice.checked = true;
  });
})();
