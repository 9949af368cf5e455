"""Interactive charts: the numbers of a figure, placed in the page for ``docs/javascripts/charts.js`` to draw with
the vendored ECharts (value per epoch and per seed on hover, variants toggled from the legend).

Python computes every number; a :class:`Chart` carries them as JSON in the ``data-chart`` attribute of an empty
``<div class="rg-chart">`` placed just before the figure's PNG. The PNG stays: it is what a reader without
JavaScript sees, what is printed (``@media print`` in ``docs/assets/extra.css``), and the image that carries the
alt text, which the script also gives the drawn chart as its accessible description. The data sits in an
attribute rather than a ``<script>`` block so that text from study files (variant labels) never appears inside a
script element, and it needs no separate file, so a page works under any sub-path.

Two kinds, both drawn by the same script:

- ``lines``: one or more panels (axes) of lines over x (epochs, shift distance); each line belongs to a variant
  (its legend entry and colour), is solid or dashed, and holds its value per seed at every x, the mean (the line)
  and the lowest and highest seed (a band, drawn when there are several seeds);
- ``intervals``: per variant, the mean with its confidence interval and every seed's value, each row with the
  decimals its interval supports (:mod:`reportgen.numbers`).
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from . import i18n, numbers
from .markdown import figure as figure_markdown
from .stats import test_accuracy
from .summary import Summary
from .study import Study

if TYPE_CHECKING:  # matplotlib: only when a chart is made
    from .figures import Figure

CHART_CLASS = "rg-chart"
SIGNIFICANT_DIGITS = 6  # per value in the page: far below what a tooltip shows, a third of the JSON of full floats


@dataclass
class Chart:
    """The numbers of one interactive chart (``data``, JSON-ready) and the static figure it stands in for."""
    data: dict[str, Any]
    figure: Figure | None = None

    def markdown(self) -> Markup:
        """An empty, ``hidden`` container holding the numbers, then the figure as Markdown image syntax. The script
        draws the chart into the container and hides the figure's paragraph (found as the container's next sibling,
        by the PNG's file name); without it, the figure (or, without one, the page's table) is the static view.
        The figure stays outside the HTML block, so Markdown escapes its alt text as in any other figure."""
        payload = html.escape(json.dumps({**self.data, **_edition()}, ensure_ascii=False, separators=(",", ":")),
                              quote=True)
        kind = self.data["kind"]
        if self.figure is None:
            return Markup(f'<div class="{CHART_CLASS}" data-chart-kind="{kind}" data-chart="{payload}" hidden>'
                          f'</div>\n')
        name = html.escape(self.figure.path.rsplit("/", 1)[-1], quote=True)
        return Markup(f'<div class="{CHART_CLASS}" data-chart-kind="{kind}" data-figure="{name}" '
                      f'data-chart="{payload}" hidden></div>\n\n{figure_markdown(self.figure)}\n')


def _edition() -> dict[str, Any]:
    """The words charts.js writes into tooltips and its number format, for a translated edition (the script's own
    English words otherwise, so the English pages carry nothing extra)."""
    lang = i18n.current()
    if lang == i18n.SOURCE_LANGUAGE:
        return {}
    _ = i18n._
    return {"locale": i18n.locale_of(lang).replace("_", "-"),
            "text": {"seed": _("seed"), "mean": _("mean"), "ci": _("% CI"), "to": _("to"),
                     "one_seed": _("one seed: no interval"),
                     "hover": _("; hover for each seed's value, click a legend entry to hide a variant.")}}


def color(i: int) -> str:
    """The i-th variant's colour, as in the static figures (matplotlib's tab10, in order)."""
    from matplotlib import colors as mcolors

    from .figures import PALETTE
    return mcolors.to_hex(PALETTE[i % len(PALETTE)])


def rounded(x: float | None) -> float | None:
    """A value as the page carries it: SIGNIFICANT_DIGITS digits; NaN (no interval) as null."""
    if x is None or not math.isfinite(float(x)):
        return None
    return float(f"{float(x):.{SIGNIFICANT_DIGITS}g}")


def line(variant: str, index: int, panel: int, curve: str, x: list[float], seeds: list[int],
         values: Any, dashed: bool = False) -> dict[str, Any]:
    """One line of a ``lines`` chart: ``values[s][k]`` is seed ``seeds[s]``'s value at ``x[k]``. The mean over
    seeds (the line) and the lowest and highest seed (the band, as in the static figures) are computed here, so
    the script draws and shows numbers and never computes one."""
    rows = [[rounded(v) for v in row] for row in values]
    if len(rows) != len(seeds) or any(len(row) != len(x) for row in rows):
        raise ValueError(f"{variant} {curve}: {len(rows)} rows of values for {len(seeds)} seeds and {len(x)} x")
    columns = [[float(v) for v in column] for column in zip(*values)]
    return {"variant": variant, "color": color(index), "panel": panel, "curve": curve, "dashed": dashed,
            "x": list(x), "seeds": [int(s) for s in seeds], "values": rows,
            "mean": [rounded(sum(c) / len(c)) for c in columns],
            "low": [rounded(min(c)) for c in columns], "high": [rounded(max(c)) for c in columns]}


def lines_chart(panels: list[dict[str, Any]], series: list[dict[str, Any]], alt: str, note: str = "",
                x_labels: list[str] | None = None) -> dict[str, Any]:
    """A ``lines`` chart. ``panels``: ``{"title", "x", "y", "unit", "digits"}`` each; ``note``: what the line
    styles mean; ``x_labels``: the tooltip's heading at each x (default: the x axis name and value)."""
    data: dict[str, Any] = {"kind": "lines", "alt": alt, "note": note, "panels": panels, "series": series}
    if x_labels is not None:
        data["x_labels"] = x_labels
    return data


def results_chart(study: Study, summary: Summary) -> Chart | None:
    """The results table's test accuracies as an interval chart: per variant the mean, its confidence interval
    and every seed's value (the same numbers as the table: :func:`reportgen.stats.test_accuracy`)."""
    rows = []
    by_name = {v.name: v for v in study.available}
    for i, row in enumerate(summary.rows):
        runs = by_name[row.name].runs
        acc = row.acc
        rows.append({"variant": row.label, "color": color(i), "mean": rounded(acc.mean),
                     "low": rounded(acc.low), "high": rounded(acc.high), "std": rounded(acc.std),
                     "digits": numbers.decimals(numbers.half_width(acc)),
                     "seeds": [int(r.seed) for r in runs], "values": [rounded(test_accuracy(r)) for r in runs]})
    if not rows:
        return None
    level = summary.confidence_pct
    alt = i18n._("Test accuracy per variant: the mean over seeds with its %(level)s%% confidence interval, and each "
                 "seed's value") % {"level": level}
    return Chart({"kind": "intervals", "alt": alt, "x": i18n._("test accuracy (%)"), "confidence_pct": level,
                  "unit": "%", "digits": numbers.COARSE_DECIMALS, "rows": rows})
