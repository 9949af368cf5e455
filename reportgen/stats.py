"""Every number a post states about "which variant is better", and the sentence that says it: templates print
``verdict`` strings, they never phrase a conclusion themselves.

Two variants are compared seed against seed (:func:`paired_difference`) only when pairing means something — when
their runs share everything seed-dependent on the data side (:func:`pairing`); otherwise the interval is Welch's,
unpaired (:func:`unpaired_difference`). :func:`difference` decides, and every verdict says which it used."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from . import i18n, numbers
from .i18n import N_
from .settings import CONFIDENCE
from .store import Run
from .study import VariantResults

# (verb if the difference is positive, verb if negative, adjective if positive, adjective if negative)
# (English msgids: the verdict translates them for the edition being rendered)
ACCURACY_WORDS = (N_("improves"), N_("lowers"), N_("higher"), N_("lower"))
ACROSS_DATASETS_WORDS = (N_("scores higher in"), N_("scores lower in"), N_("higher"), N_("lower"))
GAP_WORDS = (N_("widens"), N_("narrows"), N_("wider"), N_("narrower"))
TEST_ACCURACY = N_("test accuracy")
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
        return cls(**vars(ci), pairing=PAIRED, basis=i18n._("paired over %(n)s seeds") % {"n": ci.n},
                   seeds_text=i18n._("%(n)s seeds") % {"n": ci.n})


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
    # The t quantile is scipy.stats.t.ppf(0.5 + confidence / 2, df=n - 1), bit for bit: t.ppf calls this special
    # function; scipy.special imports in a fraction of the time scipy.stats takes (a warm home page needs no more).
    from scipy.special import stdtrit
    half = float(stdtrit(n - 1, 0.5 + confidence / 2) * std / math.sqrt(n))
    return Interval(n=n, mean=mean, std=std, low=mean - half, high=mean + half, half=half, confidence=confidence)


def test_accuracy(run: Run) -> float:
    """Test accuracy of a run's best-validation checkpoint, in percent."""
    return 100 * run.metrics.test_acc


def learning_caveat(sentence: str, labels: list[str]) -> str:
    """``sentence`` (a verdict) with the caveat that the named variants were still learning."""
    if not labels:
        return sentence
    who = i18n._(" and ").join(labels)
    return i18n.ngettext("%(sentence)s; %(who)s was still learning, so longer training may change this.",
                         "%(sentence)s; %(who)s were still learning, so longer training may change this.",
                         len(labels)) % {"sentence": sentence.rstrip("."), "who": who}


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
               value: Callable[[Run], float] = test_accuracy, metric: str = TEST_ACCURACY,
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
                      value: Callable[[Run], float] = test_accuracy, metric: str = TEST_ACCURACY,
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
                        value: Callable[[Run], float] = test_accuracy, metric: str = TEST_ACCURACY,
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
                            basis=i18n._("unpaired, %(a)s and %(b)s seeds") % {"a": x.size, "b": y.size},
                            seeds_text=i18n._("%(a)s and %(b)s seeds") % {"a": x.size, "b": y.size})
    if ci.n >= 2:
        se = _spread(math.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size), ci.mean)
        if se > 0:
            from scipy import stats as scipy_stats
            interval = scipy_stats.ttest_ind(x, y, equal_var=False).confidence_interval(confidence_level=confidence)
            low, high = float(interval.low), float(interval.high)
        else:  # every seed of each side gave the same value: a zero-width interval (scipy would warn and give NaN)
            low = high = ci.mean
        ci = replace(ci, se=se, low=low, high=high, half=(high - low) / 2)
    return _comparison(a, b, ci, metric, words, seeds=sorted(set(a.seeds) | set(b.seeds)), per_seed={})


def _pts(x: float, sign: bool = False, digits: int | None = None) -> str:
    """A number of percentage points for prose: the decimals its interval supports (:mod:`reportgen.numbers`),
    a real minus sign, '+' only when asked."""
    return numbers.fixed(x, digits, signed=sign)


def verdict(subject: str, reference: str, ci: DifferenceInterval, metric: str = TEST_ACCURACY, *,
            words: tuple[str, str, str, str] = ACCURACY_WORDS, across_datasets: bool = False) -> str:
    """The sentence a post prints for a difference ``subject − reference`` in percentage points.

    The conclusion follows from the confidence interval alone: entirely above zero and entirely below zero are
    a clear difference (worded with ``words``), an interval that contains zero is "no clear difference at this
    number of seeds", and a single seed gives no interval and therefore no verdict. The sentence names the
    interval's ``basis`` (paired over n seeds, or unpaired). Across datasets the test sets differ, so the sentence
    says so."""
    n, mean = ci.n, ci.mean
    digits = numbers.decimals(numbers.half_width(ci))  # every number of the sentence: the interval's decimals

    def pts(x: float, sign: bool = False) -> str:
        return _pts(x, sign, digits)

    def end(x: float, sign: bool = False) -> str:  # an interval's bound: not "0.0" when it is not zero
        return numbers.bound(x, digits, sign)

    level = i18n._("%(pct)s%% CI") % {"pct": round(100 * ci.confidence)}
    up, down, _higher, lower = (i18n._(w) for w in words)
    metric = i18n._(metric)
    paired = ci.pairing == PAIRED
    say = {"subject": subject, "reference": reference, "metric": metric, "seeds": ci.basis, "at": ci.seeds_text,
           "level": level, "lower": lower}
    if n == 0 or mean != mean:
        return i18n._("%(subject)s and %(reference)s have no seed in common, so there is nothing to compare.") % say
    if n == 1:
        single = paired or ci.n_variant == ci.n_baseline == 1
        return (i18n._("On a single seed, %(subject)s differs from %(reference)s by %(diff)s percentage points of "
                       "%(metric)s. One seed has no spread to estimate, so there is no confidence interval and no "
                       "verdict: a difference this size can come from the seed alone. More seeds can tell.") if single
                else i18n._("On %(at)s, %(subject)s differs from %(reference)s by %(diff)s percentage points of "
                            "%(metric)s. One seed has no spread to estimate, so there is no confidence interval and no "
                            "verdict: a difference this size can come from the seed alone. More seeds can tell.")
                ) % {**say, "diff": pts(mean, sign=True)}
    say["note"] = (i18n._("; the test sets differ, so this measures how hard each dataset is for the same network")
                   if across_datasets else "")
    if not ci.high > ci.low:  # every seed gave exactly the same value(s): a zero-width interval
        if mean == 0:
            every = (i18n._("on all %(n)s seeds") if paired else i18n._("on every seed (%(seeds)s)")) % {
                "n": n, "seeds": ci.basis}
            return i18n._("%(Metric)s is exactly the same for %(subject)s and %(reference)s %(every)s.") % {
                **say, "Metric": metric[0].upper() + metric[1:], "every": every}
        every = (i18n._("on every one of the %(n)s seeds") if paired else i18n._("on every seed (%(seeds)s)")) % {
            "n": n, "seeds": ci.basis}
        return i18n._("%(subject)s %(verb)s %(metric)s by exactly %(diff)s percentage points compared with "
                      "%(reference)s %(every)s (no seed-to-seed spread, so the interval has zero width)%(note)s.") % {
            **say, "verb": up if mean > 0 else down, "diff": pts(abs(mean)), "every": every}
    if ci.low > 0:
        return i18n._("%(subject)s %(verb)s %(metric)s by %(diff)s percentage points compared with %(reference)s "
                      "(%(level)s %(low)s to %(high)s, %(seeds)s)%(note)s.") % {
            **say, "verb": up, "diff": pts(mean), "low": end(ci.low), "high": end(ci.high)}
    if ci.high < 0:
        return i18n._("%(subject)s %(verb)s %(metric)s by %(diff)s percentage points compared with %(reference)s "
                      "(%(level)s %(low)s to %(high)s points %(lower)s, %(seeds)s)%(note)s.") % {
            **say, "verb": down, "diff": pts(-mean), "low": end(-ci.high), "high": end(-ci.low)}
    return i18n._("No clear difference in %(metric)s between %(subject)s and %(reference)s at %(at)s: the mean "
                  "difference is %(diff)s percentage points, but its %(level)s (%(low)s to %(high)s, %(seeds)s) "
                  "includes zero.") % {**say, "diff": pts(mean, sign=True), "low": end(ci.low, sign=True),
                                       "high": end(ci.high, sign=True)}
