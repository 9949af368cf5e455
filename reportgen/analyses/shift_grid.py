"""Test accuracy for every shift: each variant's first-seed model on its test images moved by every (dx, dy) in
-6..6 pixels, zero-filled and wrapped around, as heatmaps. The unshifted cell equals the model's test accuracy
(checked in :func:`reportgen.analyses._shift.shift_grid_of`, which also caches the grid on disk; ``precompute``
fills that cache after training)."""
from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np

from .. import i18n, numbers
from ..figures import SEQUENTIAL, TEXT_DARK, TEXT_LIGHT, WIDTH, WRONG, Figure, FigureWriter, cell_labels
from ..i18n import N_
from ..settings import FIRST_SEED, SHIFT_RADIUS
from ..study import Study
from . import Analysis
from ._common import first_run, pct, variant_head
from ._shift import precompute_shift_grids as precompute
from ._shift import seed_kept, shift_grid_of
from ._shift_findings import SeedKept, ShiftReading, baseline_label
from ._shift_findings import findings as shift_findings


@dataclass
class AxisPoint:
    dx: int                  # a horizontal shift (dy = 0)
    zero_pct: float
    wrap_pct: float


@dataclass
class VariantShiftGrid:
    name: str
    label: str
    dataset: str
    seeds: list[int]
    seed: int
    zero: list[list[float]]  # accuracy (%) [dy + radius][dx + radius], zero-filled
    wrap: list[list[float]]  # ... wrapped around
    figure: Figure
    center_pct: float        # the unshifted cell
    test_acc_pct: float      # the run's own test accuracy
    center_matches: bool     # the unshifted cell reproduces the run's evaluation exactly
    test_size: int           # test images the grid uses
    full_test_size: int      # test images of the run
    subset: bool             # test_size < full_test_size
    device: str              # where the grid was computed ("cpu", "cuda")
    mean_zero_pct: float
    mean_wrap_pct: float
    min_zero_pct: float
    min_wrap_pct: float
    max_diff_pct: float      # the largest zero-filled vs wrapped difference, in points
    axis: list[AxisPoint]
    corner_zero_pct: float   # shift (-radius, -radius)
    corner_wrap_pct: float
    seconds: float           # time the grid took when it was computed


@dataclass
class ShiftGridResult(ShiftReading):
    basis: str
    radius: int
    shifts: int              # (2 radius + 1)²
    variants: list[VariantShiftGrid] = field(default_factory=list)
    subset: bool = False     # some grid uses only part of the test set
    seed_kept: list[SeedKept] = field(default_factory=list)  # every seed's accuracy at the reported distances
    baseline: str | None = None                            # the label the closing section compares with


def compute(study: Study, figures: FigureWriter) -> ShiftGridResult:
    grids = [(v, first_run(v), shift_grid_of(first_run(v), study=study)) for v in study.available]
    radius = SHIFT_RADIUS
    rows = []
    # One colour scale for every variant's heatmaps, from the lowest to the highest cell of any of them.
    low = min((float(min(g.zero.min(), g.wrap.min())) for _, _, g in grids), default=0.0)
    high = max((float(max(g.zero.max(), g.wrap.max())) for _, _, g in grids), default=1.0)
    for v, run, g in grids:
        zero, wrap = g.zero * 100, g.wrap * 100
        fig = draw_shift_heatmaps(figures, zero, wrap, radius, vmin=100 * low, vmax=100 * max(high, low + 0.01),
                                  name=f"shift-grid-{v.name}",
                                  title=i18n._("%(label)s: test accuracy (%%) after moving every test image "
                                               "(seed %(seed)s)") % {"label": v.label, "seed": run.seed})
        axis = [AxisPoint(dx=dx, zero_pct=float(zero[radius, dx + radius]), wrap_pct=float(wrap[radius, dx + radius]))
                for dx in range(-radius, radius + 1)]
        rows.append(VariantShiftGrid(
            **variant_head(v, run), zero=zero.tolist(), wrap=wrap.tolist(), figure=fig,
            center_pct=float(zero[radius, radius]), test_acc_pct=pct(run.metrics.test_acc),
            center_matches=g.center_delta_images == 0, test_size=g.n, full_test_size=g.full,
            subset=g.n < g.full, device=g.device,
            mean_zero_pct=float(zero.mean()), mean_wrap_pct=float(wrap.mean()),
            min_zero_pct=float(zero.min()), min_wrap_pct=float(wrap.min()),
            max_diff_pct=float(np.abs(zero - wrap).max()), axis=axis,
            corner_zero_pct=float(zero[0, 0]), corner_wrap_pct=float(wrap[0, 0]), seconds=g.seconds))
    return ShiftGridResult(basis=FIRST_SEED, radius=radius, shifts=(2 * radius + 1) ** 2, variants=rows,
                           subset=any(r.subset for r in rows), seed_kept=seed_kept(study),
                           baseline=baseline_label(study))


def draw_shift_heatmaps(figures: FigureWriter, zero: np.ndarray, wrap: np.ndarray, radius: int, vmin: float, title: str,
                   name: str, vmax: float = 100.0) -> Figure:
    """Accuracy (%) for every shift, zero-filled next to wrapped around, same colour scale, values written in."""
    def draw() -> plt.Figure:
        fig, axes = plt.subplots(1, 2, figsize=(WIDTH, WIDTH * 0.5 + 0.3), layout="constrained")
        extent = (-radius - 0.5, radius + 0.5, radius + 0.5, -radius - 0.5)
        for ax, grid, label in ((axes[0], zero, i18n._("zero-filled (black comes in)")),
                                (axes[1], wrap, i18n._("wrap-around (torch.roll)"))):
            image = ax.imshow(grid, cmap=SEQUENTIAL, vmin=vmin, vmax=vmax, extent=extent, interpolation="nearest")
            cell_labels(ax, [(ix - radius, iy - radius, numbers.plain(v),
                              TEXT_DARK if v > vmin + 0.6 * (vmax - vmin) else TEXT_LIGHT)
                             for (iy, ix), v in np.ndenumerate(grid)], fontsize=5.5)
            ax.add_patch(plt.Rectangle((-0.5, -0.5), 1, 1, fill=False, edgecolor=WRONG, linewidth=1.2))
            ticks = list(range(-radius, radius + 1, 2))
            ax.set_xticks(ticks)
            ax.set_yticks(ticks)
            ax.tick_params(labelsize=8)
            ax.set(xlabel=i18n._("dx: pixels to the right"), ylabel=i18n._("dy: pixels down"), title=label)
            ax.title.set_fontsize(9.5)
            ax.grid(False)
        fig.colorbar(image, ax=axes, fraction=0.025, pad=0.02).set_label(i18n._("test accuracy (%)"))
        fig.suptitle(title, fontsize=10.5)
        return fig

    c = radius
    alt = i18n._("%(title)s. Two %(side)s×%(side)s heatmaps of test accuracy for every shift from %(low)s to "
                 "%(radius)s pixels: unshifted %(zero)s%%; shifted %(radius)s pixels right %(right)s%% zero-filled and "
                 "%(wrapped)s%% wrapped; lowest %(lowest)s%% zero-filled") % {
        "title": title, "side": 2 * radius + 1, "low": -radius, "radius": radius,
        "zero": numbers.plain(zero[c, c], 1), "right": numbers.plain(zero[c, -1], 1),
        "wrapped": numbers.plain(wrap[c, -1], 1), "lowest": numbers.plain(zero.min(), 1)}
    return figures.emit(name, alt, (zero, wrap, radius, vmin, vmax, title), draw)


def findings(result: ShiftGridResult) -> list[str]:
    """For the closing section: the same sentences as ``shift_curve``'s (every seed's accuracy at 1, 2 and 4
    pixels, and each variant's difference to the baseline there)."""
    sizes = sorted({v.test_size for v in result.variants})
    return shift_findings(result.seed_kept, result.baseline, sizes,
                          max((v.full_test_size for v in result.variants), default=0))


ANALYSIS = Analysis(
    name="shift_grid", title=N_("Test accuracy for every shift"), compute=compute, precompute=precompute,
    findings=findings,
    summary=N_("Test accuracy of each variant for every shift of the test images up to 6 pixels, zero-filled and "
               "wrapped around, as heatmaps."),
)
