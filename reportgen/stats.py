"""Every number a post states about "which variant is better", and the sentence that says it: templates print
``verdict`` strings, they never phrase a conclusion themselves.

Two variants are compared seed against seed (:func:`paired_difference`) only when pairing means something — when
their runs share everything seed-dependent on the data side (:func:`pairing`); otherwise the interval is Welch's,
unpaired (:func:`unpaired_difference`). :func:`difference` decides, and every verdict says which it used."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from scipy import stats as scipy_stats

from . import numbers
from .measures import checkpoint, checkpoint_gap, checkpoints, eval_train_accuracy, binomial_interval
from .settings import (CONFIDENCE, CONVERGED_GAIN_POINTS, CONVERGENCE_WINDOW, DATASET_TITLES as DATASET_NAMES,
                       TRAIN_EVAL_IMAGES, VAL_LOSS_EPOCH_TOLERANCE, VAL_LOSS_RISE_FRACTION)
from .store import Run
from .study import Study, VariantResults

# (verb if the difference is positive, verb if negative, adjective if positive, adjective if negative)
ACCURACY_WORDS = ("improves", "lowers", "higher", "lower")
ACROSS_DATASETS_WORDS = ("scores higher in", "scores lower in", "higher", "lower")
GAP_WORDS = ("widens", "narrows", "wider", "narrower")
FLOAT_NOISE = 1e-9  # relative: far below any difference a post prints (two decimals), far above double rounding


def _spread(value: float, mean: float) -> float:
    """A standard deviation (or error), with float rounding noise read as none: values that are equal but were
    computed along different paths (99.925 − 99.175 and 99.90 − 99.15) differ by ~1e-14, not by a spread."""
    return 0.0 if value <= FLOAT_NOISE * max(1.0, abs(mean)) else value


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
    std = _spread(float(x.std(ddof=1)), out["mean"])
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=n - 1) * std / math.sqrt(n))
    out.update(std=std, half=half, low=out["mean"] - half, high=out["mean"] + half)
    return out


def test_accuracy(run: Run) -> float:
    """Test accuracy of a run's best-validation checkpoint, in percent."""
    return 100 * run.metrics["test_acc"]


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
            # two decimals: the gain is read against a threshold of a few tenths, and must fall on the right side
            "text": f"{_pts(gain, sign=True, digits=numbers.FINE_DECIMALS)} points over {span}"}


def learning_caveat(sentence: str, labels: list[str]) -> str:
    """``sentence`` (a verdict) with the caveat that the named variants were still learning."""
    if not labels:
        return sentence
    who = " and ".join(labels)
    verb = "was" if len(labels) == 1 else "were"
    return f"{sentence.rstrip('.')}; {who} {verb} still learning, so longer training may change this."


# ---- differences: paired where pairing means something, unpaired elsewhere ------------------------------------
PAIRED, UNPAIRED = "paired", "unpaired"
# Besides the dataset, what decides which images a run trains on, in which order for a given seed, and which it is
# tested on. Two variants that agree on all of them share, for seed k, the data order (and for the same layers
# the initial weights): seed k of one is then a fair partner of seed k of the other. Variants that differ in any
# of them (another dataset, another training subset) share nothing seed-dependent, so pairing would be arbitrary.
PAIRING_FIELDS = ("train_limit", "eval_limit", "val_size", "split_seed")


def pairing(a: VariantResults, b: VariantResults) -> str:
    """PAIRED when the runs of ``a`` and ``b`` have the same dataset and the same PAIRING_FIELDS in their resolved
    configs, UNPAIRED otherwise."""
    def data(v: VariantResults) -> set[tuple[Any, ...]]:
        return {(v.dataset, *(r.config.get(f) for f in PAIRING_FIELDS)) for r in v.runs}
    return PAIRED if data(a) == data(b) else UNPAIRED


def difference(a: VariantResults, b: VariantResults, confidence: float = CONFIDENCE, *,
               value: Callable[[Run], float] = test_accuracy, metric: str = "test accuracy",
               words: tuple[str, str, str, str] | None = None) -> dict[str, Any] | None:
    """``value`` of ``b`` minus that of ``a``, with the interval :func:`pairing` allows: :func:`paired_difference`
    for variants that share their data, :func:`unpaired_difference` otherwise. Every comparison a post shows
    goes through here; its ``pairing`` and ``basis`` ("paired over 3 seeds", "unpaired, 3 and 3 seeds") say which."""
    compare = paired_difference if pairing(a, b) == PAIRED else unpaired_difference
    return compare(a, b, confidence, value=value, metric=metric, words=words)


def _difference(a: VariantResults, b: VariantResults, ci: dict[str, Any], metric: str,
                words: tuple[str, str, str, str] | None, **extra: Any) -> dict[str, Any]:
    across = a.dataset != b.dataset
    if words is None:
        words = ACROSS_DATASETS_WORDS if across else ACCURACY_WORDS
    return {"baseline": a.name, "variant": b.name, "baseline_label": a.label, "label": b.label, "metric": metric,
            "across_datasets": across, **extra, **ci,
            "verdict": verdict(b.label, a.label, ci, metric, words=words, across_datasets=across)}


def paired_difference(a: VariantResults, b: VariantResults, confidence: float = CONFIDENCE, *,
                      value: Callable[[Run], float] = test_accuracy, metric: str = "test accuracy",
                      words: tuple[str, str, str, str] | None = None) -> dict[str, Any] | None:
    """``value`` of ``b`` minus that of ``a`` (default: test accuracy, in percentage points), paired by seed — seed s
    of ``b`` against seed s of ``a``: same data order and, for the same layers, the same initial weights — with
    the t-interval of the mean difference and the verdict sentence computed from it. None when no seed was run
    by both. Use :func:`difference`, which pairs only where that means something."""
    by_seed_a = {r.seed: value(r) for r in a.runs}
    by_seed_b = {r.seed: value(r) for r in b.runs}
    seeds = sorted(set(by_seed_a) & set(by_seed_b))
    if not seeds:
        return None
    diffs = [by_seed_b[s] - by_seed_a[s] for s in seeds]
    n = len(seeds)
    ci = {**mean_ci(diffs, confidence), "pairing": PAIRED, "basis": f"paired over {n} seeds",
          "seeds_text": f"{n} seeds"}
    return _difference(a, b, ci, metric, words, seeds=seeds, per_seed=dict(zip(seeds, diffs)))


def unpaired_difference(a: VariantResults, b: VariantResults, confidence: float = CONFIDENCE, *,
                        value: Callable[[Run], float] = test_accuracy, metric: str = "test accuracy",
                        words: tuple[str, str, str, str] | None = None) -> dict[str, Any] | None:
    """``value`` of ``b`` minus that of ``a`` as the difference of the two means over each variant's own seeds,
    with Welch's t-interval (unequal variances, Welch–Satterthwaite degrees of freedom; ``scipy.stats.ttest_ind``):
    for variants whose seed k shares nothing with the other's seed k. ``n`` is the smaller number of seeds (one
    seed on either side: no interval); ``se`` the standard error of the difference. None when a side has no run."""
    x = np.array([value(r) for r in b.runs], dtype=float)
    y = np.array([value(r) for r in a.runs], dtype=float)
    if not x.size or not y.size:
        return None
    nan = float("nan")
    ci: dict[str, Any] = {"n": int(min(x.size, y.size)), "n_variant": int(x.size), "n_baseline": int(y.size),
                          "mean": float(x.mean() - y.mean()), "std": nan, "se": nan, "low": nan, "high": nan,
                          "half": nan, "confidence": confidence, "pairing": UNPAIRED,
                          "basis": f"unpaired, {x.size} and {y.size} seeds",
                          "seeds_text": f"{x.size} and {y.size} seeds"}
    if ci["n"] >= 2:
        se = _spread(math.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size), ci["mean"])
        if se > 0:
            interval = scipy_stats.ttest_ind(x, y, equal_var=False).confidence_interval(confidence_level=confidence)
            low, high = float(interval.low), float(interval.high)
        else:  # every seed of each side gave the same value: a zero-width interval (scipy would warn and give NaN)
            low = high = ci["mean"]
        ci.update(se=se, low=low, high=high, half=(high - low) / 2)
    return _difference(a, b, ci, metric, words, seeds=sorted(set(a.seeds) | set(b.seeds)), per_seed={})


def _pts(x: float, sign: bool = False, digits: int | None = None) -> str:
    """A number of percentage points for prose: the decimals its interval supports (:mod:`reportgen.numbers`),
    a real minus sign, '+' only when asked."""
    return numbers.fixed(x, digits, signed=sign)


def verdict(subject: str, reference: str, ci: dict[str, Any], metric: str = "test accuracy", *,
            words: tuple[str, str, str, str] = ACCURACY_WORDS, across_datasets: bool = False) -> str:
    """The sentence a post prints for a difference ``subject − reference`` in percentage points.

    The conclusion follows from the confidence interval alone: entirely above zero and entirely below zero are
    a clear difference (worded with ``words``), an interval that contains zero is "no clear difference at this
    number of seeds", and a single seed gives no interval and therefore no verdict. The sentence names the
    interval's ``basis`` (paired over n seeds, or unpaired; default paired). Across datasets the test sets differ,
    so the sentence says so."""
    n, mean = int(ci["n"]), ci["mean"]
    digits = numbers.decimals(numbers.half_width(ci))  # every number of the sentence: the interval's decimals

    def pts(x: float, sign: bool = False) -> str:
        return _pts(x, sign, digits)

    level = f"{round(100 * ci.get('confidence', CONFIDENCE))}% CI"
    up, down, higher, lower = words
    paired = ci.get("pairing", PAIRED) == PAIRED
    seeds = ci.get("basis") or f"paired over {n} seeds"
    at = ci.get("seeds_text") or f"{n} seeds"
    if n == 0 or mean != mean:
        return f"{subject} and {reference} have no seed in common, so there is nothing to compare."
    if n == 1:
        single = paired or ci.get("n_variant") == ci.get("n_baseline") == 1
        return (f"{'On a single seed' if single else f'On {at}'}, {subject} differs from {reference} by "
                f"{pts(mean, sign=True)} percentage points of {metric}. One seed has no spread to estimate, so there "
                "is no confidence interval and no verdict: a difference this size can come from the seed alone. The "
                "quick (3 seeds) or full (5 seeds) profile can tell.")
    note = ("; the test sets differ, so this measures how hard each dataset is for the same network"
            if across_datasets else "")
    if not ci["high"] > ci["low"]:  # every seed gave exactly the same value(s): a zero-width interval
        if mean == 0:
            every = f"on all {n} seeds" if paired else f"on every seed ({seeds})"
            return f"{metric[0].upper() + metric[1:]} is exactly the same for {subject} and {reference} {every}."
        verb = up if mean > 0 else down
        every = f"on every one of the {n} seeds" if paired else f"on every seed ({seeds})"
        return (f"{subject} {verb} {metric} by exactly {pts(abs(mean))} percentage points compared with "
                f"{reference} {every} (no seed-to-seed spread, so the interval has zero width){note}.")
    if ci["low"] > 0:
        return (f"{subject} {up} {metric} by {pts(mean)} percentage points compared with {reference} "
                f"({level} {pts(ci['low'])} to {pts(ci['high'])}, {seeds}){note}.")
    if ci["high"] < 0:
        return (f"{subject} {down} {metric} by {pts(-mean)} percentage points compared with {reference} "
                f"({level} {pts(-ci['high'])} to {pts(-ci['low'])} points {lower}, {seeds}){note}.")
    return (f"No clear difference in {metric} between {subject} and {reference} at {at}: the mean difference "
            f"is {pts(mean, sign=True)} percentage points, but its {level} ({pts(ci['low'], sign=True)} to "
            f"{pts(ci['high'], sign=True)}, {seeds}) includes zero.")


def _row(v: VariantResults, eval_train: dict[int, dict[str, Any]], gap: Callable[[Run], float]) -> dict[str, Any]:
    """One variant's numbers (see :func:`summary`); ``gap`` is the gap the verdicts use."""
    marks = [checkpoint(r) for r in v.runs]
    running = [100 * c["train_acc"] for c in marks]
    measured = [100 * eval_train[id(r)]["acc"] for r in v.runs] if eval_train else None
    acc = mean_ci([test_accuracy(r) for r in v.runs])
    return {
        "name": v.name, "label": v.label, "dataset": v.dataset,
        "dataset_name": DATASET_NAMES.get(v.dataset, v.dataset), "seeds": v.seeds, "n": len(v.runs),
        "acc": acc, "test_set": binomial_interval(acc["mean"], v.runs[0].metrics.get("test_size")),
        "parameters": v.runs[0].metrics["parameters"],
        "train_acc": mean_ci(running if measured is None else measured), "train_acc_running": mean_ci(running),
        "train_acc_eval": mean_ci(measured) if measured is not None else None,
        "train_eval_images": min(eval_train[id(r)]["n"] for r in v.runs) if eval_train else None,
        "val_acc": mean_ci([100 * c["val_acc"] for c in marks]),
        "gap": mean_ci([gap(r) for r in v.runs]), "gap_running": mean_ci([checkpoint_gap(r) for r in v.runs]),
        "best_epoch": mean_ci([c["epoch"] for c in marks]), "checkpoint": checkpoints(v.runs),
        "epochs": len(v.runs[0].history["epochs"]),
        "wall_seconds": sum(r.record["wall_seconds"] for r in v.runs),
        "convergence": convergence(v.runs),
        "diff": None, "gap_diff": None,
    }


def summary(study: Study) -> dict[str, Any]:
    """The numbers every post states, in percent / percentage points: per variant the test accuracy (mean, std,
    t-interval over seeds) with the test set's own binomial interval (``test_set``), parameters, and at each run's
    checkpoint (the epoch of its highest validation accuracy: ``checkpoint``, with whether validation loss agrees)
    the training accuracy — measured on the stored weights in eval mode (``train_acc_eval``, the one the gap
    uses) beside the running figure counted during training (``train_acc_running``) — the validation accuracy and
    their gap, and whether its networks converged (``convergence``, from the stored histories); and the difference
    of every variant to the study's ``baseline`` (default: the first variant) in test accuracy (``comparisons``)
    and in the train − validation gap (``gap_comparisons``), each paired or unpaired as :func:`pairing` decides,
    with its interval and verdict — a verdict about a variant that was still learning says so. When the eval-mode
    training accuracy cannot be measured here, ``gap_basis`` is "running" and ``gap_eval_missing`` says why.
    Variants left out (``unavailable``) are listed with the reason."""
    eval_train, eval_missing = eval_train_accuracy(study)

    def gap(run: Run) -> float:  # eval-mode training accuracy when measured for every run, else the running one
        return checkpoint_gap(run, eval_train[id(run)]["acc"] if eval_train else None)

    rows = [_row(v, eval_train, gap) for v in study.available]
    baseline_name = study.baseline
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
            diff = difference(base, v)
            if diff is not None:
                diff["verdict"] = learning_caveat(diff["verdict"], learning)
                comparisons.append(diff)
                row["diff"] = diff
            gap_diff = difference(base, v, value=gap, metric="the train − validation gap", words=GAP_WORDS)
            if gap_diff is not None:
                gap_diff["verdict"] = learning_caveat(gap_diff["verdict"], learning)
                # where the change comes from: the training side or the validation side of the gap (means)
                train_key = "train_acc_eval" if eval_train else "train_acc_running"
                gap_diff["train_change"] = row[train_key]["mean"] - base_row[train_key]["mean"]
                gap_diff["val_change"] = row["val_acc"]["mean"] - base_row["val_acc"]["mean"]
                gap_comparisons.append(gap_diff)
                row["gap_diff"] = gap_diff
    unavailable = [{"name": v.name, "label": v.label, "dataset": v.dataset, "reason": v.unavailable}
                   for v in study.variants if v.unavailable]
    baseline_label = next((v.label for v in study.variants if v.name == baseline_name), baseline_name)
    n_seeds = max((row["n"] for row in rows), default=0)
    return {
        "rows": rows, "baseline": baseline_name, "baseline_label": baseline_label,
        "baseline_missing": baseline_name is not None and base is None and bool(study.variants),
        "comparisons": comparisons, "gap_comparisons": gap_comparisons,
        "paired": [c["label"] for c in comparisons if c["pairing"] == PAIRED],
        "unpaired": [c["label"] for c in comparisons if c["pairing"] == UNPAIRED],
        "unavailable": unavailable, "n_seeds": n_seeds, "single_seed": n_seeds == 1,
        "confidence": CONFIDENCE, "confidence_pct": round(100 * CONFIDENCE),
        "still_learning": [row["label"] for row in rows if row["convergence"]["still_learning"]],
        "converged_gain_points": CONVERGED_GAIN_POINTS, "convergence_window": CONVERGENCE_WINDOW,
        "gap_basis": "eval" if eval_train else "running", "gap_eval_missing": eval_missing,
        "train_eval_images": TRAIN_EVAL_IMAGES,  # the most; fewer (train_eval_n) where runs trained on fewer
        "train_eval_n": min((row["train_eval_images"] for row in rows), default=None) if eval_train else None,
        "runs": sum(row["n"] for row in rows),
        "common_seeds": rows[0]["seeds"] if rows and all(row["seeds"] == rows[0]["seeds"] for row in rows) else None,
        "loss_disagrees": any(row["checkpoint"]["disagree"] for row in rows),
        "loss_disagree_runs": sum(row["checkpoint"]["disagree"] for row in rows),
        "val_loss_epoch_tolerance": VAL_LOSS_EPOCH_TOLERANCE,
        "val_loss_rise_pct": round(100 * VAL_LOSS_RISE_FRACTION),
        "test_sizes": sorted({row["test_set"]["n"] for row in rows if row["test_set"]}),
    }
