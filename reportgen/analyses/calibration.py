"""Calibration: does a prediction made with 90% confidence come true 90% of the time?

Everything here reads the STORED test predictions of each run (``Run.predictions()``: labels and softmax
probabilities of the best-validation checkpoint); no model is evaluated. A prediction's confidence is its largest
softmax probability and it is correct when that class is the true one.

* Reliability bins: 15 equal-width confidence bins, B_m = ((m − 1)/15, m/15] for m = 1..15; per bin the number of
  images, their accuracy and their mean confidence.
* Expected calibration error: ECE = Σ_m (|B_m| / n) · |acc(B_m) − conf(B_m)| — the gap between accuracy and
  confidence, averaged over the test images (Guo et al., 2017). Computed per seed, reported in percentage points
  with the mean and 95% t-interval over seeds, and compared with the study's baseline (stats.difference: paired
  seed by seed where the variants share their data).
* Mean confidence against accuracy, and the share of test images predicted with ≥ 99.9% confidence with how many
  of those are wrong (all seeds' predictions together).

The figure pools the predictions of every seed (more images per bin, so a steadier curve); the table's ECE is the
mean of the per-seed values, which is not the same number as the ECE of the pooled predictions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from ..figures import MUTED, PALETTE, WIDTH, Figure, FigureWriter
from .. import i18n
from ..i18n import N_
from ..settings import CONFIDENCE
from ..stats import Comparison, Interval, difference, mean_ci
from ..study import Study, label_smoothing
from . import Analysis

BINS = 15                     # equal-width confidence bins, as in Guo et al. (2017)
CONFIDENT = 0.999             # "predicted with ≥ 99.9% confidence"
ECE_METRIC = N_("expected calibration error")
ECE_WORDS = (N_("raises"), N_("lowers"), N_("higher"), N_("lower"))  # a higher ECE is a worse-calibrated network


@dataclass
class VariantCalibration:
    name: str
    label: str
    dataset: str
    seeds: list[int]
    ece: Interval                     # ECE in percentage points over seeds (mean, std, low, high, ...)
    ece_per_seed: list[float]
    confidence_pct: float             # mean confidence, mean over seeds
    accuracy_pct: float               # test accuracy, mean over seeds
    overconfidence_pct: float         # confidence − accuracy, percentage points (> 0: overconfident)
    images: int                       # test predictions over every seed together
    confident: int                    # of those, predicted with ≥ CONFIDENT
    confident_pct: float
    confident_wrong: int              # of the confident ones, wrong
    comparison: Comparison | None = None  # ECE difference to the baseline (stats.difference)
    label_smoothing: float = 0.0      # ε the networks trained with (0: none)
    target_pct: float = 100.0         # what training asks for on the right class: 1 − ε + ε/K, in %
    above_target_pct: float = 0.0     # share of the test predictions (all seeds) more confident than that, in %


@dataclass
class CalibrationResult:
    figure: Figure | None
    bins: int = BINS
    confident_pct: float = 100.0 * CONFIDENT
    confidence_level_pct: int = round(100 * CONFIDENCE)
    seeds: int = 0                                # the most seeds of any variant
    baseline_label: str | None = None
    variants: list[VariantCalibration] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)


def bin_index(confidence: np.ndarray, n_bins: int = BINS) -> np.ndarray:
    """Bin m − 1 for a confidence in ((m − 1)/n_bins, m/n_bins]; a confidence of exactly 0 goes to the first bin."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)


def reliability_bins(labels: np.ndarray, probs: np.ndarray, n_bins: int = BINS) -> dict[str, np.ndarray]:
    """Per confidence bin: ``count``, ``accuracy`` and mean ``confidence`` (NaN in an empty bin), and the ``edges``."""
    confidence = probs.max(1).astype(np.float64)
    correct = (probs.argmax(1) == labels).astype(np.float64)
    idx = bin_index(confidence, n_bins)
    count = np.bincount(idx, minlength=n_bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(idx, weights=correct, minlength=n_bins) / count
        mean_conf = np.bincount(idx, weights=confidence, minlength=n_bins) / count
    return {"count": count, "accuracy": accuracy, "confidence": mean_conf, "edges": np.linspace(0.0, 1.0, n_bins + 1)}


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, n_bins: int = BINS) -> float:
    """ECE = Σ_m (|B_m| / n) · |acc(B_m) − conf(B_m)| over equal-width confidence bins, as a fraction (0 to 1)."""
    bins = reliability_bins(labels, probs, n_bins)
    filled = bins["count"] > 0
    n = bins["count"].sum()
    if n == 0:
        return float("nan")
    gaps = np.abs(bins["accuracy"][filled] - bins["confidence"][filled])
    return float((bins["count"][filled] * gaps).sum() / n)


def smoothing_cap(run: Any, probs: np.ndarray) -> dict[str, float]:
    """Label smoothing ε spreads ε over the K classes of the training target, so the right class gets 1 − ε + ε/K
    (91% for ε = 0.1, K = 10): the confidence training aims at, which a prediction exceeds only by overshooting it.
    Returns the ε, that target and the share of ``probs`` whose confidence is above it (all in %, but ε)."""
    eps = label_smoothing(run)
    target = 1 - eps + eps / probs.shape[1]
    return {"label_smoothing": eps, "target_pct": 100.0 * target,
            "above_target_pct": 100.0 * float((probs.max(1) > target).mean())}


def compute(study: Study, figures: FigureWriter) -> CalibrationResult:
    ece_by_run: dict[Path, float] = {}
    rows, pooled = [], {}
    for v in study.available:
        per_seed, confs, accs, all_labels, all_probs = [], [], [], [], []
        for r in v.runs:
            labels, probs = r.predictions()
            ece_by_run[r.path] = 100.0 * expected_calibration_error(labels, probs)
            per_seed.append(ece_by_run[r.path])
            confs.append(float(probs.max(1).mean()))
            accs.append(float((probs.argmax(1) == labels).mean()))
            all_labels.append(labels)
            all_probs.append(probs)
        labels, probs = np.concatenate(all_labels), np.concatenate(all_probs)
        pooled[v.label] = {k: val for k, val in reliability_bins(labels, probs).items() if k != "edges"}
        sure = probs.max(1) >= CONFIDENT
        confidence, accuracy = 100.0 * float(np.mean(confs)), 100.0 * float(np.mean(accs))
        rows.append(VariantCalibration(
            name=v.name, label=v.label, dataset=v.dataset, seeds=v.seeds, ece=mean_ci(per_seed),
            ece_per_seed=per_seed, confidence_pct=confidence, accuracy_pct=accuracy,
            overconfidence_pct=confidence - accuracy, images=int(len(labels)), confident=int(sure.sum()),
            confident_pct=100.0 * float(sure.mean()),
            confident_wrong=int((sure & (probs.argmax(1) != labels)).sum()), **smoothing_cap(v.runs[0], probs)))

    result = CalibrationResult(figure=None, variants=rows, seeds=max((len(v.runs) for v in study.available), default=0))
    base = next((v for v in study.available if v.name == study.baseline), None)
    if base is not None and len(study.available) > 1:
        result.baseline_label = base.label
        for v, row in zip(study.available, rows):
            if v.name == base.name:
                continue
            diff = difference(base, v, value=lambda r: ece_by_run[r.path], metric=ECE_METRIC,
                              words=ECE_WORDS)
            if diff is not None:
                row.comparison = diff
                result.comparisons.append(diff)
    if pooled:
        result.figure = draw_calibration(figures, pooled, title=i18n._("%(title)s: calibration") % {"title": study.config.title})
    return result


def draw_calibration(figures: FigureWriter, series: dict[str, dict[str, np.ndarray]], title: str,
                     name: str = "calibration") -> Figure:
    """Left: accuracy against mean confidence per bin (the diagonal is perfect calibration). Right: the share of test
    images in each confidence bin, on a log scale (most predictions sit in the last bin)."""
    def draw() -> plt.Figure:
        fig, (ax_rel, ax_hist) = plt.subplots(1, 2, figsize=(WIDTH, 3.7))
        ax_rel.plot([0, 100], [0, 100], "--", color=MUTED, linewidth=1, label=i18n._("perfect calibration"))
        for i, (label, s) in enumerate(series.items()):
            color = PALETTE[i % len(PALETTE)]
            filled = s["count"] > 0
            ax_rel.plot(100 * s["confidence"][filled], 100 * s["accuracy"][filled], "-o", color=color, markersize=3.5,
                        label=label)
            n_bins = len(s["count"])
            share = 100 * s["count"] / max(int(s["count"].sum()), 1)
            ax_hist.stairs(np.where(share > 0, share, np.nan), np.linspace(0, 100, n_bins + 1), baseline=None, color=color, linewidth=1.5, label=label)
        ax_rel.set(xlim=(0, 101), ylim=(-1, 101), xlabel=i18n._("mean confidence in the bin (%)"),
                   ylabel=i18n._("accuracy in the bin (%)"),
                   title=i18n._("Reliability diagram"))
        ax_hist.set(xlim=(0, 100), yscale="log", xlabel=i18n._("confidence: largest softmax probability (%)"),
                    ylabel=i18n._("test images in the bin (%)"), title=i18n._("Confidence histogram"))
        ax_rel.legend(loc="upper left")
        fig.suptitle(title)
        fig.tight_layout()
        return fig

    alt = i18n._("%(title)s. Left: for %(labels)s, the accuracy of the test predictions in each of %(bins)s "
                 "equal-width confidence bins against their mean confidence, with the diagonal of perfect "
                 "calibration; points below it are overconfident. Right: the share of test images in each confidence "
                 "bin, log scale. Predictions of every seed pooled") % {
        "title": title, "labels": ", ".join(series), "bins": len(next(iter(series.values()))["count"])}
    return figures.emit(name, alt, (series, title), draw)


ANALYSIS = Analysis(
    name="calibration", title=N_("Calibration"), compute=compute, needs_training=True,
    summary=N_("Reliability diagram, expected calibration error (15 bins) and overconfident predictions per "
               "variant."),
)
