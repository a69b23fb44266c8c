// ecosync web: charts from the data-figure attribute of each .plot element (no inline
// script anywhere: the Content-Security-Policy allows scripts from this server only).
(function () {
  "use strict";

  function drawCharts() {
    if (typeof window.Plotly === "undefined") {
      return;
    }
    document.querySelectorAll(".plot[data-figure]").forEach(function (el) {
      var figure = JSON.parse(el.getAttribute("data-figure"));
      var layout = Object.assign({
        margin: { l: 60, r: 20, t: 10, b: 50 },
        height: 320,
        font: { family: "system-ui, sans-serif", size: 13 },
        legend: { orientation: "h", y: -0.2 },
        paper_bgcolor: "#ffffff",
        plot_bgcolor: "#ffffff"
      }, figure.layout || {});
      window.Plotly.newPlot(el, figure.data, layout, {
        displayModeBar: false,
        responsive: true,
        staticPlot: false
      }).then(function () {
        el.setAttribute("data-rendered", "true");
      });
    });
  }

  function autoSubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (el) {
      el.addEventListener("change", function () {
        el.form.submit();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    autoSubmit();
  });
})();
