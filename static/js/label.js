// Labeling page: keyboard shortcuts, adding turns, and autosave that survives a dropped
// connection (unsaved text is kept in this browser and sent again when it can be).
(() => {
  const form = document.getElementById("label-form");
  const guidelines = document.getElementById("guidelines");
  const typing = window.shikomi.typing;  // base.js

  // `e`: the last assistant turn's text (the answer), or the last turn's when none is the
  // assistant's, opened if it is folded away, with the caret at the end.
  function editAnswer() {
    const all = [...form.querySelectorAll("#turns > .turn")];
    const turn = all.filter((t) => t.querySelector("select[name=role]").value === "assistant").pop() || all.pop();
    const box = turn && turn.querySelector("textarea[name=content]");
    if (!box) return;
    for (let up = box.closest("details"); up; up = up.parentElement.closest("details")) up.open = true;
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
    box.scrollTop = box.scrollHeight;
  }

  document.querySelectorAll("[data-open-guidelines]").forEach((a) =>
    a.addEventListener("click", (e) => { e.preventDefault(); guidelines.showModal(); }));

  document.addEventListener("keydown", (e) => {
    if (e.altKey || (guidelines && guidelines.open)) return;
    if (form && e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); return; }
    if (typing(document.activeElement)) {
      if (e.key === "Escape") document.activeElement.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey) return;
    if (e.key === "g") { e.preventDefault(); guidelines.showModal(); return; }
    if (e.key === "u") { e.preventDefault(); document.querySelector('[data-key="u"]').click(); return; }
    if (!form) return;
    const choice = form.querySelector(`input[name=label][data-shortcut="${CSS.escape(e.key)}"]`);
    if (choice) { e.preventDefault(); choice.checked = true; changed(); return; }
    if (e.key === "Enter") { e.preventDefault(); submit(); return; }
    if (e.key === "s") { e.preventDefault(); form.querySelector('[data-key="s"]').click(); return; }
    if (e.key === "e") { e.preventDefault(); editAnswer(); }
  });

  if (!form) return;
  const storageKey = `shikomi-draft:${form.dataset.example}:${form.dataset.user}:${form.dataset.version}`;
  const status = document.getElementById("autosave-status");
  const { turns, addTurn } = window.shikomiEditor;
  let timer = null;
  let submitting = false;

  function submit() {
    submitting = true;
    localStorage.removeItem(storageKey);
    form.requestSubmit(document.getElementById("submit"));
  }

  function snapshot() {
    const data = new FormData(form);
    return { label: data.get("label"), rating: data.get("rating"), note: data.get("note"),
             role: data.getAll("role"), content: data.getAll("content") };
  }

  function restore(saved) {
    while (turns.children.length < saved.content.length) addTurn();
    while (turns.children.length > saved.content.length) turns.lastElementChild.remove();
    turns.querySelectorAll("select[name=role]").forEach((s, i) => { s.value = saved.role[i]; });
    turns.querySelectorAll("textarea[name=content]").forEach((t, i) => { t.value = saved.content[i]; });
    form.querySelectorAll("input[name=label]").forEach((r) => { r.checked = r.value === saved.label; });
    form.querySelectorAll("input[name=rating]").forEach((r) => { r.checked = r.value === saved.rating; });
    form.querySelector("textarea[name=note]").value = saved.note || "";
  }

  async function save() {
    if (submitting) return;
    const body = new FormData(form);
    try {
      const response = await fetch(form.dataset.draftUrl, { method: "POST", body, headers: { "X-CSRFToken": body.get("csrfmiddlewaretoken") } });
      if (!response.ok) throw new Error(String(response.status));
      localStorage.removeItem(storageKey);
      status.textContent = await response.text();
      status.classList.remove("error");
    } catch (err) {
      status.textContent = status.dataset.offline || "Not saved to the server yet: kept in this browser, and sent again when the connection returns.";
      status.classList.add("error");
    }
  }

  function changed() {
    if (submitting) return;
    localStorage.setItem(storageKey, JSON.stringify(snapshot()));
    clearTimeout(timer);
    timer = setTimeout(save, 700);
  }

  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  form.addEventListener("submit", () => { submitting = true; localStorage.removeItem(storageKey); });
  window.addEventListener("online", () => { if (localStorage.getItem(storageKey)) save(); });

  const pending = localStorage.getItem(storageKey);
  if (pending) {
    restore(JSON.parse(pending));
    status.textContent = status.dataset.restored || "Restored text that had not reached the server.";
    save();
  }
})();
