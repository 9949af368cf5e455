"""What a run's numbers are measured on, beside the seed-to-seed statistics of :mod:`reportgen.stats`: the stored
checkpoint (which epoch's weights a run keeps, and whether validation loss agrees with that choice), the training
accuracy of that checkpoint in eval mode (the train − validation gap's training side), and the test set's own
sampling error. Pure functions of a run's stored files, except :func:`eval_train_accuracy`, which scores the stored
weights on training images (cached under ``.cache/analysis``, never in ``results/``)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from .settings import CONFIDENCE, VAL_LOSS_EPOCH_TOLERANCE, VAL_LOSS_RISE_FRACTION
from .store import Run
from .study import Study


def binomial_interval(accuracy_pct: float, n: int | None, confidence: float = CONFIDENCE) -> dict[str, Any] | None:
    """The test set's own sampling error: Wilson's score interval (``scipy.stats.binomtest``) of an accuracy
    measured on ``n`` test images — how far the accuracy on these images can lie from the accuracy on every image
    drawn like them. More seeds do not shrink it; only more test images do. ``accuracy_pct`` (a mean over seeds)
    is rounded to a whole number of correct images. None without a test-set size."""
    if not n or accuracy_pct != accuracy_pct:
        return None
    correct = round(accuracy_pct / 100 * n)
    ci = scipy_stats.binomtest(correct, n).proportion_ci(confidence_level=confidence, method="wilson")
    return {"n": int(n), "correct": int(correct), "low": 100 * float(ci.low), "high": 100 * float(ci.high),
            "half": 50 * float(ci.high - ci.low), "confidence": confidence, "method": "Wilson score"}


# ---- the checkpoint: which epoch's weights a run keeps, and whether validation loss agrees --------------------------
def loss_agreement(epochs: list[dict[str, float]], checkpoint: int, tolerance: int = VAL_LOSS_EPOCH_TOLERANCE,
                   rise: float = VAL_LOSS_RISE_FRACTION) -> dict[str, Any] | None:
    """Whether validation loss agrees with the checkpoint that validation accuracy chose (epoch ``checkpoint``,
    1-based): the epoch of the lowest validation loss (ties: the earlier), that loss, the loss at the checkpoint and
    its relative rise above the lowest; they ``disagree`` when the lowest loss is more than ``tolerance`` epochs away
    from the checkpoint *and* the checkpoint's loss is more than ``rise`` above it (reportgen.settings says why
    both). None for a history without validation loss."""
    losses = [e.get("val_loss") for e in epochs]
    if not losses or any(v is None for v in losses):
        return None
    lowest = min(losses)
    at = losses.index(lowest) + 1
    here = losses[checkpoint - 1]
    up = here / lowest - 1 if lowest > 0 else (math.inf if here > 0 else 0.0)
    return {"min_epoch": at, "min_loss": lowest, "loss": here, "rise": up,
            "disagree": abs(checkpoint - at) > tolerance and up > rise}


def checkpoint(run: Run) -> dict[str, Any]:
    """A run's stored checkpoint: the epoch of its highest validation accuracy (ties keep the earlier epoch, as
    training does; ``metrics.json`` records it), the running training accuracy and the validation accuracy of
    that epoch (fractions), and :func:`loss_agreement`."""
    epochs = run.history["epochs"]
    epoch = int(run.metrics["best_epoch"])
    row = epochs[epoch - 1]
    return {"epoch": epoch, "train_acc": row["train_acc"], "val_acc": row["val_acc"],
            "loss": loss_agreement(epochs, epoch)}


def checkpoints(runs: list[Run]) -> dict[str, Any]:
    """A variant's checkpoints: per seed the checkpoint epoch and the epoch of the lowest validation loss; mean over
    seeds of that lowest loss, of the loss at the checkpoint and of its rise (percent); how many runs disagree."""
    per_run = [checkpoint(r) for r in runs]
    losses = [c["loss"] for c in per_run if c["loss"] is not None]
    out: dict[str, Any] = {"seeds": [r.seed for r in runs], "epochs": [c["epoch"] for c in per_run], "n": len(runs),
                           "disagree": sum(bool(x["disagree"]) for x in losses), "loss_measured": bool(losses)}
    if losses:
        out.update(min_loss_epochs=[x["min_epoch"] for x in losses],
                   min_loss=float(np.mean([x["min_loss"] for x in losses])),
                   loss=float(np.mean([x["loss"] for x in losses])),
                   rise_pct=100 * float(np.mean([x["rise"] for x in losses])))
    return out


# ---- the train − validation gap, at the checkpoint ------------------------------------------------------------
def checkpoint_gap(run: Run, train_acc: float | None = None) -> float:
    """Training minus validation accuracy at the run's checkpoint, in points. The training side is ``train_acc``
    (a fraction: the eval-mode measurement of :func:`eval_train_accuracy`) or, without it, the running figure of
    the checkpoint's epoch — counted over that epoch's batches in training mode: dropout on, augmented images,
    weights still moving."""
    c = checkpoint(run)
    return 100 * ((c["train_acc"] if train_acc is None else train_acc) - c["val_acc"])


def eval_train_accuracy(study: Study) -> tuple[dict[int, dict[str, Any]], str | None]:
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
