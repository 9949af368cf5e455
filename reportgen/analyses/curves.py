"""Learning curves: train and validation loss and accuracy per epoch, mean over seeds with a min–max band."""
from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np

from ..charts import Chart, line, lines_chart
from ..figures import PALETTE, WIDTH, Figure, FigureWriter
from .. import i18n, numbers
from ..i18n import N_
from ..settings import CONFIDENCE
from ..stats import mean_ci
from ..study import Study, label_smoothing
from . import Analysis, ByVariant


@dataclass
class VariantCurves:
    name: str
    label: str
    dataset: str
    seeds: list[int]
    epochs: int
    final_train_acc_pct: float
    final_val_acc_pct: float
    best_val_acc_pct: float
    first_val_by_seed: dict[int, float] = field(default_factory=dict)  # after the first epoch, per seed
    label_smoothing: float = 0.0                 # its training loss includes it; the validation loss does not

    @property
    def first_val_acc_pct(self) -> float:
        """Validation accuracy after the first epoch, mean over seeds: how fast it starts."""
        return float(np.mean(list(self.first_val_by_seed.values())))


@dataclass
class CurvesResult(ByVariant):
    figure: Figure | None
    seeds: int                                   # the most seeds of any variant (1: no band)
    variants: list[VariantCurves] = field(default_factory=list)
    chart: Chart | None = None                   # the figure's numbers, per epoch and per seed, for the page

    def first_epoch_diff(self, variant: str):
        """For prose: the variant's validation accuracy after the first epoch minus the first variant's, in points,
        paired over their common seeds (the closing section's "how fast" finding)."""
        from ..prose import Measure
        v = self.variant(variant)
        if v is self.variants[0]:
            raise ValueError(f"first_epoch_diff({variant!r}): differences are to the first variant, "
                             f"{self.variants[0].name!r}")
        return Measure.of(_first_epoch_difference(self.variants[0], v)[1], " points")

    @property
    def label_smoothing(self) -> list[float]:
        """The label smoothing of the variants that train with it (distinct values)."""
        return sorted({v.label_smoothing for v in self.variants if v.label_smoothing})


def compute(study: Study, figures: FigureWriter) -> CurvesResult:
    series, rows, seeds = {}, [], {}
    for v in study.available:
        seeds[v.label] = [r.seed for r in v.runs]
        per_seed = {key: np.array([[getattr(row, key) for row in r.history.epochs] for r in v.runs])
                    for key in ("train_loss", "val_loss", "train_acc", "val_acc")}
        series[v.label] = per_seed
        rows.append(VariantCurves(name=v.name, label=v.label, dataset=v.dataset, seeds=v.seeds,
                                  epochs=int(per_seed["val_acc"].shape[1]),
                                  final_train_acc_pct=100.0 * float(per_seed["train_acc"][:, -1].mean()),
                                  final_val_acc_pct=100.0 * float(per_seed["val_acc"][:, -1].mean()),
                                  best_val_acc_pct=100.0 * float(per_seed["val_acc"].max(1).mean()),
                                  first_val_by_seed={r.seed: 100.0 * float(row) for r, row
                                                     in zip(v.runs, per_seed["val_acc"][:, 0])},
                                  label_smoothing=label_smoothing(v.runs[0])))
    fig = draw_curves(figures, series, title=i18n._("%(title)s: training curves") % {"title": study.config.title}) if series else None
    chart = Chart(curves_chart(series, seeds, fig.alt), fig) if fig else None
    return CurvesResult(figure=fig, variants=rows, seeds=max((len(v.runs) for v in study.available), default=0),
                        chart=chart)


def curve_panels() -> list[dict]:
    """The chart's two panels, in the edition being rendered."""
    _ = i18n._
    return [{"title": _("Loss"), "x": _("epoch"), "y": _("cross-entropy loss"), "unit": "", "digits": 3},
            {"title": _("Accuracy"), "x": _("epoch"), "y": _("accuracy (%)"), "unit": "%",
             "digits": numbers.COARSE_DECIMALS}]


def curves_chart(series: dict[str, dict[str, np.ndarray]], seeds: dict[str, list[int]], alt: str) -> dict:
    """The figure's lines for the page: per variant, training (solid) and validation (dashed) loss and accuracy,
    every seed's value at every epoch (:func:`reportgen.charts.line` adds the mean the figure draws)."""
    lines = []
    for i, (label, s) in enumerate(series.items()):
        epochs = list(range(1, s["train_loss"].shape[1] + 1))
        for panel, key, scale in ((0, "loss", 1), (1, "acc", 100)):
            for split, curve in (("train", i18n._("training")), ("val", i18n._("validation"))):
                lines.append(line(label, i, panel, curve, epochs, seeds[label], s[f"{split}_{key}"] * scale,
                                  dashed=split == "val"))
    return lines_chart(curve_panels(), lines, alt, note=i18n._("solid: training set, dashed: validation set"))


def draw_curves(figures: FigureWriter, series: dict[str, dict[str, np.ndarray]], title: str,
                name: str = "curves") -> Figure:
    """Loss and accuracy per epoch; solid = train, dashed = validation; band = min–max over seeds."""
    _ = i18n._
    split_names = {"train": _("train"), "val": _("validation")}

    def draw() -> plt.Figure:
        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(WIDTH, 3.6))
        for i, (label, s) in enumerate(series.items()):
            color = PALETTE[i % len(PALETTE)]
            epochs = np.arange(1, s["train_loss"].shape[1] + 1)
            for ax, key, scale in ((ax_loss, "loss", 1), (ax_acc, "acc", 100)):
                for split, style in (("train", "-"), ("val", "--")):
                    values = s[f"{split}_{key}"] * scale
                    ax.plot(epochs, values.mean(0), style, color=color, marker="o", markersize=3,
                            label=f"{label} ({split_names[split]})")
                    if values.shape[0] > 1:
                        ax.fill_between(epochs, values.min(0), values.max(0), color=color, alpha=0.15, linewidth=0)
        ax_loss.set(xlabel=_("epoch"), ylabel=_("cross-entropy loss"), title=_("Loss"))
        ax_acc.set(xlabel=_("epoch"), ylabel=_("accuracy (%)"), title=_("Accuracy"))
        for ax in (ax_loss, ax_acc):
            ax.xaxis.get_major_locator().set_params(integer=True)
        handles, labels = ax_acc.get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=2,
                   bbox_to_anchor=(0.5, -0.02 - 0.05 * ((len(labels) + 1) // 2)))
        fig.suptitle(title)
        fig.tight_layout()
        return fig

    n_seeds = max(s["train_loss"].shape[0] for s in series.values())
    alt = _("Training curves of %(labels)s: loss and accuracy per epoch for the training set (solid) and validation "
            "set (dashed), mean of %(n)s seed(s) with a min–max band") % {"labels": ", ".join(series), "n": n_seeds}
    return figures.emit(name, alt, (series, title), draw)


def _first_epoch_difference(base: VariantCurves, v: VariantCurves) -> tuple[list[int], dict[str, float]]:
    """``v``'s validation accuracy after the first epoch minus ``base``'s, paired over their common seeds."""
    seeds = sorted(set(base.first_val_by_seed) & set(v.first_val_by_seed))
    return seeds, mean_ci([v.first_val_by_seed[s] - base.first_val_by_seed[s] for s in seeds])


def findings(result: CurvesResult) -> list[str]:
    """How fast each variant starts: its validation accuracy after the first epoch, and each difference to the
    first variant paired over their common seeds with its interval — for variants on one dataset with the same
    number of epochs (two or more)."""
    variants = result.variants
    # with different numbers of epochs the schedules differ from the first epoch on (a one-cycle warm-up is a
    # share of all steps), and on different datasets the first epochs measure different tasks
    if len(variants) < 2 or any(v.epochs < 2 for v in variants) or len({v.epochs for v in variants}) > 1 \
            or len({v.dataset for v in variants}) > 1:
        return []
    base, parts = variants[0], [f"{variants[0].label} {numbers.fixed(variants[0].first_val_acc_pct)}%"]
    for v in variants[1:]:
        seeds, ci = _first_epoch_difference(base, v)
        digits = numbers.decimals(numbers.half_width(ci))
        paired = (i18n._(" (%(diff)s points, %(pct)s%% CI %(interval)s, paired over %(n)s seeds)")
                  % {"diff": numbers.fixed(ci.mean, digits, signed=True), "pct": round(100 * CONFIDENCE),
                     "interval": numbers.interval(ci, signed=True), "n": len(seeds)} if len(seeds) > 1 else "")
        parts.append(f"{v.label} {numbers.fixed(v.first_val_acc_pct)}%{paired}")
    return [i18n._("Validation accuracy after the first epoch (mean over seeds), how fast each network starts, "
                   "against %(baseline)s: %(parts)s.") % {"baseline": base.label, "parts": "; ".join(parts)}]


ANALYSIS = Analysis(
    name="curves", title=N_("Learning curves"), compute=compute, findings=findings,
    summary=N_("Train and validation loss and accuracy per epoch, mean over seeds with a min–max band."),
)
