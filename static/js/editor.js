// The chat editor (templates/curation/_chat_editor.html): add, remove and re-role turns.
window.shikomiEditor = (() => {
  const turns = document.getElementById("turns");
  if (!turns) return null;
  const form = turns.closest("form");
  const changed = () => form && form.dispatchEvent(new Event("change", { bubbles: true }));

  function addTurn() {
    const node = document.getElementById("turn-template").content.firstElementChild.cloneNode(true);
    turns.appendChild(node);
    return node;
  }

  document.getElementById("add-turn").addEventListener("click", () => {
    const roles = turns.querySelectorAll(".turn select");
    const node = addTurn();
    const previous = roles.length ? roles[roles.length - 1].value : "assistant";
    const role = previous === "user" ? "assistant" : "user";
    node.querySelector("select").value = role;
    node.className = `turn ${role}`;
    node.querySelector("textarea").focus();
    changed();
  });
  turns.addEventListener("click", (e) => {
    if (e.target.classList.contains("remove-turn")) { e.target.closest(".turn").remove(); changed(); }
  });
  turns.addEventListener("change", (e) => {
    if (e.target.name === "role") e.target.closest(".turn").className = `turn ${e.target.value}`;
  });
  return { turns, addTurn };
})();
