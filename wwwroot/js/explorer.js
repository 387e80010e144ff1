// Small browser helpers for Explorer's Blazor components.
window.explorer = {
  // An element's left edge and width in client coordinates, for turning pointer positions into chart positions.
  box: (element) => {
    const r = element.getBoundingClientRect();
    return [r.left, r.width];
  },
};
