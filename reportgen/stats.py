"""Every number a post states about "which variant is better", and the sentence that says it: templates print
``verdict`` strings, they never phrase a conclusion themselves."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from scipy import stats as scipy_stats

from .settings import CONFIDENCE, CONVERGED_GAIN_POINTS, CONVERGENCE_WINDOW, DATASET_TITLES as DATASET_NAMES
from .store import Run
from .study import Study, VariantResults

# (verb if the difference is positive, verb if negative, adjective if positive, adjective if negative)
ACCURACY_WORDS = ("improves", "lowers", "higher", "lower")
ACROSS_DATASETS_WORDS = ("scores higher in", "scores lower in", "higher", "lower")
GAP_WORDS = ("widens", "narrows", "wider", "narrower")


def mean_ci(values: np.ndarray | list[float], confidence: float = CONFIDENCE) -> dict[str, float]:
    """Mean, sample standard deviation (ddof = 1) and the two-sided t-distribution confidence interval of the mean.

    The interval is mean ± t(1 − α/2, n − 1) · s / √n with α = 1 − ``confidence``: with seeds as the samples it
    says how well ``n`` seeds pin down the mean over seeds. One value has no spread to estimate, so ``std``,
    ``low``, ``high`` and ``half`` are NaN (shown as "—"); no values at all give NaN everywhere."""
    x = np.asarray(values, dtype=float).ravel()
    n = int(x.size)
    nan = float("nan")
    out = {"n": n, "mean": nan, "std": nan, "low": nan, "high": nan, "half": nan, "confidence": confidence}
    if n == 0:
        return out
    out["mean"] = float(x.mean())
    if n < 2:
        return out
    std = float(x.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=n - 1) * std / math.sqrt(n))
    out.update(std=std, half=half, low=out["mean"] - half, high=out["mean"] + half)
    return out


def test_accuracy(run: Run) -> float:
    """Test accuracy of a run's best-validation checkpoint, in percent."""
    return 100 * run.metrics["test_acc"]


def final_gap(run: Run) -> float:
    """Train minus validation accuracy at the last epoch, in percentage points."""
    last = run.history["epochs"][-1]
    return 100 * (last["train_acc"] - last["val_acc"])


# ---- convergence: measured from the per-epoch validation accuracy of every run --------------------------------
CONVERGED, STILL_LEARNING, NOT_MEASURED = "converged", "still learning", "not measured"


def run_convergence(epochs: list[dict[str, float]], window: int = CONVERGENCE_WINDOW) -> dict[str, Any]:
    """One run's diagnosis from its per-epoch history: the validation-accuracy gain (percentage points) over the
    last ``window`` epochs (fewer when the run is shorter: all epochs after the first), and whether the best
    validation epoch is the last one (ties go to the earlier epoch, as in training). One epoch has no gain."""
    val = [e["val_acc"] for e in epochs]
    k = min(window, len(val) - 1)
    best = val.index(max(val)) + 1
    gain = 100 * (val[-1] - val[-1 - k]) if k > 0 else float("nan")
    return {"gain": gain, "window": k, "best_epoch": best, "best_is_last": best == len(val)}


def convergence(runs: list[Run], threshold: float = CONVERGED_GAIN_POINTS) -> dict[str, Any]:
    """Whether a variant's networks had stopped improving: per run :func:`run_convergence`, then the rule —
    "still learning" when the mean gain over seeds exceeds ``threshold``, or exceeds half of it while the best
    epoch is the last one on most seeds (more than half); "converged" otherwise; "not measured" for one-epoch
    runs. ``text`` says the gain in words ("+0.90 points over the last 3 epochs")."""
    per_run = [run_convergence(r.history["epochs"]) for r in runs]
    measured = [c for c in per_run if c["window"] > 0]
    best_last = sum(c["best_is_last"] for c in per_run)
    if not measured:
        return {"gain": float("nan"), "window": 0, "best_is_last": best_last, "n": len(per_run),
                "still_learning": False, "verdict": NOT_MEASURED, "text": "one epoch: no gain to measure"}
    gain = float(np.mean([c["gain"] for c in measured]))
    window = min(c["window"] for c in measured)
    most_best_last = best_last > len(per_run) / 2
    still = gain > threshold or (most_best_last and gain > threshold / 2)
    span = "the last epoch" if window == 1 else f"the last {window} epochs"
    return {"gain": gain, "window": window, "best_is_last": best_last, "n": len(per_run), "still_learning": still,
            "verdict": STILL_LEARNING if still else CONVERGED,
            "text": f"{_pts(gain, sign=True)} points over {span}"}


def learning_caveat(sentence: str, labels: list[str]) -> str:
    """``sentence`` (a verdict) with the caveat that the named variants were still learning."""
    if not labels:
        return sentence
    who = " and ".join(labels)
    verb = "was" if len(labels) == 1 else "were"
    return f"{sentence.rstrip('.')}; {who} {verb} still learning, so longer training may change this."


def paired_difference(a: VariantResults, b: VariantResults, confidence: float = CONFIDENCE, *,
                      value: Callable[[Run], float] = test_accuracy, metric: str = "test accuracy",
                      words: tuple[str, str, str, str] | None = None) -> dict[str, Any] | None:
    """``value`` of ``b`` minus that of ``a`` (default: test accuracy, in percentage points), paired by seed — seed s
    of ``b`` against seed s of ``a``: same data order and, for the same layers, the same initial weights — with
    the t-interval of the mean difference and the verdict sentence computed from it. None when no seed was run
    by both."""
    by_seed_a = {r.seed: value(r) for r in a.runs}
    by_seed_b = {r.seed: value(r) for r in b.runs}
    seeds = sorted(set(by_seed_a) & set(by_seed_b))
    if not seeds:
        return None
    diffs = [by_seed_b[s] - by_seed_a[s] for s in seeds]
    ci = mean_ci(diffs, confidence)
    across = a.dataset != b.dataset
    if words is None:
        words = ACROSS_DATASETS_WORDS if across else ACCURACY_WORDS
    return {"baseline": a.name, "variant": b.name, "baseline_label": a.label, "label": b.label, "metric": metric,
            "seeds": seeds, "per_seed": dict(zip(seeds, diffs)), "across_datasets": across, **ci,
            "verdict": verdict(b.label, a.label, ci, metric, words=words, across_datasets=across)}


def _pts(x: float, sign: bool = False) -> str:
    """A number of percentage points for prose: two decimals, a real minus sign, '+' only when asked."""
    text = f"{x:+.2f}" if sign else f"{x:.2f}"
    return text.replace("-", "\u2212")


def verdict(subject: str, reference: str, ci: dict[str, float], metric: str = "test accuracy", *,
            words: tuple[str, str, str, str] = ACCURACY_WORDS, across_datasets: bool = False) -> str:
    """The sentence a post prints for a paired difference ``subject − reference`` in percentage points.

    The conclusion follows from the confidence interval alone: entirely above zero and entirely below zero are
    a clear difference (worded with ``words``), an interval that contains zero is "no clear difference at this
    number of seeds", and a single seed gives no interval and therefore no verdict. Across datasets the test
    sets differ, so the sentence says so."""
    n, mean = int(ci["n"]), ci["mean"]
    level = f"{round(100 * ci.get('confidence', CONFIDENCE))}% CI"
    up, down, higher, lower = words
    if n == 0 or mean != mean:
        return f"{subject} and {reference} have no seed in common, so there is nothing to compare."
    if n == 1:
        return (f"On a single seed, {subject} differs from {reference} by {_pts(mean, sign=True)} percentage points of "
                f"{metric}. One seed has no spread to estimate, so there is no confidence interval and no verdict: "
                "a difference this size can come from the seed alone. The quick (3 seeds) or full (5 seeds) "
                "profile can tell.")
    note = ("; the test sets differ, so this measures how hard each dataset is for the same network"
            if across_datasets else "")
    seeds = f"paired over {n} seeds"
    if not ci["std"] > 0:  # every seed gave exactly the same difference: a zero-width interval
        if mean == 0:
            return f"{metric[0].upper() + metric[1:]} is exactly the same for {subject} and {reference} on all {n} seeds."
        verb = up if mean > 0 else down
        return (f"{subject} {verb} {metric} by exactly {_pts(abs(mean))} percentage points compared with "
                f"{reference} on every one of the {n} seeds (no seed-to-seed spread, so the interval has zero "
                f"width){note}.")
    if ci["low"] > 0:
        return (f"{subject} {up} {metric} by {_pts(mean)} percentage points compared with {reference} "
                f"({level} {_pts(ci['low'])} to {_pts(ci['high'])}, {seeds}){note}.")
    if ci["high"] < 0:
        return (f"{subject} {down} {metric} by {_pts(-mean)} percentage points compared with {reference} "
                f"({level} {_pts(-ci['high'])} to {_pts(-ci['low'])} points {lower}, {seeds}){note}.")
    return (f"No clear difference in {metric} between {subject} and {reference} at {n} seeds: the mean difference "
            f"is {_pts(mean, sign=True)} percentage points, but its {level} ({_pts(ci['low'], sign=True)} to "
            f"{_pts(ci['high'], sign=True)}) includes zero.")


def summary(study: Study) -> dict[str, Any]:
    """The numbers every post states, in percent / percentage points: per variant the test accuracy (mean, std,
    t-interval over seeds), parameters, last-epoch train and validation accuracy and their gap, best epoch, and
    whether its networks converged (``convergence``, from the stored histories); and the paired difference of every
    variant against the study's ``baseline`` (default: the first variant) in test accuracy (``comparisons``) and in
    the train − validation gap (``gap_comparisons``), each with its interval and verdict — a verdict about a
    variant that was still learning says so. Variants left out (``unavailable``) are listed with the reason."""
    rows = []
    for v in study.available:
        rows.append({
            "name": v.name, "label": v.label, "dataset": v.dataset,
            "dataset_name": DATASET_NAMES.get(v.dataset, v.dataset), "seeds": v.seeds, "n": len(v.runs),
            "acc": mean_ci([test_accuracy(r) for r in v.runs]),
            "parameters": v.runs[0].metrics["parameters"],
            "train_acc": mean_ci([100 * r.history["epochs"][-1]["train_acc"] for r in v.runs]),
            "val_acc": mean_ci([100 * r.history["epochs"][-1]["val_acc"] for r in v.runs]),
            "gap": mean_ci([final_gap(r) for r in v.runs]),
            "best_epoch": mean_ci([r.metrics["best_epoch"] for r in v.runs]),
            "epochs": len(v.runs[0].history["epochs"]),
            "wall_seconds": sum(r.record["wall_seconds"] for r in v.runs),
            "convergence": convergence(v.runs),
            "diff": None, "gap_diff": None,
        })
    baseline_name = study.config.baseline or (study.available[0].name if study.available else None)
    comparisons: list[dict[str, Any]] = []
    gap_comparisons: list[dict[str, Any]] = []
    base = next((v for v in study.available if v.name == baseline_name), None)
    if base is not None:
        base_row = rows[study.available.index(base)]
        for v, row in zip(study.available, rows):
            if v.name == baseline_name:
                continue
            # a verdict about a network that was still learning may not survive longer training: it says so
            learning = [r["label"] for r in (base_row, row) if r["convergence"]["still_learning"]]
            diff = paired_difference(base, v)
            if diff is not None:
                diff["verdict"] = learning_caveat(diff["verdict"], learning)
                comparisons.append(diff)
                row["diff"] = diff
            gap = paired_difference(base, v, value=final_gap, metric="the train − validation gap", words=GAP_WORDS)
            if gap is not None:
                gap["verdict"] = learning_caveat(gap["verdict"], learning)
                gap_comparisons.append(gap)
                row["gap_diff"] = gap
    unavailable = [{"name": v.name, "label": v.label, "dataset": v.dataset, "reason": v.unavailable}
                   for v in study.variants if v.unavailable]
    baseline_label = next((v.label for v in study.variants if v.name == baseline_name), baseline_name)
    n_seeds = max((row["n"] for row in rows), default=0)
    return {
        "rows": rows, "baseline": baseline_name, "baseline_label": baseline_label,
        "baseline_missing": baseline_name is not None and base is None and bool(study.variants),
        "comparisons": comparisons, "gap_comparisons": gap_comparisons,
        "unavailable": unavailable, "n_seeds": n_seeds, "single_seed": n_seeds == 1,
        "confidence": CONFIDENCE, "confidence_pct": round(100 * CONFIDENCE),
        "still_learning": [row["label"] for row in rows if row["convergence"]["still_learning"]],
        "converged_gain_points": CONVERGED_GAIN_POINTS, "convergence_window": CONVERGENCE_WINDOW,
    }
