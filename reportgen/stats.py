"""Every number a post states about "which variant is better", and the sentence that says it: templates print
``verdict`` strings, they never phrase a conclusion themselves.

Two variants are compared seed against seed (:func:`paired_difference`) only when pairing means something — when
their runs share everything seed-dependent on the data side (:func:`pairing`); otherwise the interval is Welch's,
unpaired (:func:`unpaired_difference`). :func:`difference` decides, and every verdict says which it used."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
from scipy import stats as scipy_stats

from .measures import (Checkpoints, Convergence, TestSetInterval, binomial_interval, checkpoint, checkpoint_gap,
                       checkpoints, convergence, eval_train_accuracy)
from .settings import (CONFIDENCE, CONVERGED_GAIN_POINTS, CONVERGENCE_WINDOW, DATASET_TITLES as DATASET_NAMES,
                       TRAIN_EVAL_IMAGES, VAL_LOSS_EPOCH_TOLERANCE, VAL_LOSS_RISE_FRACTION)
from .store import Run
from .study import Study, VariantResults

# (verb if the difference is positive, verb if negative, adjective if positive, adjective if negative)
ACCURACY_WORDS = ("improves", "lowers", "higher", "lower")
ACROSS_DATASETS_WORDS = ("scores higher in", "scores lower in", "higher", "lower")
GAP_WORDS = ("widens", "narrows", "wider", "narrower")
FLOAT_NOISE = 1e-9  # relative: far below any difference a post prints (two decimals), far above double rounding


NAN = float("nan")
PAIRED, UNPAIRED = "paired", "unpaired"


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` values with its sample standard deviation and two-sided t-interval (``low`` to ``high``,
    ``half`` its half-width) at ``confidence``; NaN where ``n`` is too small to estimate them."""
    n: int
    mean: float
    std: float = NAN
    low: float = NAN
    high: float = NAN
    half: float = NAN
    confidence: float = CONFIDENCE


@dataclass(frozen=True, kw_only=True)
class DifferenceInterval(Interval):
    """The interval of a difference, and what it rests on: ``pairing`` (PAIRED: seed against seed; UNPAIRED:
    Welch's interval over each side's own seeds, ``n_variant`` and ``n_baseline`` of them, standard error ``se``),
    ``basis`` ("paired over 3 seeds") and ``seeds_text`` ("3 seeds") for the verdict sentence."""
    pairing: str = PAIRED
    basis: str = ""
    seeds_text: str = ""
    n_variant: int | None = None
    n_baseline: int | None = None
    se: float = NAN

    @classmethod
    def paired(cls, ci: Interval) -> "DifferenceInterval":
        """A :func:`mean_ci` of per-seed differences, as a paired difference."""
        return cls(**vars(ci), pairing=PAIRED, basis=f"paired over {ci.n} seeds", seeds_text=f"{ci.n} seeds")


@dataclass(frozen=True, kw_only=True)
class Comparison(DifferenceInterval):
    """``variant`` minus ``baseline`` in ``metric`` (see :func:`difference`): the interval, the seeds it used and the
    sentence a post prints (``verdict``); for a gap comparison, how much of the change is the training side
    (``train_change``) and how much the validation side (``val_change``), in points."""
    baseline: str
    variant: str
    baseline_label: str
    label: str
    metric: str
    across_datasets: bool
    seeds: list[int]
    per_seed: dict[int, float]
    verdict: str
    train_change: float = NAN
    val_change: float = NAN


def _spread(value: float, mean: float) -> float:
    """A standard deviation (or error), with float rounding noise read as none: values that are equal but were
    computed along different paths (99.925 − 99.175 and 99.90 − 99.15) differ by ~1e-14, not by a spread."""
    return 0.0 if value <= FLOAT_NOISE * max(1.0, abs(mean)) else value


def mean_ci(values: np.ndarray | list[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean, sample standard deviation (ddof = 1) and the two-sided t-distribution confidence interval of the mean.

    The interval is mean ± t(1 − α/2, n − 1) · s / √n with α = 1 − ``confidence``: with seeds as the samples it
    says how well ``n`` seeds pin down the mean over seeds. One value has no spread to estimate, so ``std``,
    ``low``, ``high`` and ``half`` are NaN (shown as "—"); no values at all give NaN everywhere."""
    x = np.asarray(values, dtype=float).ravel()
    n = int(x.size)
    if n == 0:
        return Interval(n=0, mean=NAN, confidence=confidence)
    mean = float(x.mean())
    if n < 2:
        return Interval(n=n, mean=mean, confidence=confidence)
    std = _spread(float(x.std(ddof=1)), mean)
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=n - 1) * std / math.sqrt(n))
    return Interval(n=n, mean=mean, std=std, low=mean - half, high=mean + half, half=half, confidence=confidence)


def test_accuracy(run: Run) -> float:
    """Test accuracy of a run's best-validation checkpoint, in percent."""
    return 100 * run.metrics["test_acc"]


def learning_caveat(sentence: str, labels: list[str]) -> str:
    """``sentence`` (a verdict) with the caveat that the named variants were still learning."""
    if not labels:
        return sentence
    who = " and ".join(labels)
    verb = "was" if len(labels) == 1 else "were"
    return f"{sentence.rstrip('.')}; {who} {verb} still learning, so longer training may change this."


# ---- differences: paired where pairing means something, unpaired elsewhere ------------------------------------
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
               words: tuple[str, str, str, str] | None = None) -> Comparison | None:
    """``value`` of ``b`` minus that of ``a``, with the interval :func:`pairing` allows: :func:`paired_difference`
    for variants that share their data, :func:`unpaired_difference` otherwise. Every comparison a post shows
    goes through here; its ``pairing`` and ``basis`` ("paired over 3 seeds", "unpaired, 3 and 3 seeds") say which."""
    compare = paired_difference if pairing(a, b) == PAIRED else unpaired_difference
    return compare(a, b, confidence, value=value, metric=metric, words=words)


def _comparison(a: VariantResults, b: VariantResults, ci: DifferenceInterval, metric: str,
                words: tuple[str, str, str, str] | None, seeds: list[int], per_seed: dict[int, float]) -> Comparison:
    across = a.dataset != b.dataset
    if words is None:
        words = ACROSS_DATASETS_WORDS if across else ACCURACY_WORDS
    return Comparison(**vars(ci), baseline=a.name, variant=b.name, baseline_label=a.label, label=b.label,
                      metric=metric, across_datasets=across, seeds=seeds, per_seed=per_seed,
                      verdict=verdict(b.label, a.label, ci, metric, words=words, across_datasets=across))


def paired_difference(a: VariantResults, b: VariantResults, confidence: float = CONFIDENCE, *,
                      value: Callable[[Run], float] = test_accuracy, metric: str = "test accuracy",
                      words: tuple[str, str, str, str] | None = None) -> Comparison | None:
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
    ci = DifferenceInterval.paired(mean_ci(diffs, confidence))
    return _comparison(a, b, ci, metric, words, seeds=seeds, per_seed=dict(zip(seeds, diffs)))


def unpaired_difference(a: VariantResults, b: VariantResults, confidence: float = CONFIDENCE, *,
                        value: Callable[[Run], float] = test_accuracy, metric: str = "test accuracy",
                        words: tuple[str, str, str, str] | None = None) -> Comparison | None:
    """``value`` of ``b`` minus that of ``a`` as the difference of the two means over each variant's own seeds,
    with Welch's t-interval (unequal variances, Welch–Satterthwaite degrees of freedom; ``scipy.stats.ttest_ind``):
    for variants whose seed k shares nothing with the other's seed k. ``n`` is the smaller number of seeds (one
    seed on either side: no interval); ``se`` the standard error of the difference. None when a side has no run."""
    x = np.array([value(r) for r in b.runs], dtype=float)
    y = np.array([value(r) for r in a.runs], dtype=float)
    if not x.size or not y.size:
        return None
    ci = DifferenceInterval(n=int(min(x.size, y.size)), n_variant=int(x.size), n_baseline=int(y.size),
                            mean=float(x.mean() - y.mean()), confidence=confidence, pairing=UNPAIRED,
                            basis=f"unpaired, {x.size} and {y.size} seeds", seeds_text=f"{x.size} and {y.size} seeds")
    if ci.n >= 2:
        se = _spread(math.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size), ci.mean)
        if se > 0:
            interval = scipy_stats.ttest_ind(x, y, equal_var=False).confidence_interval(confidence_level=confidence)
            low, high = float(interval.low), float(interval.high)
        else:  # every seed of each side gave the same value: a zero-width interval (scipy would warn and give NaN)
            low = high = ci.mean
        ci = replace(ci, se=se, low=low, high=high, half=(high - low) / 2)
    return _comparison(a, b, ci, metric, words, seeds=sorted(set(a.seeds) | set(b.seeds)), per_seed={})


def _pts(x: float, sign: bool = False) -> str:
    """A number of percentage points for prose: two decimals, a real minus sign, '+' only when asked."""
    text = f"{x:+.2f}" if sign else f"{x:.2f}"
    return text.replace("-", "\u2212")


def verdict(subject: str, reference: str, ci: DifferenceInterval, metric: str = "test accuracy", *,
            words: tuple[str, str, str, str] = ACCURACY_WORDS, across_datasets: bool = False) -> str:
    """The sentence a post prints for a difference ``subject − reference`` in percentage points.

    The conclusion follows from the confidence interval alone: entirely above zero and entirely below zero are
    a clear difference (worded with ``words``), an interval that contains zero is "no clear difference at this
    number of seeds", and a single seed gives no interval and therefore no verdict. The sentence names the
    interval's ``basis`` (paired over n seeds, or unpaired). Across datasets the test sets differ, so the sentence
    says so."""
    n, mean = ci.n, ci.mean
    level = f"{round(100 * ci.confidence)}% CI"
    up, down, higher, lower = words
    paired = ci.pairing == PAIRED
    seeds, at = ci.basis, ci.seeds_text
    if n == 0 or mean != mean:
        return f"{subject} and {reference} have no seed in common, so there is nothing to compare."
    if n == 1:
        single = paired or ci.n_variant == ci.n_baseline == 1
        return (f"{'On a single seed' if single else f'On {at}'}, {subject} differs from {reference} by "
                f"{_pts(mean, sign=True)} percentage points of {metric}. One seed has no spread to estimate, so there "
                "is no confidence interval and no verdict: a difference this size can come from the seed alone. The "
                "quick (3 seeds) or full (5 seeds) profile can tell.")
    note = ("; the test sets differ, so this measures how hard each dataset is for the same network"
            if across_datasets else "")
    if not ci.high > ci.low:  # every seed gave exactly the same value(s): a zero-width interval
        if mean == 0:
            every = f"on all {n} seeds" if paired else f"on every seed ({seeds})"
            return f"{metric[0].upper() + metric[1:]} is exactly the same for {subject} and {reference} {every}."
        verb = up if mean > 0 else down
        every = f"on every one of the {n} seeds" if paired else f"on every seed ({seeds})"
        return (f"{subject} {verb} {metric} by exactly {_pts(abs(mean))} percentage points compared with "
                f"{reference} {every} (no seed-to-seed spread, so the interval has zero width){note}.")
    if ci.low > 0:
        return (f"{subject} {up} {metric} by {_pts(mean)} percentage points compared with {reference} "
                f"({level} {_pts(ci.low)} to {_pts(ci.high)}, {seeds}){note}.")
    if ci.high < 0:
        return (f"{subject} {down} {metric} by {_pts(-mean)} percentage points compared with {reference} "
                f"({level} {_pts(-ci.high)} to {_pts(-ci.low)} points {lower}, {seeds}){note}.")
    return (f"No clear difference in {metric} between {subject} and {reference} at {at}: the mean difference "
            f"is {_pts(mean, sign=True)} percentage points, but its {level} ({_pts(ci.low, sign=True)} to "
            f"{_pts(ci.high, sign=True)}, {seeds}) includes zero.")


@dataclass
class VariantRow:
    """One variant's numbers in a post (see :func:`summary`), in percent or points; ``diff`` and ``gap_diff`` are
    its comparisons with the baseline (None for the baseline itself)."""
    name: str
    label: str
    dataset: str
    dataset_name: str
    seeds: list[int]
    n: int
    acc: Interval
    test_set: TestSetInterval | None
    parameters: int
    train_acc: Interval
    train_acc_running: Interval
    train_acc_eval: Interval | None
    train_eval_images: int | None
    val_acc: Interval
    gap: Interval
    gap_running: Interval
    best_epoch: Interval
    checkpoint: Checkpoints
    epochs: int
    wall_seconds: float
    convergence: Convergence
    diff: Comparison | None = None
    gap_diff: Comparison | None = None


@dataclass(frozen=True)
class Unavailable:
    """A variant left out of a post, and why (e.g. its dataset could not be provisioned)."""
    name: str
    label: str
    dataset: str
    reason: str


@dataclass(frozen=True)
class Summary:
    """The numbers every post states (see :func:`summary`), with the settings its sentences quote."""
    rows: list[VariantRow]
    baseline: str | None
    baseline_label: str | None
    baseline_missing: bool
    comparisons: list[Comparison]
    gap_comparisons: list[Comparison]
    unavailable: list[Unavailable]
    gap_basis: str                 # "eval": the gap's training side measured in eval mode; "running": as counted
    gap_eval_missing: str | None   # why the eval-mode training accuracy could not be measured
    train_eval_n: int | None       # the fewest training images it was measured on (None: not measured)
    confidence: float = CONFIDENCE
    converged_gain_points: float = CONVERGED_GAIN_POINTS
    convergence_window: int = CONVERGENCE_WINDOW
    train_eval_images: int = TRAIN_EVAL_IMAGES  # the most; fewer (train_eval_n) where runs trained on fewer
    val_loss_epoch_tolerance: int = VAL_LOSS_EPOCH_TOLERANCE
    val_loss_rise_pct: int = round(100 * VAL_LOSS_RISE_FRACTION)

    @property
    def confidence_pct(self) -> int:
        return round(100 * self.confidence)

    @property
    def paired(self) -> list[str]:
        return [c.label for c in self.comparisons if c.pairing == PAIRED]

    @property
    def unpaired(self) -> list[str]:
        return [c.label for c in self.comparisons if c.pairing == UNPAIRED]

    @property
    def n_seeds(self) -> int:
        return max((row.n for row in self.rows), default=0)

    @property
    def single_seed(self) -> bool:
        return self.n_seeds == 1

    @property
    def still_learning(self) -> list[str]:
        return [row.label for row in self.rows if row.convergence.still_learning]

    @property
    def runs(self) -> int:
        return sum(row.n for row in self.rows)

    @property
    def common_seeds(self) -> list[int] | None:
        rows = self.rows
        return rows[0].seeds if rows and all(row.seeds == rows[0].seeds for row in rows) else None

    @property
    def loss_disagree_runs(self) -> int:
        return sum(row.checkpoint.disagree for row in self.rows)

    @property
    def loss_disagrees(self) -> bool:
        return any(row.checkpoint.disagree for row in self.rows)

    @property
    def test_sizes(self) -> list[int]:
        return sorted({row.test_set.n for row in self.rows if row.test_set})


def _row(v: VariantResults, eval_train: dict[int, dict[str, Any]], gap: Callable[[Run], float]) -> VariantRow:
    """One variant's numbers (see :func:`summary`); ``gap`` is the gap the verdicts use."""
    marks = [checkpoint(r) for r in v.runs]
    running = [100 * c.train_acc for c in marks]
    measured = [100 * eval_train[id(r)]["acc"] for r in v.runs] if eval_train else None
    acc = mean_ci([test_accuracy(r) for r in v.runs])
    return VariantRow(
        name=v.name, label=v.label, dataset=v.dataset, dataset_name=DATASET_NAMES.get(v.dataset, v.dataset),
        seeds=v.seeds, n=len(v.runs), acc=acc, test_set=binomial_interval(acc.mean, v.runs[0].metrics.get("test_size")),
        parameters=v.runs[0].metrics["parameters"],
        train_acc=mean_ci(running if measured is None else measured), train_acc_running=mean_ci(running),
        train_acc_eval=mean_ci(measured) if measured is not None else None,
        train_eval_images=min(eval_train[id(r)]["n"] for r in v.runs) if eval_train else None,
        val_acc=mean_ci([100 * c.val_acc for c in marks]),
        gap=mean_ci([gap(r) for r in v.runs]), gap_running=mean_ci([checkpoint_gap(r) for r in v.runs]),
        best_epoch=mean_ci([c.epoch for c in marks]), checkpoint=checkpoints(v.runs),
        epochs=len(v.runs[0].history["epochs"]), wall_seconds=sum(r.record["wall_seconds"] for r in v.runs),
        convergence=convergence(v.runs))


def _compare(base: VariantResults, base_row: VariantRow, v: VariantResults, row: VariantRow,
             gap: Callable[[Run], float], eval_train: bool) -> None:
    """``row``'s comparisons with the baseline, in test accuracy (``row.diff``) and in the gap (``row.gap_diff``)."""
    # a verdict about a network that was still learning may not survive longer training: it says so
    learning = [r.label for r in (base_row, row) if r.convergence.still_learning]
    diff = difference(base, v)
    if diff is not None:
        row.diff = replace(diff, verdict=learning_caveat(diff.verdict, learning))
    gap_diff = difference(base, v, value=gap, metric="the train − validation gap", words=GAP_WORDS)
    if gap_diff is not None:
        # where the change comes from: the training side or the validation side of the gap (means)
        train = (lambda r: r.train_acc_eval) if eval_train else (lambda r: r.train_acc_running)
        row.gap_diff = replace(gap_diff, verdict=learning_caveat(gap_diff.verdict, learning),
                               train_change=train(row).mean - train(base_row).mean,
                               val_change=row.val_acc.mean - base_row.val_acc.mean)


def summary(study: Study) -> Summary:
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
    base = next((v for v in study.available if v.name == baseline_name), None)
    if base is not None:
        base_row = rows[study.available.index(base)]
        for v, row in zip(study.available, rows):
            if v.name != baseline_name:
                _compare(base, base_row, v, row, gap, bool(eval_train))
    return Summary(
        rows=rows, baseline=baseline_name,
        baseline_label=next((v.label for v in study.variants if v.name == baseline_name), baseline_name),
        baseline_missing=baseline_name is not None and base is None and bool(study.variants),
        comparisons=[row.diff for row in rows if row.diff is not None],
        gap_comparisons=[row.gap_diff for row in rows if row.gap_diff is not None],
        unavailable=[Unavailable(name=v.name, label=v.label, dataset=v.dataset, reason=v.unavailable)
                     for v in study.variants if v.unavailable],
        gap_basis="eval" if eval_train else "running", gap_eval_missing=eval_missing,
        train_eval_n=min((row.train_eval_images for row in rows), default=None) if eval_train else None)
