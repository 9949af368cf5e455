"""Training accuracy of a run's stored checkpoint in eval mode: the training side of the train − validation gap.

The accuracy that training records for each epoch is a running figure: counted over that epoch's batches in training
mode — dropout active, augmented images where the study augments — while the weights kept changing. The validation
accuracy beside it is measured afterwards, in eval mode, on fixed weights. A gap between two numbers measured so
differently is partly the measurement itself, so the gap's training side is measured here the way the validation
side is: the stored (best-validation) weights, in eval mode, on the first TRAIN_EVAL_IMAGES of the training images
the run trained on (its ``train_limit`` respected), unaugmented, with the run's own normalisation and training's
evaluation batches. Computed after training by ``reportgen run`` (:func:`precompute_train_accuracy`) and cached
under ``.cache/analysis/<run cache key>/``; a render that finds no cache computes it (about a second per LeNet run
on one CPU core). Nothing here retrains or touches a run's cache key.
"""
from __future__ import annotations

from dataclasses import dataclass


import numpy as np
import torch

from ..settings import TRAIN_EVAL_IMAGES
from ..store import Run
from ..study import Study
from ._common import (AnalysisError, analysis_device, cached_arrays, dataset_splits, forward_logits, load_model,
                      normalization)


def train_eval_images(run: Run, limit: int = TRAIN_EVAL_IMAGES) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``limit`` training images (uint8 [N, 28, 28]) and labels of the training split the run trained on:
    after the validation hold-out, truncated to the run's ``train_limit``; checked against the run's dataset
    checksum."""
    splits = dataset_splits(run.config["dataset"])
    recorded = run.record.dataset_sha256
    if recorded and recorded != splits.checksum:
        raise AnalysisError(f"{run.path}: trained on other {run.config['dataset']} files (sha256 {recorded[:12]}..., "
                            f"now {splits.checksum[:12]}...); rerun `reportgen run --force` for this study")
    trained_on = run.config.get("train_limit") or len(splits.train_labels)
    n = min(limit, trained_on)
    return splits.train_images[:n], splits.train_labels[:n]


@dataclass(frozen=True)
class TrainAccuracy:
    """The training accuracy of a run's stored checkpoint in eval mode: ``correct`` of ``n`` images (``acc``, a
    fraction)."""
    acc: float
    n: int
    correct: int


def train_accuracy_eval(run: Run, limit: int = TRAIN_EVAL_IMAGES) -> TrainAccuracy:
    """The run's stored checkpoint in eval mode on :func:`train_eval_images` (cached on disk)."""
    images, labels = train_eval_images(run, limit)
    device = analysis_device(run)

    def compute() -> dict[str, np.ndarray]:
        model = load_model(run, device).eval()  # eval mode: dropout off, batch norm on its running statistics
        logits = forward_logits(model, images, normalization(run))
        return {"correct": np.array(int((logits.argmax(1).cpu() == labels).sum())), "n": np.array(len(labels))}

    arrays = cached_arrays(run, "train_eval", {"n": len(labels), "device": device.type}, compute)
    n, correct = int(arrays["n"]), int(arrays["correct"])
    return TrainAccuracy(acc=correct / n if n else float("nan"), n=n, correct=correct)


def precompute_train_accuracy(study: Study) -> None:
    """Fill the cache with the eval-mode training accuracy of every run of the study (every seed: the gap's
    interval is over seeds)."""
    for v in study.available:
        for run in v.runs:
            train_accuracy_eval(run)
