// Review queue for examples that need review (templates/curation/review/examples.html), by
// keyboard: a approves, r rejects, e opens the chat editor on the last assistant turn, a number
// key chooses the label with that key (0: none), j or n skips to the next example, k goes back,
// Esc closes the editor. The page works without this script (buttons, links, radio buttons);
// the editor's fields are sent only while it is open, so an approval without an edit sends none.
(() => {
  const form = document.getElementById("decide-form");
  if (!form) return;
  const panel = document.getElementById("edit-panel");
  const fields = document.getElementById("edit-fields");

  const typing = window.shikomi.typing;  // base.js

  // The editor's fields go with the form only while the editor is open.
  function syncEditor() {
    if (panel && fields) fields.disabled = !panel.open;
  }
  if (panel) panel.addEventListener("toggle", syncEditor);
  syncEditor();

  function lastAnswer() {
    const answers = [...form.querySelectorAll("#turns > li.turn.assistant textarea[name=content]")];
    return answers.length ? answers[answers.length - 1] : form.querySelector("#turns textarea[name=content]");
  }

  function openEditor() {
    if (!panel) return;
    panel.open = true;
    syncEditor();
    const answer = lastAnswer();
    if (answer) {
      answer.focus();
      answer.setSelectionRange(answer.value.length, answer.value.length);
      answer.scrollIntoView({ block: "nearest" });
    }
  }

  function submit(id) {
    const button = document.getElementById(id);
    if (button) form.requestSubmit(button);
  }

  function follow(key) {
    const link = document.querySelector(`a[data-key="${key}"]`);
    if (link) link.click();
  }

  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.defaultPrevented) return;
    const active = document.activeElement;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      if (active && active.form === form && panel && panel.open) {
        e.preventDefault();
        submit("edit-submit");
      }
      return;
    }
    if (typing(active)) {
      if (e.key === "Escape") active.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey) return;
    if (e.key === "Escape") {
      if (panel && panel.open) { panel.open = false; syncEditor(); }
      return;
    }
    if (/^[0-9]$/.test(e.key)) {
      const radio = form.querySelector(`input[name=label][data-key="${e.key}"]`);
      if (radio) { e.preventDefault(); radio.checked = true; radio.focus(); }
      return;
    }
    switch (e.key) {
      case "a": e.preventDefault(); submit("approve"); break;
      case "r": e.preventDefault(); submit("reject"); break;
      case "e": e.preventDefault(); openEditor(); break;
      case "j":
      case "n": e.preventDefault(); follow("n"); break;
      case "k": e.preventDefault(); follow("k"); break;
      default: break;
    }
  });
})();
