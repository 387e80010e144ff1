// Small browser helpers for Explorer's Blazor components.
window.explorer = {
  // An element's left edge and width in client coordinates, for turning pointer positions into chart positions.
  box: (element) => {
    const r = element.getBoundingClientRect();
    return [r.left, r.width];
  },
};
// Saves text as a file in the browser (summaries as JSON or CSV).
window.explorer.download = (filename, mime, text) => {
  const url = URL.createObjectURL(new Blob([text], { type: mime }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
};
