"""Feature maps: forward hooks on every layer of the first seed's model show what each layer outputs for one test
image (one figure per layer), plus an overview of every layer for the first test image of each class."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TypedDict

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import colors as mcolors
from torch import nn

from .. import i18n, numbers
from ..figures import (IMAGE_CMAP, MUTED, PALETTE, TEXT_DARK, WIDTH, Figure, FigureWriter, _activation_scale,
                       _tile_axes, _tile_grid, _with_bad)
from ..i18n import N_
from ..loader import to_input
from ..settings import FIRST_SEED
from ..study import Study
from . import Analysis
from ._common import (capture_activations, class_examples, class_names, first_run, layer_table, load_model,
                      normalization, pct, run_test_set, shape_text, variant_head)

# Dicts, not dataclasses: the partial reads ``.class``, which no Python attribute can be called.
ExampleImage = TypedDict("ExampleImage", {"index": int, "class": str})
Prediction = TypedDict("Prediction", {"index": int, "class": str, "predicted": str, "confidence_pct": float,
                                      "correct": bool})


@dataclass
class LayerOutput:
    name: str
    type: str                    # the module's class name
    kind: str                    # "map" (C × H × W), "vector" or "logits" (the last layer)
    shape: str
    min: float
    max: float
    zero_pct: float
    figure: Figure
    identity_at_test: bool       # dropout, identity and flatten pass their input on unchanged at test time


@dataclass
class VariantFeatureMaps:
    name: str
    label: str
    dataset: str
    seeds: list[int]
    seed: int
    example: Prediction                     # the test image followed layer by layer
    examples: list[ExampleImage]            # the overview's rows: the first test image of each class
    layers: list[LayerOutput]
    overview: Figure
    overview_layers: list[str]              # the overview's columns after the input


@dataclass
class FeatureMapsResult:
    basis: str
    variants: list[VariantFeatureMaps] = field(default_factory=list)


def _layer_kind(output: torch.Tensor, is_last: bool) -> str:
    if output.dim() == 4:
        return "map"
    return "logits" if is_last else "vector"


def compute(study: Study, figures: FigureWriter) -> FeatureMapsResult:
    rows = []
    for v in study.available:
        run = first_run(v)
        model = load_model(run)
        images, labels_t = run_test_set(run)
        labels = labels_t.numpy()
        _, probs = run.predictions()
        classes = class_names(v.dataset, probs.shape[1])
        examples = class_examples(labels, len(classes))
        x = to_input(images[examples].contiguous(), normalization(run))
        with torch.inference_mode(), capture_activations(model) as acts:
            logits = model(x)
        out_probs = torch.softmax(logits, 1).numpy()
        table = layer_table(model)
        example = examples[0]
        layers = []
        previous: tuple[int, ...] = tuple(x.shape[1:])
        for i, (name, module) in enumerate(table):
            out = acts[name]
            kind = _layer_kind(out, i == len(table) - 1)
            values = out[0].numpy()
            title = i18n._("%(label)s, %(layer)s (%(type)s) on test image %(index)s (%(class)s): output %(shape)s") % {
                "label": v.label, "layer": name, "type": type(module).__name__, "index": example,
                "class": classes[labels[example]], "shape": shape_text(values.shape)}
            if kind == "map":
                fig = draw_feature_map(figures, values, name=f"features-{v.name}-{name}", layer=name, title=title)
            else:
                # after flatten, one row per channel of the map it came from (a single channel: one image row)
                fold, by_row = None, False
                if isinstance(module, nn.Flatten) and len(previous) == 3:
                    by_row = previous[0] == 1
                    fold = previous[2] if by_row else previous[1] * previous[2]
                fig = draw_vector(figures, values, name=f"features-{v.name}-{name}", layer=name, title=title,
                                  classes=classes if kind == "logits" else None,
                                  probs=out_probs[0] if kind == "logits" else None, fold=fold, by_row=by_row)
            previous = tuple(values.shape)
            layers.append(LayerOutput(name=name, type=type(module).__name__, kind=kind,
                                      shape=shape_text(values.shape), min=float(values.min()),
                                      max=float(values.max()), zero_pct=pct((values == 0).mean()), figure=fig,
                                      identity_at_test=isinstance(module, (nn.Dropout, nn.Identity, nn.Flatten))))
        # The overview leaves out layers that only pass their input on at test time.
        overview_layers = [(n, acts[n].numpy()) for n, m in table
                           if not isinstance(m, (nn.Dropout, nn.Identity, nn.Flatten))]
        overview = draw_feature_overview(
            figures, images[examples].numpy(), overview_layers, [classes[labels[i]] for i in examples],
            name=f"features-{v.name}-overview",
            title=i18n._("%(label)s: every layer for one test image of each class (seed %(seed)s)")
            % {"label": v.label, "seed": run.seed})
        pred = int(out_probs[0].argmax())
        rows.append(VariantFeatureMaps(
            **variant_head(v, run),
            example={"index": example, "class": classes[labels[example]], "predicted": classes[pred],
                     "confidence_pct": pct(out_probs[0, pred]), "correct": pred == labels[example]},
            examples=[{"index": i, "class": classes[labels[i]]} for i in examples],
            layers=layers, overview=overview, overview_layers=[n for n, _ in overview_layers]))
    return FeatureMapsResult(basis=FIRST_SEED, variants=rows)


def draw_feature_map(figures: FigureWriter, maps: np.ndarray, layer: str, title: str, name: str) -> Figure:
    """Every channel of one layer's output for one image, on one colour scale for the whole layer."""
    maps = np.asarray(maps, dtype=float)

    def draw() -> plt.Figure:
        n = len(maps)
        cols = min(n, 8)
        rows = math.ceil(n / cols)
        width = WIDTH if n > 1 else WIDTH * 0.5
        fig, ax = plt.subplots(figsize=(width, 0.6 + rows * 1.1 * WIDTH * 0.85 / max(cols, 2)))
        cmap, norm = _activation_scale(maps)
        image = _tile_grid(ax, maps, cols, (1.1, 1.22), cmap, norm, lambda k: i18n._("channel %(k)s") % {"k": k}, fontsize=6.5)
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, shrink=0.9).set_label(i18n._("activation"))
        ax.set_title(title, fontsize=10)
        fig.tight_layout()
        return fig

    alt = i18n._("%(title)s: %(n)s map(s) of %(h)s×%(w)s pixels, one per channel, on one colour scale from "
                 "%(low)s to %(high)s") % {"title": title, "n": len(maps), "h": maps.shape[1], "w": maps.shape[2],
                                            "low": numbers.plain(maps.min(), 2),
                                            "high": numbers.plain(maps.max(), 2)}
    return figures.emit(name, alt, (maps, layer, title), draw)


def _logit_bars(values: np.ndarray, classes: list[str], probs: np.ndarray | None, title: str) -> plt.Figure:
    """One bar per class, the largest logit highlighted, each class's softmax probability beside its bar."""
    n = len(values)
    fig, ax = plt.subplots(figsize=(WIDTH, 0.5 + 0.28 * n))
    order = np.arange(n)
    best = int(np.argmax(values))
    colors = [PALETTE[0] if i != best else PALETTE[1] for i in order]
    ax.barh(order, values, color=colors)
    ax.set_yticks(order, classes)
    ax.invert_yaxis()
    ax.axvline(0, color=MUTED, linewidth=0.8)
    span = (values.max() - min(values.min(), 0)) or 1.0
    for i in order:
        text = f"p = {numbers.plain(probs[i] * 100, 1)}%" if probs is not None else ""
        ax.text(max(values[i], 0) + 0.02 * span, i, text, va="center", fontsize=7.5, color=MUTED)
    ax.set_xlim(min(values.min(), 0) - 0.05 * span, values.max() + 0.28 * span)
    ax.set(xlabel=i18n._("logit (softmax probability on the right)"), title=title)
    ax.grid(axis="y", visible=False)
    return fig


def draw_vector(figures: FigureWriter, values: np.ndarray, layer: str, title: str, name: str,
                classes: list[str] | None = None, probs: np.ndarray | None = None, fold: int | None = None,
                by_row: bool = False) -> Figure:
    """A 1-D layer output: logits as bars per class (with softmax probabilities), short vectors as bars, long
    ones as a heat strip folded into rows of ``fold`` values (e.g. one row per channel after ``flatten``; with
    ``by_row``, a single channel's map, one row per row of that map)."""
    values = np.asarray(values, dtype=float)

    def draw() -> plt.Figure:
        n = len(values)
        if classes is not None:
            fig = _logit_bars(values, classes, probs, title)
        elif n <= 160 and fold is None:
            fig, ax = plt.subplots(figsize=(WIDTH, 2.4))
            x = np.arange(n)
            width = 0.8 * 6.3 * 72 / max(n, 1)  # points: 80% of the space per unit
            for mask, color in ((values >= 0, PALETTE[0]), (values < 0, PALETTE[3])):
                ax.vlines(x[mask], 0, values[mask], color=color, linewidth=min(width, 12))
            ax.axhline(0, color=MUTED, linewidth=0.8)
            ax.set(xlabel=i18n._("unit (0–%(last)s)") % {"last": n - 1}, ylabel=i18n._("activation"), title=title,
                   xlim=(-1, n))
            ax.grid(axis="x", visible=False)
        else:
            cols = fold or (50 if n <= 2500 else 100)
            rows = math.ceil(n / cols)
            strip = np.full(rows * cols, np.nan)
            strip[:n] = values
            height = min(4.5, 0.9 + rows * WIDTH / cols)
            fig, ax = plt.subplots(figsize=(WIDTH, max(height, 2.2)))
            cmap, norm = _activation_scale(values)
            image = ax.imshow(strip.reshape(rows, cols), cmap=_with_bad(cmap), norm=norm, interpolation="nearest",
                              aspect="auto")
            if fold is not None and by_row:
                ax.set(xlabel=i18n._("column of the map (%(n)s values)") % {"n": cols},
                       ylabel=i18n._("row of the map"), title=title)
            elif fold is not None:
                ax.set(xlabel=i18n._("position within the channel's map (%(n)s values, row by row)") % {"n": cols},
                       ylabel=i18n._("channel"), title=title)
            else:
                ax.set(xlabel=i18n._("unit mod %(n)s") % {"n": cols}, ylabel=i18n._("unit ÷ %(n)s") % {"n": cols}, title=title)
            ax.yaxis.get_major_locator().set_params(integer=True)
            ax.grid(False)
            fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02).set_label(i18n._("activation"))
        fig.tight_layout()
        return fig

    if classes is not None:
        best = int(np.argmax(values))
        alt = (i18n._("%(title)s: one bar per class; the largest logit is %(class)s") % {"title": title,
                                                                                          "class": classes[best]}
               + (i18n._(" with probability %(p)s%%") % {"p": numbers.plain(probs[best] * 100, 1)}
                  if probs is not None else ""))
    else:
        alt = (i18n._("%(title)s: the %(n)s values of the layer's output, from %(low)s to %(high)s, %(zeros)s of "
                      "them exactly zero") % {"title": title, "n": len(values),
                                              "low": numbers.plain(values.min(), 2),
                                              "high": numbers.plain(values.max(), 2),
                                              "zeros": int((values == 0).sum())}
               + ((i18n._(", one row per row of the map, %(n)s values each") if by_row else
                   i18n._(", one row per channel of %(n)s values")) % {"n": fold} if fold else ""))
    return figures.emit(name, alt, (values, layer, title, classes, probs, fold, by_row), draw)


def draw_feature_overview(figures: FigureWriter, images: np.ndarray, layers: list[tuple[str, np.ndarray]],
                          row_labels: list[str], title: str, name: str) -> Figure:
    """Rows = one example image per class, columns = the input and each layer: for a 2-D layer its most active
    channel (the same channel in every row), for a vector its values folded into a square."""
    columns = [(i18n._("input"), images.astype(float)[:, None], None)]
    for layer, out in layers:
        out = np.asarray(out, dtype=float)
        if out.ndim == 4:
            channel = int(np.abs(out).mean(axis=(0, 2, 3)).argmax())
            columns.append((i18n._("%(layer)s\nch %(channel)s") % {"layer": layer, "channel": channel}, out[:, channel:channel + 1], None))
        else:
            side = math.ceil(math.sqrt(out.shape[1]))
            padded = np.full((out.shape[0], side * side), np.nan)
            padded[:, :out.shape[1]] = out
            columns.append((f"{layer}\n({out.shape[1]})", padded.reshape(-1, 1, side, side), None))

    def draw() -> plt.Figure:
        n_rows, n_cols = len(images), len(columns)
        label_w = 1.6
        pitch_x, pitch_y = 1.12, 1.1
        cell = (WIDTH - 1.1) / (n_cols * pitch_x + label_w)
        fig, ax = plt.subplots(figsize=(WIDTH, 0.9 + cell * n_rows * pitch_y + 0.5))
        for c, (header, data, _) in enumerate(columns):
            if c == 0:
                cmap, norm = _with_bad(IMAGE_CMAP), mcolors.Normalize(0, 255)
            else:
                cmap, norm = _activation_scale(data)
                cmap = _with_bad(cmap)
            x0 = label_w + c * pitch_x
            for r in range(n_rows):
                y0 = r * pitch_y
                ax.imshow(data[r, 0], cmap=cmap, norm=norm, extent=(x0, x0 + 1, y0 + 1, y0),
                          interpolation="nearest")
            ax.text(x0 + 0.5, -0.08, header, ha="center", va="bottom", fontsize=6.5, color=TEXT_DARK)
        for r, label in enumerate(row_labels):
            ax.text(label_w - 0.1, r * pitch_y + 0.5, label, ha="right", va="center", fontsize=7.5)
        _tile_axes(ax, label_w + n_cols * pitch_x - (pitch_x - 1), n_rows * pitch_y, top=-0.75, left=0)
        ax.set_title(title, fontsize=10, pad=2)
        fig.tight_layout()
        return fig

    headers = ", ".join(h.replace("\n", " ") for h, _, _ in columns[1:])
    alt = i18n._("%(title)s: %(n)s rows (one test image per class: %(classes)s) and one column per stage: the "
                 "input, then %(headers)s; each column on its own colour scale") % {
        "title": title, "n": len(images), "classes": ", ".join(row_labels), "headers": headers}
    payload = ([(h, d) for h, d, _ in columns], row_labels, title)
    return figures.emit(name, alt, payload, draw)


ANALYSIS = Analysis(
    name="feature_maps", title=N_("Feature maps"), compute=compute,
    summary=N_("What every layer of the first seed's model outputs for a test image, and an overview for each class."),
)
