// Example browser: the header checkbox selects every example on the page.
document.addEventListener("change", (e) => {
  if (e.target.matches("[data-select-all]")) {
    e.target.closest("table").querySelectorAll("input[name=ids]").forEach((box) => { box.checked = e.target.checked; });
  }
});
