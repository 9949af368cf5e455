"""Interactive charts: the numbers a page carries for docs/javascripts/charts.js, and the drawn charts in headless
Chromium.

The payload tests use a synthetic study (runs with known per-epoch histories, no training): the learning curves'
chart must carry every seed's value at every epoch exactly as the run histories hold them, the shift curve's the
grid's binned accuracies of the first seed, and the results' interval chart every seed's test accuracy with the
table's interval. The browser test builds a site whose post holds those charts, serves it under a sub-path (as
GitHub Pages does) and checks that the curves chart is drawn over its data: an ECharts instance with one series
per variant and curve, a legend entry that hides a variant, a tooltip with a seed's value, and the static PNG kept
for print.
"""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import markdown
import numpy as np
import pytest

from reportgen.analyses import curves, shift_curve
from reportgen.analyses._shift import ShiftGrid
from reportgen.charts import results_chart
from reportgen.figures import FigureWriter
from reportgen.markdown import package_environment
from reportgen.settings import SHIFT_RADIUS
from reportgen.site import build_site
from reportgen.stats import mean_ci
from reportgen.study import Study, VariantResults
from tests.browser import _session, _wait, find_browser
from tests.synthetic import stored
from tests.test_site import make_project

CURVES = ("train_loss", "val_loss", "train_acc", "val_acc")
SEEDS = [3, 7, 11]
EPOCHS = 4
LABELS = ["Plain <b>net</b>", 'Wide "net" & co']


def fake_run(seed: int, variant: int) -> SimpleNamespace:
    """A run as curves/stats read it: a seed, a per-epoch history and a test accuracy, all distinct numbers."""
    rng = np.random.default_rng(100 * variant + seed)
    epochs = [{key: float(rng.uniform(0.05, 0.95)) for key in CURVES} for _ in range(EPOCHS)]
    history, metrics, record = stored(epochs, test_acc=float(rng.uniform(0.8, 0.9)))
    return SimpleNamespace(seed=seed, history=history, metrics=metrics, record=record)


def fake_study() -> Study:
    variants = [VariantResults(name=f"v{i}", label=label, description="", dataset="fashion-mnist",
                               runs=[fake_run(seed, i) for seed in SEEDS]) for i, label in enumerate(LABELS)]
    return Study(id="charts", config=SimpleNamespace(title="Charts"), profile="smoke", variants=variants)


def writer(directory: Path) -> FigureWriter:
    return FigureWriter(directory=directory, link_prefix="charts", cache_dir=None)  # no figure cache in the project


class _ChartAttrs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.charts: list[dict] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if "data-chart" in values:
            self.charts.append(json.loads(values["data-chart"]))


def charts_in(text: str) -> list[dict]:
    parser = _ChartAttrs()
    parser.feed(text)
    return parser.charts


# ---- the payloads ------------------------------------------------------------------------------------------------
def test_curves_chart_carries_every_seeds_value_at_every_epoch(tmp_path):
    study = fake_study()
    result = curves.compute(study, writer(tmp_path))
    data = result.chart.data
    assert data["kind"] == "lines" and len(data["series"]) == len(LABELS) * len(CURVES)
    assert result.chart.figure == result.figure and data["alt"] == result.figure.alt
    checked = 0
    for variant in study.available:
        for key in CURVES:
            panel = 0 if key.endswith("loss") else 1
            curve = "training" if key.startswith("train") else "validation"
            (line,) = [s for s in data["series"]
                       if s["variant"] == variant.label and s["panel"] == panel and s["curve"] == curve]
            scale = 100 if panel else 1
            assert line["seeds"] == SEEDS and line["x"] == list(range(1, EPOCHS + 1))
            assert line["dashed"] == (curve == "validation")
            expected = [[scale * getattr(row, key) for row in run.history.epochs] for run in variant.runs]
            np.testing.assert_allclose(line["values"], expected, rtol=1e-5)
            np.testing.assert_allclose(line["mean"], np.mean(expected, axis=0), rtol=1e-5)
            np.testing.assert_allclose(line["low"], np.min(expected, axis=0), rtol=1e-5)  # the band
            np.testing.assert_allclose(line["high"], np.max(expected, axis=0), rtol=1e-5)
            checked += 1
    assert checked == len(LABELS) * len(CURVES)


def test_chart_markdown_round_trips_its_numbers_and_keeps_labels_out_of_html(tmp_path):
    result = curves.compute(fake_study(), writer(tmp_path))
    text = str(result.chart.markdown())
    assert charts_in(text) == [result.chart.data]  # the attribute holds exactly the payload
    opening, rest = text.split("\n", 1)  # the container: the labels only HTML-escaped inside its attribute
    assert opening.startswith('<div class="rg-chart"') and opening.endswith(" hidden></div>")
    assert "<b>net</b>" not in opening and "Plain &lt;b&gt;net&lt;/b&gt;" in opening
    assert 'data-figure="curves.png"' in opening
    assert rest.strip() == f"![{result.figure.alt}]({result.figure.path})"  # the PNG and its alt text stay
    # the figure is Markdown outside the HTML block, so even without md_in_html its alt text is escaped
    assert "<b>" not in markdown.markdown(text) and "<b>" not in markdown.markdown(text, extensions=["md_in_html"])
    rendered = package_environment().get_template("curves.md.j2").render(a=result)
    assert charts_in(rendered) == [result.chart.data]


def test_shift_curve_chart_is_the_first_seeds_binned_grid(tmp_path, monkeypatch):
    study = fake_study()
    size = 2 * SHIFT_RADIUS + 1
    grids = {v.name: ShiftGrid(zero=np.random.default_rng(i).uniform(0, 1, (size, size)),
                               wrap=np.random.default_rng(10 + i).uniform(0, 1, (size, size)), n=50, full=50,
                               center=0.5, center_delta_images=0, seconds=0.0, device="cpu")
             for i, v in enumerate(study.available)}
    runs = {id(v.runs[0]): v.name for v in study.available}
    monkeypatch.setattr(shift_curve, "shift_grid_of", lambda run, study=None: grids[runs[id(run)]])
    monkeypatch.setattr(shift_curve, "seed_kept", lambda study: [])  # the closing section's numbers: elsewhere
    monkeypatch.setattr(shift_curve, "baseline_label", lambda study: None)
    result = shift_curve.compute(study, writer(tmp_path))
    data = result.chart.data
    assert len(data["series"]) == 2 * len(LABELS) and len(data["x_labels"]) == SHIFT_RADIUS + 1
    offsets = np.arange(-SHIFT_RADIUS, SHIFT_RADIUS + 1)
    distance = np.rint(np.hypot(*np.meshgrid(offsets, offsets))).astype(int)
    for v in study.available:
        for mode, curve in (("zero", "zero-filled"), ("wrap", "wrap-around")):
            (line,) = [s for s in data["series"] if s["variant"] == v.label and s["curve"] == curve]
            assert line["seeds"] == [SEEDS[0]] and line["x"] == list(range(SHIFT_RADIUS + 1))
            expected = [100 * getattr(grids[v.name], mode)[distance == d].mean() for d in range(SHIFT_RADIUS + 1)]
            np.testing.assert_allclose(line["values"], [expected], rtol=1e-5)
    assert str(result.chart.markdown()).count('class="rg-chart"') == 1


def test_results_chart_holds_each_seeds_test_accuracy_and_the_tables_interval():
    study = fake_study()
    rows = [SimpleNamespace(name=v.name, label=v.label, acc=mean_ci([100 * r.metrics.test_acc for r in v.runs]))
            for v in study.available]
    chart = results_chart(study, SimpleNamespace(rows=rows, confidence_pct=95))
    assert chart.figure is None and chart.data["kind"] == "intervals"
    for v, row, shown in zip(study.available, rows, chart.data["rows"]):
        assert shown["variant"] == v.label and shown["seeds"] == SEEDS
        assert shown["values"] == pytest.approx([100 * r.metrics.test_acc for r in v.runs], rel=1e-5)
        for key in ("mean", "low", "high", "std"):
            assert shown[key] == pytest.approx(getattr(row.acc, key), rel=1e-5)
    # without a figure the container waits hidden: the results table is what shows without JavaScript
    text = str(chart.markdown())
    assert " hidden>" in text and charts_in(text) == [chart.data]
    one = SimpleNamespace(name=rows[0].name, label=rows[0].label, acc=mean_ci([90.0]))
    single = results_chart(study, SimpleNamespace(rows=[one], confidence_pct=95))
    assert single.data["rows"][0]["low"] is None and "NaN" not in str(single.markdown())


def test_chart_rejects_values_that_do_not_match_its_seeds_and_x():
    from reportgen.charts import line
    with pytest.raises(ValueError, match="2 rows of values for 3 seeds"):
        line("a", 0, 0, "training", [1, 2], [0, 1, 2], [[1, 2], [3, 4]])


# ---- in a browser ------------------------------------------------------------------------------------------------
POST = """\
---
title: "Charts"
description: A post with interactive charts.
date: 2024-05-02
slug: charts
authors:
  - reportgen
categories:
  - Convolutions
---

# Charts

<!-- more -->

{results}

{curves}
"""


@pytest.fixture(scope="module")
def chart_site(tmp_path_factory, vendored):
    """A site whose post holds the curves and results charts of the synthetic study. The browser test serves the
    project folder, so the site is under the sub-path ``/site/``, as a GitHub Pages project site is."""
    root = make_project(tmp_path_factory.mktemp("charts") / "project", vendored)
    study = fake_study()
    posts = root / "docs" / "blog" / "posts"
    result = curves.compute(study, writer(posts / "charts"))
    rows = [SimpleNamespace(name=v.name, label=v.label, acc=mean_ci([100 * r.metrics.test_acc for r in v.runs]))
            for v in study.available]
    intervals = results_chart(study, SimpleNamespace(rows=rows, confidence_pct=95))
    (posts / "charts.md").write_text(POST.format(results=intervals.markdown(), curves=result.chart.markdown()),
                                     encoding="utf-8")
    return root, build_site(root), study, result


@pytest.mark.slow
def test_built_post_keeps_the_png_inside_the_chart(chart_site):
    _, site, _, result = chart_site
    page = (site / "blog" / "charts" / "index.html").read_text(encoding="utf-8")
    assert [c["kind"] for c in charts_in(page)] == ["intervals", "lines"]
    assert f'src="{Path(result.figure.path).name}"' in page  # the PNG, beside the page: /blog/charts/curves.png
    assert (site / "assets" / "vendor" / "echarts" / "echarts.min.js").is_file()
    assert (site / "javascripts" / "charts.js").is_file()


CHART = "echarts.getInstanceByDom(document.querySelector('.rg-chart[data-chart-kind=lines] .rg-chart__canvas'))"


@pytest.mark.slow
def test_curves_chart_in_a_browser_under_a_sub_path(chart_site):
    found = find_browser()
    if found is None:
        pytest.skip("browser test skipped: chromium and chromedriver are not installed "
                    "(apt-get install chromium chromium-driver, or set CHROME_BIN and CHROMEDRIVER)")
    root, _, study, result = chart_site
    with _session(found, root) as (driver, base):
        origin = base.rstrip("/")
        driver.get(f"{origin}/site/blog/charts/")  # served from the project folder: the site is under /site/
        assert _wait(driver, "document.querySelectorAll('.rg-chart[data-chart-ready]').length === 2"), \
            driver.get_log("browser")
        # one line per variant and curve, each with its lowest-to-highest-seed band; one legend entry per variant
        options = driver.execute_script(f"const c = {CHART}; const o = c.getOption();"
                                        "return [o.series.map(s => s.type + ':' + s.name), o.legend[0].data];")
        lines = [f"line:{label}" for label in LABELS for _ in CURVES]
        assert options == [lines + [f"custom:{label}" for label in LABELS for _ in CURVES], LABELS]
        # with the chart drawn, its PNG is hidden on screen but still loaded, with its alt text
        image = driver.execute_script("const i = document.querySelector('.rg-chart[data-chart-kind=lines] + p img');"
                                      "return [i.alt, i.naturalWidth > 0, getComputedStyle(i).display === 'none' "
                                      "|| getComputedStyle(i.parentElement).display === 'none'];")
        assert image == [result.figure.alt, True, True]

        # the legend hides a variant: all four of its lines and their bands
        visible = driver.execute_script(
            f"const c = {CHART}; c.dispatchAction({{type: 'legendToggleSelect', name: arguments[0]}});"
            "let n = 0; c.getModel().eachSeries(() => n++); return [c.getOption().legend[0].selected, n];", LABELS[0])
        assert visible == [{LABELS[0]: False, LABELS[1]: True}, 2 * len(CURVES)]

        # the tooltip at an epoch shows each seed's value of the visible variant
        series = 4 + 3  # the second variant's validation accuracy (its series: loss train/val, accuracy train/val)
        epoch = 2
        tip = driver.execute_script(
            f"const c = {CHART}; c.dispatchAction({{type: 'showTip', seriesIndex: {series}, dataIndex: {epoch}}});"
            "const t = c.getDom().parentElement.querySelector('.rg-chart__tip'); return t ? t.textContent : null;")
        assert tip is not None, "no tooltip shown"
        runs = study.available[1].runs
        for run in runs:
            assert f"seed {run.seed}: {100 * run.history.epochs[epoch].val_acc:.1f}%" in tip, tip
        assert LABELS[1] in tip and LABELS[0] not in tip  # the hidden variant is not listed

        # in print the PNG comes back and the canvas goes
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        printed = driver.execute_script(
            "const c = document.querySelector('.rg-chart[data-chart-kind=lines]');"
            "return [getComputedStyle(c.querySelector('.rg-chart__canvas')).display,"
            "        getComputedStyle(c.nextElementSibling).display];")
        assert printed == ["none", "block"]
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})

        # the interval chart is drawn too, and nothing came from another host
        drawn = driver.execute_script("const el = document.querySelector('.rg-chart[data-chart-kind=intervals]');"
                                      "return [el.hidden, echarts.getInstanceByDom("
                                      "el.querySelector('.rg-chart__canvas')).getOption().series.length];")
        assert drawn == [False, 3 * len(LABELS)]
        loaded = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
        assert any(url.endswith("/site/assets/vendor/echarts/echarts.min.js") for url in loaded)
        assert [url for url in loaded if not url.startswith(origin + "/site/")] == []
        severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        assert severe == []


@pytest.mark.slow
def test_escaped_json_survives_the_page(chart_site):
    """Labels with markup reach the chart data intact (the attribute is HTML-escaped, never raw HTML)."""
    _, site, _, _ = chart_site
    page = (site / "blog" / "charts" / "index.html").read_text(encoding="utf-8")
    labels = [s["variant"] for s in charts_in(page)[1]["series"]]
    assert set(labels) == set(LABELS) and "<b>net</b>" not in page
