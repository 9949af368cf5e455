"""Activations over the whole test set: per layer of the first seed's model, the share of exact zeros (after each
ReLU: how many neurons are silent), mean and largest output, and, after each ReLU, the units that never fire; and
the same numbers in every seed's network, as a mean over seeds with its interval. The statistics are one hooked
pass over every test image per run, cached on disk; ``precompute`` fills that cache after training."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from .. import i18n, numbers
from ..figures import PALETTE, WIDTH, Figure, FigureWriter
from ..i18n import N_
from ..loader import Normalization, to_input
from ..settings import CONFIDENCE, EVAL_BATCH, FIRST_SEED
from ..stats import Interval, mean_ci
from ..store import Run
from ..study import Study
from . import Analysis, pick
from ._common import (analysis_device, cached_arrays, capture_activations, first_run, layer_table, load_model,
                      normalization, run_test_set, variant_head)


# Layers whose output is exactly zero for a whole range of inputs: there a zero means "silent", and a unit that is
# zero for every test image never fires. After a convolution, a linear layer or tanh, an exact zero is a coincidence
# of rounding, so "never active" would count nothing that means anything.
SILENCING = (nn.ReLU, nn.ReLU6)


@dataclass
class LayerActivity:
    name: str
    type: str              # the module's class name
    is_relu: bool          # a layer whose zeros mean "silent" (SILENCING)
    zero_pct: float        # share of all outputs over the test set that are exactly 0
    mean: float
    min: float
    max: float
    units: int             # channels of a 2-D map, entries of a vector
    dead: int | None       # units that are 0 for every test image; None where a zero means nothing (not SILENCING)
    # the same layer in every seed's network (first seed first): mean over seeds with its interval (stats.mean_ci),
    # so that a mechanism is read from all the networks, not one
    seeds: list[int] = field(default_factory=list)
    zero_pct_over_seeds: Interval | None = None
    mean_over_seeds: Interval | None = None
    max_over_seeds: Interval | None = None
    dead_over_seeds: Interval | None = None  # None where a zero means nothing
    dead_per_seed: list[int] = field(default_factory=list)
    per_seed: dict[str, list[float]] = field(default_factory=dict)  # zero_pct, mean, max: one value per seed


@dataclass
class VariantActivations:
    name: str
    label: str
    dataset: str
    seeds: list[int]
    seed: int
    images: int                    # test images the statistics cover
    layers: list[LayerActivity]
    relu: list[LayerActivity]      # the ReLU layers of ``layers``


@dataclass
class ActivationStatsResult:
    basis: str
    variants: list[VariantActivations] = field(default_factory=list)
    figure: Figure | None = None   # zeros after each ReLU; None when no variant has a ReLU
    confidence_pct: int = round(100 * CONFIDENCE)

    def layer(self, variant: str, layer: str) -> LayerActivity:
        """One layer of one variant (for prose: ``result("activation_stats").layer("dropout", "relu4").dead``)."""
        rows = pick(self.variants, variant, "variant").layers
        return pick(rows, layer, f"layer of {variant!r}")

    def paired(self, variant: str, baseline: str, layer: str, measure: str = "dead") -> Interval:
        """``measure`` (dead, mean, max or zero_pct) of ``layer`` in ``variant`` minus that in ``baseline``, paired
        seed by seed over their common seeds: mean with its interval (``.paired("dropout", "plain", "relu4")``)."""
        a, b = self.layer(variant, layer), self.layer(baseline, layer)
        per_a, per_b = dict(zip(a.seeds, _per_seed(a, measure))), dict(zip(b.seeds, _per_seed(b, measure)))
        return mean_ci([per_a[s] - per_b[s] for s in sorted(set(per_a) & set(per_b))])


def _per_seed(row: LayerActivity, measure: str) -> list[float]:
    if measure == "dead" and row.is_relu:
        return [float(d) for d in row.dead_per_seed]
    if measure not in row.per_seed:
        raise ValueError(f"{row.name}: no per-seed {measure!r} (measured: "
                         f"{', '.join((['dead'] if row.is_relu else []) + list(row.per_seed))})")
    return row.per_seed[measure]


def activation_statistics(model: nn.Module, images: torch.Tensor, norm: Normalization,
                          batch: int = EVAL_BATCH) -> dict[str, np.ndarray]:
    """Per layer over all ``images``: number of values, exact zeros, sum, min and max, and how many units (channels
    of a 2-D map, entries of a vector) are zero for every image ("dead")."""
    names = [n for n, _ in layer_table(model)]
    count = dict.fromkeys(names, 0)
    zeros = dict.fromkeys(names, 0)
    total = dict.fromkeys(names, 0.0)
    low = dict.fromkeys(names, math.inf)
    high = dict.fromkeys(names, -math.inf)
    alive: dict[str, torch.Tensor] = {}

    def on_output(name: str, out: torch.Tensor) -> None:
        nonzero = out != 0
        count[name] += out.numel()
        zeros[name] += out.numel() - int(nonzero.sum())
        total[name] += float(out.sum(dtype=torch.float64))
        lo, hi = torch.aminmax(out)
        low[name], high[name] = min(low[name], float(lo)), max(high[name], float(hi))
        unit = nonzero.flatten(2).any(2).any(0) if out.dim() == 4 else nonzero.flatten(1).any(0)
        alive[name] = unit if name not in alive else alive[name] | unit

    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode(), capture_activations(model, keep=False, on_output=on_output):
        for start in range(0, len(images), batch):
            model(to_input(images[start:start + batch].to(device).contiguous(), norm))
    return {"names": np.array(names), "count": np.array([count[n] for n in names], dtype=np.int64),
            "zeros": np.array([zeros[n] for n in names], dtype=np.int64),
            "sum": np.array([total[n] for n in names]), "min": np.array([low[n] for n in names]),
            "max": np.array([high[n] for n in names]),
            "units": np.array([int(alive[n].numel()) if n in alive else 0 for n in names], dtype=np.int64),
            "dead": np.array([int((~alive[n]).sum()) if n in alive else 0 for n in names], dtype=np.int64)}


def activation_stats_of(run: Run) -> dict[str, np.ndarray]:
    """The run's activation statistics over its whole test set (cached on disk)."""
    images, _ = run_test_set(run)
    device = analysis_device(run)
    return cached_arrays(run, "activation_stats", {"n": len(images), "device": device.type},
                         lambda: activation_statistics(load_model(run, device), images, normalization(run)))


def precompute(study: Study) -> None:
    """Fill the cache with the activation statistics of every run (every seed of every variant), drawing nothing."""
    for v in study.available:
        for run in v.runs:
            activation_stats_of(run)


def _over_seeds(row: LayerActivity, per_seed: list[dict[str, np.ndarray]], i: int) -> None:
    """Fill ``row``'s over-seeds fields from every seed's statistics of layer ``i`` (the first seed's first)."""
    values = {"zero_pct": [100.0 * float(s["zeros"][i] / s["count"][i]) for s in per_seed],
              "mean": [float(s["sum"][i] / s["count"][i]) for s in per_seed],
              "max": [float(s["max"][i]) for s in per_seed]}
    row.per_seed = values
    row.zero_pct_over_seeds, row.mean_over_seeds = mean_ci(values["zero_pct"]), mean_ci(values["mean"])
    row.max_over_seeds = mean_ci(values["max"])
    if row.is_relu:
        row.dead_per_seed = [int(s["dead"][i]) for s in per_seed]
        row.dead_over_seeds = mean_ci(row.dead_per_seed)


def compute(study: Study, figures: FigureWriter) -> ActivationStatsResult:
    rows, relu_series = [], {}
    for v in study.available:
        run = first_run(v)
        stats = activation_stats_of(run)
        runs = [run] + [r for r in v.runs if r is not run]
        per_seed = [stats] + [activation_stats_of(r) for r in runs[1:]]
        modules = dict(layer_table(load_model(run)))
        layers = []
        for i, name in enumerate(stats["names"].tolist()):
            silencing = isinstance(modules.get(name), SILENCING)
            layers.append(LayerActivity(name=name, type=type(modules[name]).__name__ if name in modules else "?",
                                        is_relu=silencing,
                                        zero_pct=100.0 * float(stats["zeros"][i] / stats["count"][i]),
                                        mean=float(stats["sum"][i] / stats["count"][i]), min=float(stats["min"][i]),
                                        max=float(stats["max"][i]), units=int(stats["units"][i]),
                                        dead=int(stats["dead"][i]) if silencing else None,
                                        seeds=[int(r.seed) for r in runs]))
            _over_seeds(layers[-1], per_seed, i)
        relus = [row for row in layers if row.is_relu]
        if relus:
            relu_series[v.label] = [(row.name, row.zero_pct) for row in relus]
        rows.append(VariantActivations(**variant_head(v, run), images=int(run.metrics.test_size), layers=layers,
                                       relu=relus))
    fig = draw_zero_fractions(figures, relu_series, name="activation-zeros",
                              title=i18n._("Share of zeros after each ReLU over the test set")) if relu_series else None
    return ActivationStatsResult(basis=FIRST_SEED, variants=rows, figure=fig)


def draw_zero_fractions(figures: FigureWriter, series: dict[str, list[tuple[str, float]]], title: str,
                        name: str) -> Figure:
    """Horizontal bars: the share of exact zeros after each ReLU, per variant."""
    def draw() -> plt.Figure:
        labels, values, colors = [], [], []
        for i, (variant, layers) in enumerate(series.items()):
            for layer, pct in layers:
                labels.append(f"{variant} · {layer}")
                values.append(pct)
                colors.append(PALETTE[i % len(PALETTE)])
        fig, ax = plt.subplots(figsize=(WIDTH, 0.6 + 0.3 * len(labels)))
        y = np.arange(len(labels))
        ax.barh(y, values, color=colors)
        for yi, v in zip(y, values):
            ax.text(v + 1, yi, f"{numbers.plain(v, 1)}%", va="center", fontsize=8)
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.set(xlim=(0, 110), xlabel=i18n._("share of activations that are exactly 0 (%)"), title=title)
        ax.grid(axis="y", visible=False)
        fig.tight_layout()
        return fig

    parts = "; ".join(f"{v}: " + ", ".join(f"{layer} {numbers.plain(pct, 1)}%" for layer, pct in layers)
                      for v, layers in series.items())
    alt = f"{title}. {parts}"
    return figures.emit(name, alt, (series, title), draw)


ANALYSIS = Analysis(
    name="activation_stats", title=N_("Activation statistics"), compute=compute, precompute=precompute,
    summary=N_("Per layer over the whole test set: share of exact zeros, mean and largest output, and units that never "
               "fire after each ReLU."),
)
