// The run report's page script: a browser script, inlined into the HTML by report-html.ts after
// Chart.js, that draws the charts and the task table from the JSON in #report-data. Kept as text
// (no backquotes or dollar-braces inside) so that no compiler turns it into a module.

/** The page script's source. */
export const REPORT_PAGE_SCRIPT = String.raw`"use strict";
(function () {
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var PALETTE = [
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
    "#86bcb6",
  ];
  var FAILED = "#d62728";
  var RETRIED = "#ff7f0e";
  var RUNNING = "#7f7f7f";
  function color(i) {
    return PALETTE[i % PALETTE.length];
  }
  function secs(v) {
    return v.toFixed(v < 10 ? 2 : 1) + " s";
  }
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.size = 11;

  // Tasks per worker slot over time: one floating bar per attempt, coloured by app; failed
  // attempts outlined red, attempts that ran again outlined orange, unfinished ones grey.
  var KIND_BORDER = ["rgba(0,0,0,0)", FAILED, RETRIED, RUNNING];
  var timelineSets = data.apps.map(function (app, i) {
    var bars = data.bars.filter(function (b) {
      return b[3] === i;
    });
    return {
      label: app,
      data: bars.map(function (b) {
        return { x: [b[1], b[2]], y: data.slots[b[0]], kind: b[4], row: b[5] };
      }),
      backgroundColor: color(i),
      borderColor: bars.map(function (b) {
        return KIND_BORDER[b[4]];
      }),
      borderWidth: bars.map(function (b) {
        return b[4] === 0 ? 0 : 2;
      }),
      borderSkipped: false,
      // A task of a few ms still shows (a failure at start-up above all).
      minBarLength: 3,
      grouped: false,
      barPercentage: 0.8,
      categoryPercentage: 1,
    };
  });
  var timelineBox = document.getElementById("timeline-box");
  timelineBox.style.height =
    Math.min(1600, Math.max(160, 40 + data.slots.length * 18)) + "px";
  new Chart(document.getElementById("timeline"), {
    type: "bar",
    data: { labels: data.slots, datasets: timelineSets },
    options: {
      indexAxis: "y",
      parsing: true,
      scales: {
        x: {
          type: "linear",
          min: 0,
          max: data.durationS,
          title: { display: true, text: "seconds since the run started" },
        },
        y: { type: "category", ticks: { autoSkip: data.slots.length > 60 } },
      },
      plugins: {
        legend: {
          labels: {
            generateLabels: function (chart) {
              return chart.data.datasets.map(function (set, i) {
                return {
                  text: set.label,
                  fillStyle: color(i),
                  strokeStyle: color(i),
                  lineWidth: 0,
                  hidden: !chart.isDatasetVisible(i),
                  datasetIndex: i,
                };
              });
            },
          },
        },
        tooltip: {
          callbacks: {
            label: function (ctx) {
              var raw = ctx.raw;
              var row = data.tasks[raw.row];
              return (
                row[0] +
                " " +
                row[1] +
                ": " +
                secs(raw.x[0]) +
                " → " +
                secs(raw.x[1]) +
                (raw.kind === 1
                  ? " (failed)"
                  : raw.kind === 2
                    ? " (ran again)"
                    : raw.kind === 3
                      ? " (unfinished)"
                      : "")
              );
            },
          },
        },
      },
    },
  });

  // Declared (labels of running tasks) and measured use per worker over time.
  function usageChart(id, key, unit) {
    var sets = [];
    data.util.forEach(function (series, i) {
      var decl = key === "cores" ? 1 : 3;
      var meas = key === "cores" ? 2 : 4;
      sets.push({
        label: series.name + " declared",
        data: series.points.map(function (p) {
          return { x: p[0], y: p[decl] };
        }),
        borderColor: color(i),
        borderDash: [6, 4],
        pointRadius: 0,
        stepped: true,
      });
      sets.push({
        label: series.name + " measured",
        data: series.points.map(function (p) {
          return { x: p[0], y: p[meas] };
        }),
        borderColor: color(i),
        backgroundColor: color(i) + "33",
        fill: true,
        pointRadius: 0,
        stepped: true,
      });
      sets.push({
        label: series.name + " has " + series[key] + " " + unit,
        data: [
          { x: 0, y: series[key] },
          { x: data.durationS, y: series[key] },
        ],
        borderColor: color(i),
        borderWidth: 1,
        borderDash: [1, 3],
        pointRadius: 0,
      });
    });
    new Chart(document.getElementById(id), {
      type: "line",
      data: { datasets: sets },
      options: {
        scales: {
          x: {
            type: "linear",
            min: 0,
            max: data.durationS,
            title: { display: true, text: "seconds" },
          },
          y: { beginAtZero: true, title: { display: true, text: unit } },
        },
      },
    });
  }
  usageChart("cores", "cores", "cores");
  usageChart("memory", "memory", "MB");

  // Each category's memory label over time against the peaks its tasks measured.
  var labelSets = [];
  data.labels.forEach(function (cat, i) {
    labelSets.push({
      type: "line",
      label: cat.category + " label",
      data: cat.steps.map(function (p) {
        return { x: p[0], y: p[1] };
      }),
      borderColor: color(i),
      stepped: true,
      pointRadius: 3,
      spanGaps: false,
    });
    labelSets.push({
      type: "scatter",
      label: cat.category + " peaks",
      data: cat.peaks.map(function (p) {
        return { x: p[0], y: p[1] };
      }),
      backgroundColor: color(i),
      borderColor: cat.peaks.map(function (p) {
        return p[2] ? FAILED : color(i);
      }),
      pointStyle: "crossRot",
      pointRadius: 5,
    });
  });
  new Chart(document.getElementById("labels"), {
    type: "scatter",
    data: { datasets: labelSets },
    options: {
      scales: {
        x: {
          type: "linear",
          min: 0,
          max: data.durationS,
          title: { display: true, text: "seconds" },
        },
        y: {
          beginAtZero: true,
          title: { display: true, text: "memory (MB)" },
        },
      },
    },
  });

  // Bundle build (this host), transfer and unpack (per worker) times.
  var STEP_COLORS = { build: "#4e79a7", transfer: "#f28e2b", unpack: "#59a14f" };
  new Chart(document.getElementById("bundles"), {
    type: "bar",
    data: {
      labels: data.bundles.places,
      datasets: ["build", "transfer", "unpack"].map(function (step) {
        return {
          label: step,
          data: data.bundles[step],
          backgroundColor: STEP_COLORS[step],
          skipNull: true,
        };
      }),
    },
    options: {
      indexAxis: "y",
      scales: {
        x: { beginAtZero: true, title: { display: true, text: "ms" } },
      },
    },
  });

  // The task table: sortable by any column, 100 rows a page.
  var COLUMNS = [
    "task",
    "app",
    "worker",
    "state",
    "attempts",
    "wall (s)",
    "peak MB",
    "cores",
    "error",
  ];
  var PAGE = 100;
  var rows = data.tasks.slice();
  var sortBy = 0;
  var ascending = true;
  var page = 0;
  var table = document.getElementById("tasks");
  var head = table.createTHead().insertRow();
  COLUMNS.forEach(function (name, i) {
    var th = document.createElement("th");
    th.textContent = name;
    th.addEventListener("click", function () {
      ascending = sortBy === i ? !ascending : true;
      sortBy = i;
      sortRows();
      page = 0;
      draw();
    });
    head.appendChild(th);
  });
  var body = table.createTBody();
  function key(v) {
    return v === null ? -Infinity : v;
  }
  function sortRows() {
    rows.sort(function (a, b) {
      var x = key(a[sortBy]);
      var y = key(b[sortBy]);
      if (sortBy === 0) {
        x = Number(String(a[0]).slice(1));
        y = Number(String(b[0]).slice(1));
      }
      var c = x < y ? -1 : x > y ? 1 : 0;
      return ascending ? c : -c;
    });
  }
  function draw() {
    body.textContent = "";
    rows.slice(page * PAGE, (page + 1) * PAGE).forEach(function (r) {
      var tr = body.insertRow();
      tr.className = "state-" + r[3];
      r.forEach(function (v, i) {
        var td = tr.insertCell();
        td.textContent =
          v === null ? "" : typeof v === "number" && i >= 5 ? v.toFixed(i === 6 ? 0 : 2) : v;
      });
    });
    var pages = Math.max(1, Math.ceil(rows.length / PAGE));
    document.getElementById("page").textContent =
      "page " + (page + 1) + " of " + pages + " (" + rows.length + " tasks)";
    document.getElementById("prev").disabled = page === 0;
    document.getElementById("next").disabled = page >= pages - 1;
  }
  document.getElementById("prev").addEventListener("click", function () {
    page--;
    draw();
  });
  document.getElementById("next").addEventListener("click", function () {
    page++;
    draw();
  });
  sortRows();
  draw();
  document.body.dataset.ready = "1";
})();
`;
