"""Accuracy against shift distance: the shift grids summarised by how far the image moved (√(dx² + dy²), rounded;
the accuracies at one distance averaged), one line per variant. Reads the same cached grids as ``shift_grid``
(:func:`reportgen.analyses._shift.shift_grid_of`); ``precompute`` fills that cache after training."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import matplotlib.pyplot as plt

from .. import i18n, numbers
from ..charts import Chart, line, lines_chart
from ..figures import MUTED, PALETTE, WIDTH, Figure, FigureWriter
from ..i18n import N_
from ..settings import FIRST_SEED, SHIFT_RADIUS
from ..study import Study
from . import Analysis
from ._common import first_run, pct, variant_head
from ._shift import precompute_shift_grids as precompute
from ._shift import seed_kept, shift_grid_of
from ._shift_findings import DISTANCES, SeedKept, ShiftReading, baseline_label, distance_bins
from ._shift_findings import findings as shift_findings


@dataclass
class CurvePoint:
    distance: int            # √(dx² + dy²) rounded, in pixels
    shifts: int              # how many shifts (dx, dy) have that distance
    zero_pct: float          # mean accuracy over them, zero-filled
    wrap_pct: float          # ... wrapped around
    min_zero_pct: float


@dataclass
class VariantShiftCurve:
    name: str
    label: str
    dataset: str
    seeds: list[int]
    seed: int
    points: list[CurvePoint]     # distance 0..radius
    start_pct: float             # zero-filled, unshifted
    end_pct: float               # zero-filled, at distance radius
    drop_pct: float              # start - end, in points

    def point(self, distance: int) -> CurvePoint:
        """For prose: the curve at ``distance`` pixels (rounded as the curve bins them)."""
        found = next((p for p in self.points if p.distance == round(distance)), None)
        if found is None:
            raise ValueError(f"point({distance}): the curve has distances {self.points[0].distance} to "
                             f"{self.points[-1].distance}")
        return found


@dataclass
class ShiftCurveResult(ShiftReading):
    basis: str
    radius: int
    variants: list[VariantShiftCurve] = field(default_factory=list)
    figure: Figure | None = None
    subset: bool = False                                   # some grid uses only part of the test set
    test_sizes: list[int] = field(default_factory=list)    # the distinct numbers of test images the grids use
    full_test_size: int = 0
    chart: Chart | None = None                             # the figure's numbers, with the seed, for the page
    seed_kept: list[SeedKept] = field(default_factory=list)  # every seed's accuracy at the reported distances
    baseline: str | None = None                            # the label the closing section compares with
    distances: tuple[int, ...] = DISTANCES                 # the distances measured over every seed (kept())


def compute(study: Study, figures: FigureWriter) -> ShiftCurveResult:
    radius = SHIFT_RADIUS
    bins = distance_bins(radius)
    rows, series = [], {}
    grids = [(v, first_run(v), shift_grid_of(first_run(v), study=study)) for v in study.available]
    for v, run, g in grids:
        points = []
        for k in range(radius + 1):
            mask = bins == k
            points.append(CurvePoint(distance=k, shifts=int(mask.sum()), zero_pct=pct(g.zero[mask].mean()),
                                     wrap_pct=pct(g.wrap[mask].mean()), min_zero_pct=pct(g.zero[mask].min())))
        series[v.label] = [asdict(p) for p in points]
        rows.append(VariantShiftCurve(**variant_head(v, run), points=points, start_pct=points[0].zero_pct,
                                      end_pct=points[-1].zero_pct, drop_pct=points[0].zero_pct - points[-1].zero_pct))
    fig = draw_shift_curve(figures, series, name="shift-curve",
                           title=i18n._("Test accuracy against shift distance")) if series else None
    chart = Chart(shift_chart(rows, fig.alt), fig) if fig else None
    sizes = sorted({(int(g.n), int(g.full)) for _, _, g in grids})
    return ShiftCurveResult(basis=FIRST_SEED, radius=radius, variants=rows, figure=fig,
                            subset=any(n < full for n, full in sizes), test_sizes=[n for n, _ in sizes],
                            full_test_size=max((full for _, full in sizes), default=0), chart=chart,
                            seed_kept=seed_kept(study), baseline=baseline_label(study))


def shift_chart(rows: list[VariantShiftCurve], alt: str) -> dict:
    """The figure's lines for the page: per variant, zero-filled (solid) and wrap-around (dashed) accuracy at
    every distance, of the one seed whose network the grid measured."""
    panel = {"title": "", "x": i18n._("shift distance (pixels)"), "y": i18n._("test accuracy (%)"), "unit": "%",
             "digits": numbers.COARSE_DECIMALS}
    lines = []
    for i, v in enumerate(rows):
        x = [p.distance for p in v.points]
        lines.append(line(v.label, i, 0, i18n._("zero-filled"), x, [v.seed], [[p.zero_pct for p in v.points]]))
        lines.append(line(v.label, i, 0, i18n._("wrap-around"), x, [v.seed], [[p.wrap_pct for p in v.points]], dashed=True))
    points = rows[0].points if rows else []
    x_labels = [i18n.ngettext("%(d)s px: %(n)s shift averaged", "%(d)s px: %(n)s shifts averaged", p.shifts)
                % {"d": p.distance, "n": p.shifts} for p in points]
    return lines_chart([panel], lines, alt, note=i18n._("solid: zero-filled, dashed: wrap-around"),
                       x_labels=x_labels)


def draw_shift_curve(figures: FigureWriter, series: dict[str, list[dict[str, float]]], title: str, name: str) -> Figure:
    """Accuracy against shift distance: solid zero-filled, dashed wrap-around, one colour per variant."""
    def draw() -> plt.Figure:
        fig, ax = plt.subplots(figsize=(WIDTH, 3.6))
        from matplotlib.lines import Line2D
        handles = []
        for i, (label, points) in enumerate(series.items()):
            color = PALETTE[i % len(PALETTE)]
            d = [p["distance"] for p in points]
            ax.plot(d, [p["zero_pct"] for p in points], "-o", color=color, markersize=4)
            ax.plot(d, [p["wrap_pct"] for p in points], "--", color=color, alpha=0.7)
            handles.append(Line2D([], [], color=color, marker="o", markersize=4, label=label))
        handles += [Line2D([], [], color=MUTED, linestyle="-", label=i18n._("zero-filled")),
                    Line2D([], [], color=MUTED, linestyle="--", label=i18n._("wrap-around"))]
        ax.set(xlabel=i18n._("shift distance √(dx² + dy²) in pixels (rounded)"), ylabel=i18n._("test accuracy (%)"),
               title=title)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5))
        fig.tight_layout()
        return fig

    parts = "; ".join(i18n._("%(label)s: %(start)s%% unshifted, %(end)s%% at %(d)s pixels") % {
        "label": label, "start": numbers.plain(p[0]["zero_pct"], 1), "end": numbers.plain(p[-1]["zero_pct"], 1),
        "d": p[-1]["distance"]} for label, p in series.items())
    alt = i18n._("%(title)s, one line per variant (solid: zero-filled, dashed: wrap-around). %(parts)s") % {
        "title": title, "parts": parts}
    return figures.emit(name, alt, (series, title), draw)


def findings(result: ShiftCurveResult) -> list[str]:
    """For the closing section: every variant's accuracy at 1, 2 and 4 pixels over its seeds, and its difference
    to the baseline there (the same sentences as ``shift_grid``'s)."""
    return shift_findings(result.seed_kept, result.baseline, result.test_sizes, result.full_test_size)


ANALYSIS = Analysis(
    name="shift_curve", title=N_("Accuracy against shift distance"), compute=compute, precompute=precompute,
    findings=findings,
    summary=N_("The shift grids summarised by shift distance: test accuracy against how far the image moved."),
)
