// Upload progress for the import form (htmx raises htmx:xhr:progress while sending).
document.addEventListener("htmx:xhr:progress", (event) => {
  const bar = document.getElementById("upload-progress");
  const text = document.getElementById("upload-percent");
  if (!bar || !event.detail.lengthComputable) return;
  const percent = Math.round((event.detail.loaded / event.detail.total) * 100);
  bar.hidden = false;
  bar.value = percent;
  text.textContent = percent + "%";
});
