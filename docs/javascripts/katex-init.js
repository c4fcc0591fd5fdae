// Typeset the formulas with the KaTeX copy in docs/vendor/katex (katex 0.19.1 from npm): no CDN,
// so the site renders its math offline. pymdownx.arithmatex (generic mode) wraps every formula
// in an element of class "arithmatex" holding \( ... \) or \[ ... \]; only those are typeset, so
// a dollar sign in code or prose is never taken for math. mkdocs-material's instant navigation
// swaps page bodies without reloading, and document$ announces each new page.
(function () {
  function typeset() {
    document.querySelectorAll(".arithmatex").forEach(function (el) {
      renderMathInElement(el, {
        delimiters: [
          { left: "\\(", right: "\\)", display: false },
          { left: "\\[", right: "\\]", display: true }
        ],
        throwOnError: false
      });
    });
  }
  if (typeof document$ !== "undefined") {
    document$.subscribe(typeset);
  } else {
    document.addEventListener("DOMContentLoaded", typeset);
  }
})();
