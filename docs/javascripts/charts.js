// Interactive charts: every <div class="rg-chart" data-chart="{json}"> that reportgen/charts.py put in a page is
// drawn with ECharts, vendored under assets/vendor/echarts/ (reportgen/site.py); nothing comes from a CDN.
// The numbers come from the page (Python computed them); this file only draws them and shows them on hover.
// The PNG right after the container stays in the page: it is what shows without JavaScript, when ECharts cannot
// be loaded, and in print (docs/assets/extra.css); with a chart drawn it is hidden on screen.
(function () {
  "use strict";

  // This file is site/javascripts/charts.js: resolve the library from it, so the URL is right on every page
  // depth and under a sub-path (GitHub Pages). ECharts (1 MB) is loaded only by pages that have a chart.
  var here = document.currentScript ? document.currentScript.src : window.location.href;
  var ECHARTS_URL = new URL("../assets/vendor/echarts/echarts.min.js", here).href;
  var NARROW_PX = 640;   // below this width, panels are stacked instead of side by side
  var loading = null;

  function loadECharts() {
    if (window.echarts) return Promise.resolve(window.echarts);
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = ECHARTS_URL;
        script.onload = function () {
          if (window.echarts) resolve(window.echarts); else reject(new Error("no echarts in " + ECHARTS_URL));
        };
        script.onerror = function () { loading = null; reject(new Error("could not load " + ECHARTS_URL)); };
        document.head.appendChild(script);
      });
    }
    return loading;
  }

  // Labels come from study files: never put them into tooltip HTML unescaped.
  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  // The interface's words and the number format of the page's edition: a chart of a translated edition carries
  // them (data.text, data.locale, written by reportgen/charts.py); the English one carries neither.
  var TEXT = { seed: "seed", mean: "mean", ci: "% CI", to: "to", one_seed: "one seed: no interval",
               hover: "; hover for each seed's value, click a legend entry to hide a variant." };
  var text = TEXT, locale = null;

  function fmt(value, digits, unit) {
    if (value === null || value === undefined) return "—";
    var number = locale ? value.toLocaleString(locale, { minimumFractionDigits: digits, maximumFractionDigits: digits })
      : value.toFixed(digits);
    return number + (unit || "");
  }

  function theme() {
    var css = getComputedStyle(document.body);
    function read(name, fallback) { return css.getPropertyValue(name).trim() || fallback; }
    return {
      text: read("--md-default-fg-color", "#222222"),
      muted: read("--md-default-fg-color--light", "#666666"),
      grid: read("--md-default-fg-color--lightest", "#dddddd"),
      background: read("--md-default-bg-color", "#ffffff")
    };
  }

  function marker(color) {
    return '<span class="rg-chart__swatch" style="background:' + esc(color) + '"></span>';
  }

  function seedCells(seeds, values, digits, unit) {
    return seeds.map(function (seed, k) {
      return "<td>" + esc(text.seed) + " " + esc(seed) + ": " + esc(fmt(values[k], digits, unit)) + "</td>";
    }).join("");
  }

  function tooltipBase(t) {
    return {
      confine: true, backgroundColor: t.background, borderColor: t.grid, textStyle: { color: t.text, fontSize: 12 },
      extraCssText: "max-width: 90%; white-space: normal;"
    };
  }

  function axisStyle(t) {
    return {
      axisLine: { lineStyle: { color: t.muted } }, axisLabel: { color: t.muted },
      splitLine: { lineStyle: { color: t.grid } }, nameTextStyle: { color: t.muted }
    };
  }

  function variants(names) {
    return names.filter(function (name, i) { return names.indexOf(name) === i; });
  }

  // ---- lines: panels of lines over x; one legend entry per variant toggles all its lines ----------------------
  function linesOption(data, width, t) {
    var panels = data.panels, n = panels.length;
    var stacked = n > 1 && width < NARROW_PX;
    var panelHeight = 260, top = 64, gap = 76;
    var grids = [], xAxes = [], yAxes = [];
    panels.forEach(function (panel, i) {
      var slot = 100 / n;
      grids.push(stacked
        ? { left: 8, right: 16, top: top + i * (panelHeight + gap), height: panelHeight, containLabel: true }
        : { left: (i * slot + 1) + "%", width: (slot - 3) + "%", top: top, height: panelHeight, containLabel: true });
      var xs = data.series.filter(function (s) { return s.panel === i; }).map(function (s) { return s.x; });
      var all = [].concat.apply([], xs);
      xAxes.push(Object.assign({
        type: "value", gridIndex: i, name: panel.x, nameLocation: "middle", nameGap: 28, minInterval: 1,
        min: Math.min.apply(null, all) < Math.max.apply(null, all) ? Math.min.apply(null, all) : null,
        max: Math.min.apply(null, all) < Math.max.apply(null, all) ? Math.max.apply(null, all) : null,
        splitLine: { show: false }
      }, { axisLine: axisStyle(t).axisLine, axisLabel: axisStyle(t).axisLabel, nameTextStyle: axisStyle(t).nameTextStyle }));
      yAxes.push(Object.assign({
        type: "value", gridIndex: i, scale: true, name: panel.title ? panel.title + ": " + panel.y : panel.y,
        nameLocation: "end", nameTextStyle: { color: t.muted, align: "left" }
      }, { axisLine: axisStyle(t).axisLine, axisLabel: axisStyle(t).axisLabel, splitLine: axisStyle(t).splitLine }));
    });
    // Series i is the payload's line i (the tooltip relies on it); the bands follow, under the same legend name.
    var series = data.series.map(function (s, index) {
      return {
        id: "line" + index, type: "line", name: s.variant, xAxisIndex: s.panel, yAxisIndex: s.panel,
        data: s.x.map(function (x, k) { return [x, s.mean[k]]; }),
        color: s.color, lineStyle: { color: s.color, width: 2, type: s.dashed ? "dashed" : "solid" },
        itemStyle: { color: s.color }, symbol: "circle", symbolSize: 5, showSymbol: s.x.length <= 40,
        z: 3, animation: false
      };
    });
    data.series.forEach(function (s, index) {
      if (s.seeds.length > 1 && s.x.length > 1) series.push(band(s, index));
    });
    var height = stacked ? top + n * (panelHeight + gap) : top + panelHeight + gap;
    return {
      height: height,
      option: {
        backgroundColor: "transparent", animation: false, textStyle: { color: t.text },
        aria: { enabled: true, label: { description: data.alt } },
        legend: { top: 0, type: "scroll", data: variants(data.series.map(function (s) { return s.variant; })),
                  textStyle: { color: t.text } },
        grid: grids, xAxis: xAxes, yAxis: yAxes, series: series,
        tooltip: Object.assign(tooltipBase(t), {
          trigger: "axis", axisPointer: { type: "line" },
          formatter: function (params) { return linesTooltip(data, params); }
        })
      }
    };
  }

  // The lowest-to-highest-seed band of one line, as in the static figure: one quadrilateral per pair of epochs.
  function band(s, index) {
    return {
      id: "band" + index, type: "custom", name: s.variant, xAxisIndex: s.panel, yAxisIndex: s.panel,
      data: s.x.slice(1).map(function (x, k) { return [s.x[k], x, s.low[k], s.high[k], s.low[k + 1], s.high[k + 1]]; }),
      encode: { x: [0, 1], y: [2, 3, 4, 5] }, silent: true, tooltip: { show: false }, z: 1, animation: false,
      renderItem: function (params, api) {
        var x0 = api.value(0), x1 = api.value(1);
        var points = [api.coord([x0, api.value(2)]), api.coord([x1, api.value(4)]),
                      api.coord([x1, api.value(5)]), api.coord([x0, api.value(3)])];
        return { type: "polygon", shape: { points: points }, style: { fill: s.color, opacity: 0.15 } };
      }
    };
  }

  function linesTooltip(data, params) {
    params = params.filter(function (p) { return p.seriesIndex < data.series.length; });  // lines, not bands
    if (!params.length) return "";
    var first = data.series[params[0].seriesIndex], k = params[0].dataIndex;
    var panel = data.panels[first.panel];
    var heading = data.x_labels ? data.x_labels[k] : panel.x + " " + first.x[k];
    var rows = params.map(function (p) {
      var s = data.series[p.seriesIndex], d = data.panels[s.panel];
      var values = s.values.map(function (row) { return row[p.dataIndex]; });
      var mean = s.seeds.length > 1 ? "<td>" + esc(text.mean) + " " + esc(fmt(s.mean[p.dataIndex], d.digits, d.unit)) + "</td>" : "";
      return "<tr><th>" + marker(s.color) + esc(s.variant) + " <span class=\"rg-chart__curve\">" + esc(s.curve) +
        "</span></th>" + mean + seedCells(s.seeds, values, d.digits, d.unit) + "</tr>";
    });
    return '<div class="rg-chart__tip"><b>' + esc(heading) + "</b><table class=\"rg-chart__table\">" + rows.join("") + "</table></div>";
  }

  // ---- intervals: per variant the mean, its confidence interval, and each seed ---------------------------------
  function intervalsOption(data, width, t) {
    var rows = data.rows, series = [];
    rows.forEach(function (row, i) {
      if (row.low !== null && row.high !== null) {
        series.push({ type: "line", name: row.variant, data: [[row.low, i], [row.high, i]], color: row.color,
                      lineStyle: { color: row.color, width: 3 }, itemStyle: { color: row.color },
                      symbol: "rect", symbolSize: [2, 14], animation: false });
      }
      series.push({ type: "scatter", name: row.variant, data: row.values.map(function (v) { return [v, i]; }),
                    color: row.color, itemStyle: { color: "transparent", borderColor: row.color, borderWidth: 1.5 },
                    symbolSize: 8, animation: false });
      series.push({ type: "scatter", name: row.variant, data: [[row.mean, i]], color: row.color, symbol: "diamond",
                    itemStyle: { color: row.color }, symbolSize: 14, animation: false });
    });
    var style = axisStyle(t);
    return {
      height: 90 + 44 * rows.length,
      option: {
        backgroundColor: "transparent", animation: false, textStyle: { color: t.text },
        aria: { enabled: true, label: { description: data.alt } },
        legend: { top: 0, type: "scroll", data: rows.map(function (r) { return r.variant; }),
                  textStyle: { color: t.text } },
        grid: { left: 8, right: 24, top: 40, bottom: 40, containLabel: true },
        xAxis: Object.assign({ type: "value", scale: true, name: data.x, nameLocation: "middle", nameGap: 28 }, style),
        yAxis: { type: "category", inverse: true, data: rows.map(function (r) { return r.variant; }),
                 axisLine: style.axisLine, axisLabel: { color: t.text, width: Math.max(80, width / 4), overflow: "truncate" },
                 axisTick: { show: false } },
        series: series,
        tooltip: Object.assign(tooltipBase(t), {
          trigger: "axis", axisPointer: { type: "shadow", axis: "y" },
          formatter: function (params) { return params.length ? intervalsTooltip(data, params[0].value[1]) : ""; }
        })
      }
    };
  }

  function intervalsTooltip(data, i) {
    var row = data.rows[i];
    if (!row) return "";
    // each row's decimals are those its interval supports (reportgen/numbers.py); the chart's are the fallback
    var digits = row.digits === undefined ? data.digits : row.digits;
    var ci = row.low === null ? text.one_seed
      : data.confidence_pct + text.ci + " " + fmt(row.low, digits) + " " + text.to + " " + fmt(row.high, digits) + data.unit;
    return '<div class="rg-chart__tip"><b>' + marker(row.color) + esc(row.variant) + "</b>: " + esc(text.mean) + " " +
      esc(fmt(row.mean, digits, data.unit)) + " (" + esc(ci) + ")<table class=\"rg-chart__table\"><tr>" +
      seedCells(row.seeds, row.values, digits, data.unit) + "</tr></table></div>";
  }

  var BUILDERS = { lines: linesOption, intervals: intervalsOption };

  // ---- drawing ---------------------------------------------------------------------------------------------------
  // The figure the chart stands in for: the paragraph right after the container whose image is data-figure.
  function staticFigure(container) {
    var name = container.getAttribute("data-figure"), next = container.nextElementSibling;
    if (!name || !next) return null;
    var image = next.tagName === "IMG" ? next : next.querySelector("img");
    if (!image) return null;
    var src = (image.getAttribute("src") || "").split("#")[0].split("?")[0];
    return src.split("/").pop() === name ? (next.tagName === "IMG" ? image : next) : null;
  }

  function draw(echarts, container) {
    var data = JSON.parse(container.getAttribute("data-chart"));
    text = Object.assign({}, TEXT, data.text || {});
    locale = data.locale || null;
    var build = BUILDERS[data.kind];
    if (!build) return;
    var canvas = document.createElement("div");
    canvas.className = "rg-chart__canvas";
    container.insertBefore(canvas, container.firstChild);
    var note = null;
    if (data.note) {
      note = document.createElement("p");
      note.className = "rg-chart__note";
      note.textContent = data.note + text.hover;
      canvas.insertAdjacentElement("afterend", note);
    }
    container.hidden = false;  // hidden until drawn: without the script, the figure or the table is what shows
    var chart = null, narrow = null;

    function render() {
      var width = container.clientWidth || NARROW_PX;
      var built = build(data, width, theme());
      var selected = chart ? (chart.getOption().legend || [{}])[0].selected : null;
      if (selected) built.option.legend.selected = selected;
      canvas.style.height = built.height + "px";
      if (!chart) chart = echarts.init(canvas, null, { renderer: "canvas" });
      else chart.resize();
      chart.setOption(built.option, true);
      narrow = width < NARROW_PX;
    }
    try {
      render();
    } catch (error) {  // nothing half-drawn: the static figure (or nothing, as before) stays
      if (chart) chart.dispose();
      canvas.remove();
      if (note) note.remove();
      container.hidden = true;
      throw error;
    }
    var figure = staticFigure(container);
    if (figure) figure.classList.add("rg-chart__static");
    container.classList.add("rg-chart--live");
    new ResizeObserver(function () {
      if ((container.clientWidth < NARROW_PX) !== narrow) render(); else chart.resize();
    }).observe(container);
    // Material's light/dark toggle changes the CSS colours: draw again with the new ones.
    new MutationObserver(render).observe(document.body, { attributes: true, attributeFilter: ["data-md-color-scheme"] });
    container.setAttribute("data-chart-ready", "");
  }

  function init() {
    var containers = Array.prototype.filter.call(document.querySelectorAll(".rg-chart[data-chart]"), function (c) {
      return !c.hasAttribute("data-chart-ready") && !c.hasAttribute("data-chart-started");
    });
    if (!containers.length) return;
    containers.forEach(function (c) { c.setAttribute("data-chart-started", ""); });
    loadECharts().then(function (echarts) {
      containers.forEach(function (container) {
        try {
          draw(echarts, container);
        } catch (error) {  // one bad chart leaves its static figure and does not stop the others
          console.warn("reportgen chart not drawn:", error);
        }
      });
    }, function (error) {
      console.warn("reportgen charts: the static figures stay;", error.message);
    });
  }

  // Material's instant navigation (when enabled) replaces the page without loading scripts again: document$
  // emits for every page. Otherwise, draw once the page is parsed.
  if (window.document$ && typeof window.document$.subscribe === "function") window.document$.subscribe(init);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
