"""Receptive field of every layer: how many input pixels one unit of each convolution and pooling layer sees, and
how far apart neighbouring units look, walked from the model's own modules (needs no training).

Each layer with a k×k window (dilation d makes it span d·(k − 1) + 1 pixels of its input), stride s and padding p
maps a receptive field r and a jump j (input pixels between neighbouring units) to

    r_out = r_in + (k − 1) · j_in        j_out = j_in · s

from r = 1, j = 1 at the image; the centre of the first unit moves by ((k − 1) / 2 − p) · j_in. Layers without a
window (activations, batch norm, dropout) change neither. An adaptive pooling layer's window is read from its input
and output sizes (global average pooling: the whole map). The walk stops at ``flatten``: after it, the classifier
reads every unit of the last map with its own weight (position-specific), unless a global pool left one unit per map.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from markupsafe import Markup
from matplotlib import patches
from torch import nn

from .. import i18n
from ..figures import MUTED, PALETTE, TEXT_DARK, WIDTH, Figure, FigureWriter, _frameless
from ..i18n import N_
from ..settings import IMAGE_SIZE
from ..study import Study
from . import Analysis, AnalysisError
from ._common import build_spec, layer_shapes, layer_table, model_specs

WINDOWED = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


@dataclass
class FieldRow:
    name: str
    type: str
    k: int                       # the window's span in units of its input (dilation included)
    s: int                       # stride
    p: int                       # padding
    size: int                    # output units per side (from a forward pass)
    channels: int
    r: int                       # receptive field: input pixels per side that one output unit sees
    j: int                       # jump: input pixels between the fields of neighbouring output units
    r_in: int                    # the field and jump of the layer's input
    j_in: int
    centre: float                # where the first unit's field is centred (input pixel coordinate, 0 = first pixel)
    whole_image: bool            # the field of a unit in the middle of the map covers the whole image
    math: Markup                 # the update with the numbers put in, as inline LaTeX
    border_units: int            # units of the size × size map whose field reaches past the image's edge


@dataclass
class ModelField:
    model: str
    options: dict[str, Any]
    variants: list[str]          # labels of the variants that use this model
    input: int                   # the image's size (pixels per side)
    rows: list[FieldRow]         # empty: the model has no convolution or pooling layer
    head: str                    # "positions": flatten keeps every position; "global": one number per map; "none"
    last: str                    # the last layer of the walk (its maps are what the classifier reads)
    maps: int                    # channels the classifier reads
    positions: int               # positions per map the classifier reads (size × size)
    flat: int                    # the length of the flattened vector
    reader: str                  # the first linear layer ("fc1")
    figure: Figure | None
    like: str = ""               # the variants of an earlier model with the same kind of head ("": the first)


@dataclass
class ReceptiveFieldResult:
    models: list[ModelField]
    image: int                   # pixels per side of the input image

    def seen_by(self, label: str) -> int:
        """Pixels per side that one unit of the last map the variant labelled ``label`` hands its classifier sees
        (prose: ``result("receptive_field").seen_by(variant("pool").label)``)."""
        for m in self.models:
            if label in m.variants and m.rows:
                return next(r.r for r in m.rows if r.name == m.last)
        raise ValueError(f"seen_by({label!r}): no variant with a convolution is labelled so "
                         f"(labels: {', '.join(v for m in self.models for v in m.variants)})")


def _pair(v: Any) -> int:
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


def _window(module: nn.Module, n_in: int, n_out: int) -> tuple[int, int, int]:
    """The (span, stride, padding) of a windowed layer, in units of its input. An adaptive pool of n inputs to o
    outputs uses windows of n / o units when o divides n (global pooling: o = 1, the whole map); otherwise its
    widest window and its shortest step (upper and lower bounds of the varying ones)."""
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        if n_in % n_out == 0:
            return n_in // n_out, n_in // n_out, 0
        starts = [math.floor(i * n_in / n_out) for i in range(n_out)]
        ends = [math.ceil((i + 1) * n_in / n_out) for i in range(n_out)]
        return max(e - b for b, e in zip(starts, ends)), min(b - a for a, b in pairwise(starts)), 0
    k, p = _pair(module.kernel_size), _pair(module.padding)
    s = _pair(module.stride) if module.stride else k  # a pooling layer's stride defaults to its window
    d = _pair(getattr(module, "dilation", 1))
    return d * (k - 1) + 1, s, p


def _units_past_edge(centre: float, r: int, j: int, units: int, size: int) -> int:
    """How many of a units × units map's fields (the first centred at ``centre``, ``j`` apart, ``r`` wide) reach
    past a size × size image's edge, into the padding: all but the inner square whose fields stay inside."""
    centres = centre + np.arange(units) * j
    inside = int(np.count_nonzero((centres - (r - 1) / 2 >= 0) & (centres + (r - 1) / 2 <= size - 1)))
    return units * units - inside * inside


def receptive_field_rows(model: nn.Module, in_channels: int = 1, size: int = IMAGE_SIZE) -> list[dict[str, Any]]:
    """One row per windowed layer before ``flatten``: its window, output size, receptive field and jump. A layer
    that changes the map's size without a window this walk knows is an AnalysisError, not a wrong number."""
    layers = layer_table(model)
    acts = layer_shapes(model, in_channels, size)
    r, j, centre = 1, 1, 0.0
    rows: list[dict[str, Any]] = []
    for name, module in layers:
        before, after = acts.input_shapes[name], acts.output_shapes[name]
        if len(before) != 4 or len(after) != 4:
            break  # flatten (or anything else that leaves the image grid): the walk ends
        if not isinstance(module, WINDOWED):
            if before[2:] != after[2:]:
                raise AnalysisError(f"layer {name} ({type(module).__name__}) changes the map from {before[-1]} to "
                                    f"{after[-1]} pixels; the receptive field walk knows no window for it")
            continue
        k, s, p = _window(module, int(before[-1]), int(after[-1]))
        r_out, j_out = r + (k - 1) * j, j * s
        centre += ((k - 1) / 2 - p) * j
        middle = centre + (int(after[-1]) // 2) * j_out  # the centre of the unit in the middle of the map
        latex = rf"r = {r} + ({k} - 1) \cdot {j} = {r_out}"
        if int(after[-1]) > 1:  # one unit per map has no neighbour: its jump means nothing
            latex += rf", \quad j = {j} \cdot {s} = {j_out}"
        rows.append({"name": name, "type": type(module).__name__, "k": k, "s": s, "p": p, "size": int(after[-1]),
                     "channels": int(after[1]), "r": r_out, "j": j_out, "r_in": r, "j_in": j, "centre": centre,
                     "whole_image": middle - (r_out - 1) / 2 <= 0 and middle + (r_out - 1) / 2 >= size - 1,
                     "math": Markup(rf"\({latex}\)"),
                     "border_units": _units_past_edge(centre, r_out, j_out, int(after[-1]), size)})
        r, j = r_out, j_out
    return rows


def _reader(model: nn.Module) -> tuple[str, int]:
    """The first linear layer: its name and input length ("", 0 when there is none)."""
    return next(((n, int(m.in_features)) for n, m in layer_table(model) if isinstance(m, nn.Linear)), ("", 0))


def model_field(spec: dict[str, Any], figures: FigureWriter, index: int) -> ModelField:
    model = build_spec(spec)
    in_channels = spec["options"].get("in_channels", 1)
    rows = [FieldRow(**row) for row in receptive_field_rows(model, in_channels)]
    reader, flat = _reader(model)
    if not rows:
        head, last, maps, positions = "none", "", in_channels, IMAGE_SIZE * IMAGE_SIZE
    else:
        last, maps, positions = rows[-1].name, rows[-1].channels, rows[-1].size ** 2
        head = "global" if positions == 1 else "positions"
    figure = None
    if rows:
        label = ", ".join(spec["variants"])
        figure = draw_fields(figures, [(r.name, r.r, r.j, r.centre, r.size) for r in rows], IMAGE_SIZE,
                             name=f"receptive-field-{index + 1}",
                             title=i18n._("%(label)s: what one unit of each layer sees") % {"label": label})
    return ModelField(model=spec["model"], options=spec["options"], variants=spec["variants"], input=IMAGE_SIZE,
                      rows=rows, head=head, last=last, maps=maps, positions=positions, flat=flat, reader=reader,
                      figure=figure)


def compute(study: Study, figures: FigureWriter) -> ReceptiveFieldResult:
    models = [model_field(spec, figures, i) for i, spec in enumerate(model_specs(study))]
    first: dict[str, ModelField] = {}
    for m in models:  # the explanation is written out once per kind of head; later models refer back to it
        if m.head in first:
            m.like = ", ".join(first[m.head].variants)
        first.setdefault(m.head, m)
    return ReceptiveFieldResult(models=models, image=IMAGE_SIZE)


def _apart(j: int, size: int) -> str:
    """How far apart a layer's units look (nothing for a layer with one unit per map)."""
    return "" if size == 1 else i18n.ngettext(", units %(n)s pixel apart", ", units %(n)s pixels apart", j) % {"n": j}


def draw_fields(figures: FigureWriter, layers: list[tuple[str, int, int, float, int]], image: int, title: str,
                name: str) -> Figure:
    """The image's pixel grid with, for each layer, the square of input pixels that its middle unit sees; the dots
    are the centres of every unit of the last map with more than one unit: the positions the classifier tells
    apart, or those a global pool averages."""
    def draw() -> plt.Figure:
        fig, ax = plt.subplots(figsize=(WIDTH, 4.2))
        ax.add_patch(patches.Rectangle((-0.5, -0.5), image, image, facecolor="#f2f2f2", edgecolor=MUTED))
        for t in range(image + 1):
            ax.plot([t - 0.5, t - 0.5], [-0.5, image - 0.5], color="white", linewidth=0.6)
            ax.plot([-0.5, image - 0.5], [t - 0.5, t - 0.5], color="white", linewidth=0.6)
        for i, (layer, r, j, centre, size) in enumerate(layers):
            middle = centre + (size // 2) * j
            colour = PALETTE[i % len(PALETTE)]
            ax.add_patch(patches.Rectangle((middle - r / 2, middle - r / 2), r, r, fill=False, edgecolor=colour,
                                           linewidth=2.2 - 0.2 * i, zorder=3, label=i18n._("%(layer)s: %(r)s × %(r)s pixels%(apart)s")
                                           % {"layer": layer, "r": r, "apart": _apart(j, size)}))
        # The dots: the positions the classifier tells apart (before a global pool, the positions it averages).
        spread = [entry for entry in layers if entry[4] > 1] or layers
        layer, r, j, centre, size = spread[-1]
        grid = centre + np.arange(size) * j
        xs, ys = np.meshgrid(grid, grid)
        averaged = (i18n._(", averaged by %(layer)s") % {"layer": layers[-1][0]}
                    if layers[-1][4] == 1 and spread[-1] is not layers[-1] else "")
        ax.scatter(xs.ravel(), ys.ravel(), s=9, color=TEXT_DARK, zorder=4,
                   label=i18n.ngettext("centres of the %(n)s unit of each %(layer)s map%(averaged)s",
                                       "centres of the %(n)s units of each %(layer)s map%(averaged)s", size * size)
                   % {"n": size * size, "layer": layer, "averaged": averaged})
        reach = max(max(r for _, r, *_ in layers) / 2 + 1, image / 2 + 1)
        ax.set(xlim=(image / 2 - reach, image / 2 + reach), ylim=(image / 2 + reach, image / 2 - reach),
               aspect="equal", title=title)
        ax.set_xticks([0, image - 1])
        ax.set_yticks([0, image - 1])
        _frameless(ax)
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
        fig.tight_layout()
        return fig

    parts = "; ".join(i18n._("%(layer)s sees %(r)s × %(r)s pixels%(apart)s") % {"layer": layer, "r": r,
                                                                              "apart": _apart(j, size)}
                      for layer, r, j, _, size in layers)
    alt = i18n._("%(title)s. On the %(image)s × %(image)s pixel grid of the image, one square per layer marks the "
                 "pixels that the unit in the middle of its map sees: %(parts)s. Dots mark the centres of the units of "
                 "the last map with more than one unit.") % {"title": title, "image": image, "parts": parts}
    return figures.emit(name, alt, (layers, image, title), draw)


ANALYSIS = Analysis(
    name="receptive_field", title=N_("Receptive field of every layer"), compute=compute, needs_training=False,
    summary=N_("How many input pixels one unit of each convolution and pooling layer sees, and how far apart "
               "neighbouring units look, from the model's own layers."),
)
