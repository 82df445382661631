(function () {
  "use strict";
  var figures = JSON.parse(document.getElementById("chart-data").textContent);
  document.querySelectorAll("[data-chart]").forEach(function (element) {
    var figure = figures[element.dataset.chart];
    if (!window.Plotly) {
      element.textContent = "Charts need assets/plotly.min.js beside this page.";
      return;
    }
    Plotly.newPlot(element, figure.data, figure.layout, {responsive: true, displaylogo: false});
  });
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var headers = table.querySelectorAll("th");
    headers.forEach(function (header, column) {
      header.addEventListener("click", function () {
        var ascending = !header.classList.contains("asc");
        headers.forEach(function (other) { other.classList.remove("asc", "desc"); });
        header.classList.add(ascending ? "asc" : "desc");
        var numeric = header.dataset.type === "number";
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        function key(row) {
          var cell = row.cells[column];
          var text = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent;
          if (!numeric) { return text; }
          var number = parseFloat(text);
          return isNaN(number) ? (ascending ? Infinity : -Infinity) : number;
        }
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          var order = numeric ? x - y : String(x).localeCompare(String(y));
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
})();
