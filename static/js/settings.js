// The project pages (new project, settings, members). Here rather than inline: the
// Content-Security-Policy allows no inline script or event handler.

// A new project's address follows its name until the address is typed into.
(() => {
  const source = document.querySelector("[data-slug-source]");
  const target = document.querySelector("[data-slug-target]");
  if (!source || !target) return;
  let typed = target.value !== "";
  const slugify = (text) =>
    text
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9\s_-]/g, "")
      .trim()
      .replace(/[\s_-]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 94);
  target.addEventListener("input", () => { typed = target.value !== ""; });
  source.addEventListener("input", () => { if (!typed) target.value = slugify(source.value); });
})();

// Forms that merge, delete or remove something ask first (the question is in data-confirm).
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
