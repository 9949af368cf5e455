// MathJax 3 configuration for pymdownx.arithmatex (generic mode). MathJax itself is vendored under
// assets/vendor/mathjax/ (see reportgen/site.py); nothing is loaded from a CDN.
(function () {
  // This file is site/javascripts/mathjax-config.js; resolve the vendored copy from it, so the URL is right on
  // every page depth and under a GitHub Pages project path.
  var here = document.currentScript ? document.currentScript.src : window.location.href;
  var root = new URL("../assets/vendor/mathjax/", here).href.replace(/\/$/, "");
  window.MathJax = {
    loader: { paths: { mathjax: root } },
    tex: {
      inlineMath: [["\\(", "\\)"]],
      displayMath: [["\\[", "\\]"]],
      processEscapes: true,
      processEnvironments: true
    },
    chtml: { fontURL: root + "/output/chtml/fonts/woff-v2" },
    options: {
      // Typeset only what arithmatex marked as math, never code or prose that happens to contain \( or $.
      ignoreHtmlClass: ".*|",
      processHtmlClass: "arithmatex"
    }
  };
})();
