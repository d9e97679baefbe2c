// Review queue for drafts: keyboard shortcuts (approve, edit, reject, skip) and ranking the
// candidates of one prompt by keyboard or drag. The page works without this script (forms,
// <details>, server order); here elements are only moved and toggled, never built from text.
(() => {
  const approveForm = document.getElementById("approve-form");
  const editPanel = document.getElementById("edit-panel");
  const rejectPanel = document.getElementById("reject-panel");
  const rankForm = document.getElementById("rank-form");
  const ranking = document.getElementById("ranking");
  if (!approveForm && !rankForm) return;

  const typing = window.shikomi.typing;  // base.js
  const activates = (el) => !!el && ["A", "BUTTON", "SUMMARY"].includes(el.tagName);

  function openPanel(panel) {
    [editPanel, rejectPanel].forEach((p) => { if (p && p !== panel) p.open = false; });
    panel.open = true;
    panel.scrollIntoView({ block: "nearest" });
  }

  function closePanels() {
    [editPanel, rejectPanel].forEach((p) => { if (p) p.open = false; });
  }

  // --- ranking ---------------------------------------------------------------------------
  let selected = null;
  const items = () => (ranking ? [...ranking.children].filter((el) => el.tagName === "LI") : []);

  // The hidden `order` inputs live inside the items, so the DOM order is the posted order;
  // only the visible place numbers need rewriting.
  function renumber() {
    items().forEach((li, i) => {
      li.querySelector(".place").textContent = String(i + 1);
    });
  }

  function select(li) {
    selected = li;
    items().forEach((item) => {
      item.classList.toggle("selected", item === li);
      item.setAttribute("aria-selected", item === li ? "true" : "false");
    });
    if (li) li.focus({ preventScroll: false });
  }

  function move(step) {
    if (!selected) return;
    if (step < 0 && selected.previousElementSibling) {
      ranking.insertBefore(selected, selected.previousElementSibling);
    } else if (step > 0 && selected.nextElementSibling) {
      ranking.insertBefore(selected.nextElementSibling, selected);
    }
    renumber();
    selected.focus();
  }

  if (ranking) {
    let dragged = null;
    ranking.addEventListener("dragstart", (e) => {
      dragged = e.target.closest ? e.target.closest("#ranking > li") : null;
      if (!dragged) return;
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", dragged.dataset.example);
      dragged.classList.add("dragging");
    });
    ranking.addEventListener("dragover", (e) => {
      if (!dragged) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "move";
      const over = e.target.closest("#ranking > li");
      if (!over || over === dragged) return;
      const box = over.getBoundingClientRect();
      const below = e.clientY > box.top + box.height / 2;
      ranking.insertBefore(dragged, below ? over.nextElementSibling : over);
      renumber();
    });
    ranking.addEventListener("drop", (e) => { if (dragged) e.preventDefault(); });
    ranking.addEventListener("dragend", () => {
      if (dragged) {
        dragged.classList.remove("dragging");
        select(dragged);
      }
      dragged = null;
      renumber();
    });
    ranking.addEventListener("click", (e) => {
      if (e.target.closest("a, summary, details")) return;
      const li = e.target.closest("#ranking > li");
      if (li) select(li);
    });
  }

  // --- keys ------------------------------------------------------------------------------
  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.defaultPrevented) return;
    const active = document.activeElement;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      // Ctrl+Enter while typing sends the form being typed in (the edit saves and approves).
      const form = active && active.form;
      if (form === approveForm && editPanel && editPanel.open) {
        e.preventDefault();
        approveForm.requestSubmit(document.getElementById("edit-submit"));
      } else if (form) {
        e.preventDefault();
        form.requestSubmit();
      }
      return;
    }
    if (typing(active)) {
      if (e.key === "Escape") active.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey) return;

    if (e.key === "Escape") { closePanels(); return; }

    if (rejectPanel && rejectPanel.open) {
      const reason = rejectPanel.querySelector(`input[name=reasons][data-shortcut="${CSS.escape(e.key)}"]`);
      if (reason) { e.preventDefault(); reason.checked = !reason.checked; return; }
      if (e.key === "Enter") {
        e.preventDefault();
        rejectPanel.querySelector("form").requestSubmit(document.getElementById("reject-submit"));
        return;
      }
    }

    if (e.key === "s") {
      const skip = document.querySelector('[data-key="s"]');
      if (skip) { e.preventDefault(); skip.click(); }
      return;
    }
    if (e.key === "r" && rejectPanel) {
      e.preventDefault();
      openPanel(rejectPanel);
      const first = rejectPanel.querySelector("input[name=reasons]");
      if (first) first.focus();
      return;
    }

    if (approveForm) {
      if (e.key === "a") { e.preventDefault(); approveForm.requestSubmit(document.getElementById("approve")); return; }
      if (e.key === "e" && editPanel) {
        e.preventDefault();
        openPanel(editPanel);
        const answer = editPanel.querySelector("textarea[name=answer]");
        answer.focus();
        answer.setSelectionRange(answer.value.length, answer.value.length);
      }
      return;
    }

    if (rankForm) {
      if (/^[1-9]$/.test(e.key)) {
        const li = items()[Number(e.key) - 1];
        if (li) { e.preventDefault(); select(li); }
        return;
      }
      if (e.key === "ArrowUp" || e.key === "k") { if (selected) { e.preventDefault(); move(-1); } return; }
      if (e.key === "ArrowDown" || e.key === "j") { if (selected) { e.preventDefault(); move(1); } return; }
      if (e.key === "Enter" && !activates(active)) {
        e.preventDefault();
        rankForm.requestSubmit(document.getElementById("rank-submit"));
        return;
      }
      // The ranking is kept as a preference, and no candidate is approved.
      if (e.key === "n") {
        e.preventDefault();
        rankForm.requestSubmit(document.getElementById("rank-none"));
      }
    }
  });
})();
