"""Learned filters: the weights of every convolution of the first seed's model, drawn as small images; for a fully
connected variant (in a study that also has a convolutional one) its first layer's weights as 28×28 templates.

Each filter of a first convolution (it looks at the image itself) is also read as the convolution post reads its
hand-made kernels: the sum of its weights (a kernel that sums to zero gives zero on any flat area, one that does not
also reports how bright the area is), its response to the flat black background, and the direction in which its
weights change most, from the kernel's structure tensor: with g_x, g_y the weights' differences across columns
and rows at the centre of each 2×2 block, the gradient direction is ½·atan2(2Σg_x·g_y, Σg_x² − Σg_y²) and the coherence
√((Σg_x² − Σg_y²)² + 4(Σg_x·g_y)²) / (Σg_x² + Σg_y²) says how single that direction is (0: none, 1: one). A
filter responds to edges that run across its gradient: weights that change from column to column make a vertical
edge detector."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors as mcolors
from torch import nn

from .. import i18n, numbers
from ..figures import DIVERGING, WIDTH, Figure, FigureWriter, _frameless, _mosaic, _tile_grid, _with_bad
from ..i18n import N_
from ..settings import FIRES_ON_BLACK, FIRST_SEED, IMAGE_SIZE, NEAR_ZERO_SUM, ORIENTED
from ..study import Study, VariantResults
from . import Analysis, pick
from ._common import first_run, layer_table, load_model, normalization, shape_text, variant_head


@dataclass
class FilterReading:
    """One first-layer filter read like a hand-made kernel."""
    index: int
    sum: float                      # the sum of its weights (over input channels too)
    balance: float                  # sum / sum of absolute weights, in -1..1
    near_zero_sum: bool             # |balance| < NEAR_ZERO_SUM
    flat_black: float               # its output on the flat black background (bias included, before the ReLU)
    orientation: str                # "vertical", "horizontal", "rising diagonal", "falling diagonal" or "none"
    coherence: float                # 0..1: how single the direction of change is
    bias: float = 0.0               # its bias: flat_black = black · sum + bias (VariantFilters.black)

    @property
    def fires_on_black(self) -> bool:
        """Whether its output on the black background is more than a trace (above FIRES_ON_BLACK)."""
        return self.flat_black > FIRES_ON_BLACK

    @property
    def orientation_words(self) -> str:
        """:attr:`orientation` in the words of the edition being rendered ("diagonal ascendente" in Portuguese)."""
        return i18n._(self.orientation)


@dataclass
class FilterLayer:
    name: str
    shape: str                      # the weight tensor's shape, "out × in × kh × kw"
    out_channels: int
    in_channels: int
    kernel: str                     # "5×5"
    first: bool                     # a first layer: its filters look at the image itself
    min: float
    max: float
    figure: Figure                  # one tile per filter (deeper layers: the mean over input channels)
    detail_figure: Figure | None    # deeper layers: every input-channel slice of the first 16 × 16 filters
    detail_out: int                 # output channels in the detail figure (0: none)
    detail_in: int                  # input channels in the detail figure (0: none)
    readings: list[FilterReading] = field(default_factory=list)  # first layers only: each filter read
    relu_next: bool = False         # a ReLU takes the convolution's output directly (no batch norm between)


@dataclass
class LinearTemplates:
    """A fully connected network's first layer: each hidden unit's weights as an image."""
    name: str
    units: int
    shown: int
    side: int
    figure: Figure
    output: bool = False            # the layer is the network's last: its units are the class scores, not hidden


@dataclass
class VariantFilters:
    name: str
    label: str
    dataset: str
    seeds: list[int]
    seed: int
    layers: list[FilterLayer] = field(default_factory=list)
    linear: LinearTemplates | None = None
    black: float = 0.0                  # the black background as the network sees it: (0 − mean) / std


@dataclass
class FiltersResult:
    basis: str
    variants: list[VariantFilters] = field(default_factory=list)
    deeper: bool = False                # some variant has a convolution after its first
    near_zero: float = NEAR_ZERO_SUM    # the thresholds of the readings, for the partial to state
    fires: float = FIRES_ON_BLACK
    oriented: float = ORIENTED

    def reading(self, variant: str, index: int = 0) -> FilterReading:
        """A first-layer filter of one variant, read (for prose: ``result("filters").reading("tiny").sum``)."""
        found = pick(self.variants, variant, "variant")
        readings = next((layer.readings for layer in found.layers if layer.readings), [])
        if not 0 <= index < len(readings):
            raise ValueError(f"reading({variant!r}, {index}): {variant!r} has {len(readings)} first-layer filters")
        return readings[index]


def orientation(kernel: np.ndarray) -> tuple[str, float]:
    """The edges a 2-D kernel responds to, from its structure tensor, and the coherence of that direction.

    Rows run down and columns right, as in an image. The gradient direction phi is 0 when the weights change from
    column to column (a vertical edge detector) and ±90° when they change from row to row (horizontal); at +45°
    they grow towards the lower right, so the edge runs from lower left to upper right (a rising diagonal)."""
    w = np.asarray(kernel, dtype=float)
    # Differences across columns (g_x) and rows (g_y) at the centre of every 2×2 block of weights: unlike central
    # differences, these see a one-pixel line on either side with the same orientation, and need no border rule.
    gx = ((w[1:, 1:] - w[1:, :-1]) + (w[:-1, 1:] - w[:-1, :-1])) / 2
    gy = ((w[1:, 1:] - w[:-1, 1:]) + (w[1:, :-1] - w[:-1, :-1])) / 2
    sxx, syy, sxy = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    energy = sxx + syy
    if energy <= 0:
        return "none", 0.0
    coherence = math.hypot(sxx - syy, 2 * sxy) / energy
    phi = math.degrees(0.5 * math.atan2(2 * sxy, sxx - syy))
    if coherence < ORIENTED:
        return "none", coherence
    if abs(phi) <= 22.5:
        return "vertical", coherence
    if abs(phi) >= 67.5:
        return "horizontal", coherence
    return ("rising diagonal" if phi > 0 else "falling diagonal"), coherence


def read_filter(index: int, weights: np.ndarray, bias: float, black: float) -> FilterReading:
    """A first-layer filter ([in, k, k] weights) read like a hand-made kernel (see the module's docstring)."""
    w = np.asarray(weights, dtype=float)
    total, absolute = float(w.sum()), float(np.abs(w).sum())
    balance = total / absolute if absolute else 0.0
    label, coherence = orientation(w.sum(0) if w.ndim == 3 else w)
    return FilterReading(index=index, sum=total, balance=balance, near_zero_sum=abs(balance) < NEAR_ZERO_SUM,
                         flat_black=black * total + bias, orientation=label, coherence=coherence, bias=bias)


def compute(study: Study, figures: FigureWriter) -> FiltersResult:
    rows = []
    for v in study.available:
        run = first_run(v)
        model = load_model(run)
        norm = normalization(run)
        black = (0.0 - norm.mean) / norm.std
        layers = []
        table = layer_table(model)
        for position, (name, module) in enumerate(table):
            if not isinstance(module, nn.Conv2d):
                continue
            relu_next = position + 1 < len(table) and isinstance(table[position + 1][1], nn.ReLU)
            w = module.weight.detach().numpy()
            out_c, in_c, kh, kw = w.shape
            first = in_c == 1 or not layers
            tiles = w[:, 0] if in_c == 1 else w.mean(1)
            what = (i18n._("one tile per filter") if in_c == 1
                    else i18n._("one tile per output channel, mean over its %(n)s input channels") % {"n": in_c})
            fig = draw_filters(figures, tiles, name=f"filters-{v.name}-{name}", layer=name,
                               title=i18n.ngettext("%(label)s, %(layer)s: %(n)s filter of %(shape)s (%(what)s)",
                                                   "%(label)s, %(layer)s: %(n)s filters of %(shape)s (%(what)s)",
                                                   out_c)
                               % {"label": v.label, "layer": name, "n": out_c, "shape": f"{in_c} × {kh} × {kw}",
                                  "what": what})
            detail, out_shown, in_shown = None, 0, 0
            if in_c > 1:
                out_shown, in_shown = min(out_c, 16), min(in_c, 16)
                some = ("" if (out_shown, in_shown) == (out_c, in_c)
                        else i18n._(" (the first %(out)s × %(in)s)") % {"out": out_shown, "in": in_shown})
                detail = draw_filter_detail(figures, w[:out_shown, :in_shown], name=f"filters-{v.name}-{name}-detail",
                                            layer=name, title=i18n._("%(label)s, %(layer)s: each filter's %(kernel)s "
                                                                     "slice for every input channel%(some)s")
                                            % {"label": v.label, "layer": name, "kernel": f"{kh}×{kw}",
                                               "some": some})
            bias = module.bias.detach().numpy() if module.bias is not None else np.zeros(out_c)
            readings = [read_filter(i, w[i], float(bias[i]), black) for i in range(out_c)] if first else []
            layers.append(FilterLayer(name=name, shape=shape_text(w.shape), out_channels=out_c, in_channels=in_c,
                                      kernel=f"{kh}×{kw}", first=first, min=float(w.min()), max=float(w.max()),
                                      figure=fig, detail_figure=detail, detail_out=out_shown, detail_in=in_shown,
                                      readings=readings, relu_next=relu_next))
        linear = None if layers else _linear_templates(figures, v, model)  # a fully connected network
        rows.append(VariantFilters(**variant_head(v, run), layers=layers, linear=linear, black=black))
    return FiltersResult(basis=FIRST_SEED, variants=rows,
                         deeper=any(not layer.first for row in rows for layer in row.layers))


def _linear_templates(figures: FigureWriter, v: VariantResults, model: nn.Module) -> LinearTemplates | None:
    """A network without convolutions: its first linear layer's weights are 28x28 templates (the first 32 units);
    None when that layer does not take whole images."""
    fc = next((m for _, m in layer_table(model) if isinstance(m, nn.Linear)), None)
    pixels = IMAGE_SIZE * IMAGE_SIZE
    if fc is None or fc.in_features % pixels != 0:
        return None
    w = fc.weight.detach().numpy()[:32].reshape(-1, fc.in_features // pixels, IMAGE_SIZE, IMAGE_SIZE)[:, 0]
    name = next(n for n, m in layer_table(model) if m is fc)
    output = [m for _, m in layer_table(model) if isinstance(m, nn.Linear)][-1] is fc  # a linear classifier
    units = i18n._("class scores") if output else i18n._("hidden units")
    return LinearTemplates(name=name, units=int(fc.out_features), shown=len(w), side=IMAGE_SIZE, output=output,
                           figure=draw_filters(figures, w, name=f"filters-{v.name}-{name}", layer=name,
                                               title=i18n._("%(label)s, %(layer)s: the weights of %(n)s %(units)s "
                                                            "as %(size)s × %(size)s images")
                                               % {"label": v.label, "layer": name, "n": len(w), "units": units,
                                                  "size": IMAGE_SIZE}))


def draw_filters(figures: FigureWriter, tiles: np.ndarray, layer: str, title: str, name: str) -> Figure:
    """Learned weights as small images on one symmetric colour scale (blue negative, red positive)."""
    tiles = np.asarray(tiles, dtype=float)

    def draw() -> plt.Figure:
        n = len(tiles)
        cols = min(n, 8)
        rows = math.ceil(n / cols)
        big = tiles.shape[-1] > 8
        width = min(WIDTH, 1.8 + cols * 1.3)
        fig, ax = plt.subplots(figsize=(width, 0.6 + rows * 1.1 * (width - 1.1) / cols))
        limit = float(np.abs(tiles).max()) or 1.0
        norm = mcolors.Normalize(-limit, limit)
        image = _tile_grid(ax, tiles, cols, (1.12, 1.25), DIVERGING, norm, str, fontsize=7)
        bar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, shrink=0.9 if rows > 1 else 0.8)
        bar.set_label(i18n._("weight"))
        ax.set_title(title, fontsize=10 if big else 10.5)
        fig.tight_layout()
        return fig

    alt = i18n._("%(title)s. Each tile shows the weights of %(layer)s as an image: red pixels are positive weights, "
                 "blue negative, white near zero (range %(low)s to %(high)s)") % {
        "title": title, "layer": layer, "low": numbers.plain(tiles.min(), 2), "high": numbers.plain(tiles.max(), 2)}
    return figures.emit(name, alt, (tiles, layer, title), draw)


def draw_filter_detail(figures: FigureWriter, weights: np.ndarray, layer: str, title: str, name: str) -> Figure:
    """Every 2-D slice of a deeper convolution's kernels: one column per output channel, one row per input
    channel, on one symmetric colour scale."""
    weights = np.asarray(weights, dtype=float)

    def draw() -> plt.Figure:
        out_c, in_c, kh, kw = weights.shape
        limit = float(np.abs(weights).max()) or 1.0
        tiles = weights.transpose(1, 0, 2, 3).reshape(-1, kh, kw)  # row r = input channel r
        mosaic = _mosaic(tiles, out_c, gap=1)
        cell = (WIDTH - 1.6) / out_c
        fig, ax = plt.subplots(figsize=(WIDTH, 1.2 + in_c * cell))
        image = ax.imshow(mosaic, cmap=_with_bad(DIVERGING), vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_xticks([c * (kw + 1) + (kw - 1) / 2 for c in range(out_c)], [str(c) for c in range(out_c)],
                      fontsize=7)
        ax.set_yticks([r * (kh + 1) + (kh - 1) / 2 for r in range(in_c)], [str(r) for r in range(in_c)],
                      fontsize=7)
        ax.set(xlabel=i18n._("output channel (filter)"), ylabel=i18n._("input channel"))
        _frameless(ax, tick_marks=False)
        ax.set_title(title, fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02).set_label(i18n._("weight"))
        fig.tight_layout()
        return fig

    alt = i18n._("%(title)s: a grid of %(columns)s columns (output channels, one per filter) by %(rows)s rows "
                 "(input channels); each tile is one %(kernel)s slice of a filter, red positive, blue negative") % {
        "title": title, "columns": weights.shape[0], "rows": weights.shape[1],
        "kernel": f"{weights.shape[2]}×{weights.shape[3]}"}
    return figures.emit(name, alt, (weights, layer, title), draw)


ANALYSIS = Analysis(
    name="filters", title=N_("Learned filters"), compute=compute, needs_convolution=True,
    summary=N_("The weights of every convolution of the first seed's model, drawn as small images."),
)
