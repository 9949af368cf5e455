"""What a run's numbers are measured on, beside the seed-to-seed statistics of :mod:`reportgen.stats`: the stored
checkpoint (which epoch's weights a run keeps, and whether validation loss agrees with that choice), the training
accuracy of that checkpoint in eval mode (the train − validation gap's training side), and the test set's own
sampling error; and whether a variant's networks had stopped improving (:func:`convergence`). Pure functions of a run's
stored files, except :func:`eval_train_accuracy`, which scores the stored weights on training images (cached under
``.cache/analysis``, never in ``results/``)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import i18n, numbers
from .markdown import signed_number
from .settings import (CONFIDENCE, CONVERGED_GAIN_POINTS, CONVERGENCE_WINDOW, VAL_LOSS_EPOCH_TOLERANCE,
                       VAL_LOSS_RISE_FRACTION)
from .store import Epoch, Run
from .study import Study

if TYPE_CHECKING:  # imported where measured: it needs torch
    from .analyses._train_eval import TrainAccuracy


@dataclass(frozen=True)
class TestSetInterval:
    """The test set's own sampling error of an accuracy (percent): Wilson's score interval on ``n`` images."""
    __test__ = False  # not a pytest class
    n: int
    correct: int
    low: float
    high: float
    half: float
    confidence: float
    method: str = "Wilson score"


@dataclass(frozen=True)
class LossAgreement:
    """Validation loss against the checkpoint that validation accuracy chose (see :func:`loss_agreement`)."""
    min_epoch: int
    min_loss: float
    loss: float
    rise: float
    disagree: bool


@dataclass(frozen=True)
class Checkpoint:
    """A run's stored checkpoint: its epoch (1-based), running training and validation accuracy (fractions)."""
    epoch: int
    train_acc: float
    val_acc: float
    loss: LossAgreement | None


@dataclass(frozen=True)
class Checkpoints:
    """A variant's checkpoints (see :func:`checkpoints`); the loss fields are None without validation loss."""
    seeds: list[int]
    epochs: list[int]
    n: int
    disagree: int
    loss_measured: bool
    min_loss_epochs: list[int] | None = None
    min_loss: float | None = None
    loss: float | None = None
    rise_pct: float | None = None


def binomial_interval(accuracy_pct: float, n: int | None, confidence: float = CONFIDENCE) -> TestSetInterval | None:
    """The test set's own sampling error: Wilson's score interval (``scipy.stats.binomtest``) of an accuracy
    measured on ``n`` test images — how far the accuracy on these images can lie from the accuracy on every image
    drawn like them. More seeds do not shrink it; only more test images do. ``accuracy_pct`` (a mean over seeds)
    is rounded to a whole number of correct images. None without a test-set size."""
    if not n or accuracy_pct != accuracy_pct:
        return None
    correct = round(accuracy_pct / 100 * n)
    from scipy import stats as scipy_stats  # seconds to import: only when an interval is computed
    ci = scipy_stats.binomtest(correct, n).proportion_ci(confidence_level=confidence, method="wilson")
    return TestSetInterval(n=int(n), correct=int(correct), low=100 * float(ci.low), high=100 * float(ci.high),
                           half=50 * float(ci.high - ci.low), confidence=confidence)


# ---- the checkpoint: which epoch's weights a run keeps, and whether validation loss agrees --------------------------
def loss_agreement(epochs: list[Epoch], checkpoint: int, tolerance: int = VAL_LOSS_EPOCH_TOLERANCE,
                   rise: float = VAL_LOSS_RISE_FRACTION) -> LossAgreement | None:
    """Whether validation loss agrees with the checkpoint that validation accuracy chose (epoch ``checkpoint``,
    1-based): the epoch of the lowest validation loss (ties: the earlier), that loss, the loss at the checkpoint and
    its relative rise above the lowest; they ``disagree`` when the lowest loss is more than ``tolerance`` epochs away
    from the checkpoint *and* the checkpoint's loss is more than ``rise`` above it (reportgen.settings says why
    both). None for a history without validation loss."""
    losses = [e.val_loss for e in epochs]
    if not losses or any(v is None for v in losses):
        return None
    lowest = min(losses)
    at = losses.index(lowest) + 1
    here = losses[checkpoint - 1]
    up = here / lowest - 1 if lowest > 0 else (math.inf if here > 0 else 0.0)
    return LossAgreement(min_epoch=at, min_loss=lowest, loss=here, rise=up,
                         disagree=abs(checkpoint - at) > tolerance and up > rise)


def checkpoint(run: Run) -> Checkpoint:
    """A run's stored checkpoint: the epoch of its highest validation accuracy (ties keep the earlier epoch, as
    training does; ``metrics.json`` records it), the running training accuracy and the validation accuracy of
    that epoch (fractions), and :func:`loss_agreement`."""
    epochs = run.history.epochs
    epoch = run.metrics.best_epoch
    row = epochs[epoch - 1]
    return Checkpoint(epoch=epoch, train_acc=row.train_acc, val_acc=row.val_acc,
                      loss=loss_agreement(epochs, epoch))


def checkpoints(runs: list[Run]) -> Checkpoints:
    """A variant's checkpoints: per seed the checkpoint epoch and the epoch of the lowest validation loss; mean over
    seeds of that lowest loss, of the loss at the checkpoint and of its rise (percent); how many runs disagree."""
    per_run = [checkpoint(r) for r in runs]
    losses = [c.loss for c in per_run if c.loss is not None]
    common = dict(seeds=[r.seed for r in runs], epochs=[c.epoch for c in per_run], n=len(runs),
                  disagree=sum(bool(x.disagree) for x in losses), loss_measured=bool(losses))
    if not losses:
        return Checkpoints(**common)
    return Checkpoints(**common, min_loss_epochs=[x.min_epoch for x in losses],
                       min_loss=float(np.mean([x.min_loss for x in losses])),
                       loss=float(np.mean([x.loss for x in losses])),
                       rise_pct=100 * float(np.mean([x.rise for x in losses])))


# ---- the train − validation gap, at the checkpoint ------------------------------------------------------------
def checkpoint_gap(run: Run, train_acc: float | None = None) -> float:
    """Training minus validation accuracy at the run's checkpoint, in points. The training side is ``train_acc``
    (a fraction: the eval-mode measurement of :func:`eval_train_accuracy`) or, without it, the running figure of
    the checkpoint's epoch — counted over that epoch's batches in training mode: dropout on, augmented images,
    weights still moving."""
    c = checkpoint(run)
    return 100 * ((c.train_acc if train_acc is None else train_acc) - c.val_acc)


def eval_train_accuracy(study: Study) -> tuple[dict[int, TrainAccuracy], str | None]:
    """The training accuracy of every run's stored checkpoint in eval mode, keyed by ``id(run)``
    (:func:`reportgen.analyses._train_eval.train_accuracy_eval`, cached), or ({}, why not) when it cannot be
    measured here: results without stored weights, or training images that are not provisioned."""
    runs = [r for v in study.available for r in v.runs]
    if not runs:
        return {}, None
    if not all(isinstance(r, Run) for r in runs):
        return {}, "these results carry no stored weights"
    from .analyses import AnalysisError
    from .analyses._train_eval import train_accuracy_eval
    try:
        return {id(r): train_accuracy_eval(r) for r in runs}, None
    except AnalysisError as exc:
        return {}, str(exc)


# ---- convergence: measured from the per-epoch validation accuracy of every run --------------------------------
# English msgids: the verdict is compared as a value and printed through gettext (`_(row.convergence.verdict)`).
CONVERGED, STILL_LEARNING, NOT_MEASURED = i18n.N_("converged"), i18n.N_("still learning"), i18n.N_("not measured")


@dataclass(frozen=True)
class RunConvergence:
    """One run: the validation-accuracy gain (points) over the last ``window`` epochs, and its best epoch."""
    gain: float
    window: int
    best_epoch: int
    best_is_last: bool


@dataclass(frozen=True)
class Convergence:
    """A variant: the mean gain over seeds, the verdict (:data:`CONVERGED`, :data:`STILL_LEARNING` or
    :data:`NOT_MEASURED`) and the gain in words (``text``); ``best_is_last`` counts the runs whose best epoch is
    the last of ``n``."""
    gain: float
    window: int
    best_is_last: int
    n: int
    still_learning: bool
    verdict: str
    text: str


def run_convergence(epochs: list[Epoch], window: int = CONVERGENCE_WINDOW) -> RunConvergence:
    """One run's diagnosis from its per-epoch history: the validation-accuracy gain (percentage points) over the
    last ``window`` epochs (fewer when the run is shorter: all epochs after the first), and whether the best
    validation epoch is the last one (ties go to the earlier epoch, as in training). One epoch has no gain."""
    val = [e.val_acc for e in epochs]
    k = min(window, len(val) - 1)
    best = val.index(max(val)) + 1
    gain = 100 * (val[-1] - val[-1 - k]) if k > 0 else float("nan")
    return RunConvergence(gain=gain, window=k, best_epoch=best, best_is_last=best == len(val))


def convergence(runs: list[Run], threshold: float = CONVERGED_GAIN_POINTS) -> Convergence:
    """Whether a variant's networks had stopped improving: per run :func:`run_convergence`, then the rule —
    "still learning" when the mean gain over seeds exceeds ``threshold``, or exceeds half of it while the best
    epoch is the last one on most seeds (more than half); "converged" otherwise; "not measured" for one-epoch
    runs. ``text`` says the gain in words ("+0.90 points over the last 3 epochs")."""
    per_run = [run_convergence(r.history.epochs) for r in runs]
    measured = [c for c in per_run if c.window > 0]
    best_last = sum(c.best_is_last for c in per_run)
    if not measured:
        return Convergence(gain=float("nan"), window=0, best_is_last=best_last, n=len(per_run), still_learning=False,
                           verdict=NOT_MEASURED, text=i18n._("one epoch: no gain to measure"))
    gain = float(np.mean([c.gain for c in measured]))
    window = min(c.window for c in measured)
    most_best_last = best_last > len(per_run) / 2
    still = gain > threshold or (most_best_last and gain > threshold / 2)
    return Convergence(gain=gain, window=window, best_is_last=best_last, n=len(per_run), still_learning=still,
                       verdict=STILL_LEARNING if still else CONVERGED, text=_gains_over([gain], window))


def _gains_over(gains: list[float], window: int) -> str:
    """"+0.90 points over the last 3 epochs", or "+1.06, +0.90 and +1.35 points over …" for several variants (the
    list in the edition's language). Two decimals: a gain is read against a threshold of a few tenths, and must
    fall on the right side."""
    span = i18n._("the last epoch") if window == 1 else i18n._("the last %(n)s epochs") % {"n": window}
    listed = i18n.and_list([signed_number(g, numbers.FINE_DECIMALS) for g in gains])
    return i18n._("%(gain)s points over %(span)s") % {"gain": listed, "span": span}


def gains_in_words(convergences: list[Convergence]) -> str:
    """The gains of several variants in one phrase (:func:`_gains_over`) when they were measured over the same
    epochs; each variant's own ``text``, joined, when not."""
    if len({c.window for c in convergences}) == 1:
        return _gains_over([c.gain for c in convergences], convergences[0].window)
    return "; ".join(c.text for c in convergences)
