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
// plotly.js (4.8 MB) starts loading as the page does, while the circuit connects and the forward runs, rather than
// when the first chart renders: the same interop module and script element Plotly.Blazor's own import uses (its
// import finds the element and waits for the same load). The names follow Plotly.Blazor's version, pinned in
// Directory.Packages.props; a browser test checks that they still match.
window.explorer.plotly = {
  module: "./_content/Plotly.Blazor/plotly-interop-7.2.0.js",
  script: "./_content/Plotly.Blazor/plotly-3.7.0.min.js",
};
window.explorer.plotlyLoaded = import(new URL(window.explorer.plotly.module, document.baseURI).href)
  .then((interop) => interop.importScript("plotly-import", window.explorer.plotly.script))
  .then(
    () => {
      performance.mark("explorer:plotly-loaded"); // a stage the live views' benchmark reports
      return true;
    },
    () => false, // a failure is the chart's own import's to report
  );
