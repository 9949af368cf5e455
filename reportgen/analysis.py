"""Numbers computed from cached results and saved weights (never by training).

Every analysis a study can ask for in its YAML (``analyses: [curves, report, ...]``) is a function registered in
``ANALYSES`` under that name: it takes the :class:`Study` and a :class:`reportgen.figures.FigureWriter`, computes
its numbers here and asks ``reportgen.figures`` for the plot, and returns a plain dict that the post's template
reads as ``analyses.<name>``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from scipy import stats as scipy_stats

from .store import Run


@dataclass
class VariantResults:
    name: str
    label: str
    description: str
    dataset: str
    runs: list[Run] = field(default_factory=list)
    unavailable: str | None = None  # why this variant was left out (e.g. its dataset could not be provisioned)

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]

    def test_accs(self) -> np.ndarray:
        return np.array([r.metrics["test_acc"] for r in self.runs])


@dataclass
class Study:
    """One experiment's results under one profile, as the analyses and templates see them."""
    id: str
    config: Any                      # reportgen.config.ExperimentConfig
    profile: str
    variants: list[VariantResults]

    @property
    def available(self) -> list[VariantResults]:
        return [v for v in self.variants if v.runs]

    def variant(self, name: str) -> VariantResults:
        return next(v for v in self.variants if v.name == name)


# ---- statistics --------------------------------------------------------------------------------------------
def mean_ci(values: np.ndarray | list[float], confidence: float = 0.95) -> dict[str, float]:
    """Mean, sample std and the t-distribution confidence interval of the mean (n >= 2; n = 1 has no interval)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    mean = float(x.mean())
    if n < 2:
        return {"n": n, "mean": mean, "std": float("nan"), "low": float("nan"), "high": float("nan"), "half": float("nan")}
    std = float(x.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=n - 1) * std / math.sqrt(n))
    return {"n": n, "mean": mean, "std": std, "low": mean - half, "high": mean + half, "half": half}


def paired_difference(a: VariantResults, b: VariantResults, confidence: float = 0.95) -> dict[str, Any] | None:
    """Test-accuracy difference b − a over the seeds both have (paired by seed), in points, with its interval and
    a plain-language verdict computed from the interval."""
    by_seed_a = {r.seed: r.metrics["test_acc"] for r in a.runs}
    by_seed_b = {r.seed: r.metrics["test_acc"] for r in b.runs}
    seeds = sorted(set(by_seed_a) & set(by_seed_b))
    if not seeds:
        return None
    diffs = np.array([(by_seed_b[s] - by_seed_a[s]) * 100 for s in seeds])
    ci = mean_ci(diffs, confidence)
    return {"baseline": a.name, "variant": b.name, "seeds": seeds, **ci,
            "verdict": verdict(b.label, a.label, ci, "test accuracy")}


def verdict(subject: str, reference: str, ci: dict[str, float], metric: str) -> str:
    """The sentence a post prints for a paired difference; never written by hand in a template."""
    n = ci["n"]
    if n < 2:
        return (f"{subject} vs {reference}: {ci['mean']:+.2f} points of {metric} on a single seed — "
                "too few seeds for an interval, so no verdict.")
    interval = f"95% CI {ci['low']:+.2f} to {ci['high']:+.2f}"
    if ci["low"] > 0:
        return f"{subject} improves {metric} over {reference} by {ci['mean']:.2f} points ({interval}, {n} seeds)."
    if ci["high"] < 0:
        return f"{subject} lowers {metric} compared with {reference} by {-ci['mean']:.2f} points ({interval}, {n} seeds)."
    return (f"No clear difference in {metric} between {subject} and {reference} at {n} seeds "
            f"(mean difference {ci['mean']:+.2f} points, {interval}).")


def summary(study: Study) -> dict[str, Any]:
    """Per-variant test accuracy (mean ± std and CI, in %), parameters, train–validation gap, and paired
    differences against the baseline: the numbers every post states."""
    rows = []
    for v in study.available:
        acc = mean_ci(v.test_accs() * 100)
        gaps = [100 * (r.history["epochs"][-1]["train_acc"] - r.history["epochs"][-1]["val_acc"]) for r in v.runs]
        rows.append({
            "name": v.name, "label": v.label, "dataset": v.dataset, "seeds": v.seeds, "acc": acc,
            "parameters": v.runs[0].metrics["parameters"], "gap": mean_ci(gaps),
            "best_epoch": mean_ci([r.metrics["best_epoch"] for r in v.runs]),
            "epochs": len(v.runs[0].history["epochs"]),
            "wall_seconds": sum(r.record["wall_seconds"] for r in v.runs),
        })
    baseline_name = study.config.baseline or (study.available[0].name if study.available else None)
    comparisons = []
    if baseline_name is not None and any(v.name == baseline_name for v in study.available):
        base = study.variant(baseline_name)
        for v in study.available:
            if v.name != baseline_name:
                diff = paired_difference(base, v)
                if diff is not None:
                    comparisons.append(diff)
    return {"rows": rows, "baseline": baseline_name, "comparisons": comparisons}


# ---- analyses by name ---------------------------------------------------------------------------------------
def curves(study: Study, figures) -> dict[str, Any]:
    """Train and validation loss/accuracy per epoch: mean over seeds with a min–max band, per variant."""
    series = {}
    for v in study.available:
        per_seed = {key: np.array([[row[key] for row in r.history["epochs"]] for r in v.runs])
                    for key in ("train_loss", "val_loss", "train_acc", "val_acc")}
        series[v.label] = per_seed
    fig = figures.curves(series, title=f"{study.config.title}: training curves")
    return {"figure": fig}


ANALYSES: dict[str, Callable[[Study, Any], dict[str, Any]]] = {
    "curves": curves,
}
