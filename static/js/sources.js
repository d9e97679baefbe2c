// The source form shows only the fields the chosen kind reads (a row's data-kinds lists them).
// Without JavaScript every field shows and the server reads only the chosen kind's.
function showSourceKind(form) {
  const chosen = form.querySelector("input[name=kind]:checked");
  const kind = chosen ? chosen.value : "";
  form.querySelectorAll("[data-kinds]").forEach((row) => {
    row.hidden = kind !== "" && !row.dataset.kinds.split(" ").includes(kind);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("source-form");
  if (!form) return;
  showSourceKind(form);
  form.addEventListener("change", (event) => {
    if (event.target.name === "kind") showSourceKind(form);
  });
});
