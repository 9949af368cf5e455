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
from typing import TYPE_CHECKING

from ..settings import TRAIN_EVAL_IMAGES, VAL_SIZE
from ..store import Run
from ..study import Study
from . import AnalysisError
from ._cache import cache_file, read_arrays

if TYPE_CHECKING:  # torch is imported only to compute: a cached result needs none
    import numpy as np
    import torch

ANALYSIS = "train_eval"
_TRAIN_LABELS = "train-labels-idx1-ubyte"  # its size, less its 8-byte header, is the number of training images


def train_eval_images(run: Run, limit: int = TRAIN_EVAL_IMAGES) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``limit`` training images (uint8 [N, 28, 28]) and labels of the training split the run trained on:
    after the validation hold-out, truncated to the run's ``train_limit``; checked against the run's dataset
    checksum."""
    from ._common import dataset_splits
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
    """The run's stored checkpoint in eval mode on :func:`train_eval_images` (cached on disk; a cached result is
    read without loading the images, see :func:`_cached`)."""
    cached = _cached(run, limit)
    if cached is not None:
        return cached
    import numpy as np

    from ._common import analysis_device, cached_arrays, forward_logits, load_model, normalization
    images, labels = train_eval_images(run, limit)
    device = analysis_device(run)

    def compute() -> dict[str, np.ndarray]:
        model = load_model(run, device).eval()  # eval mode: dropout off, batch norm on its running statistics
        logits = forward_logits(model, images, normalization(run))
        return {"correct": np.array(int((logits.argmax(1).cpu() == labels).sum())), "n": np.array(len(labels))}

    return _accuracy(cached_arrays(run, ANALYSIS, {"n": len(labels), "device": device.type}, compute))


def _accuracy(arrays: dict[str, np.ndarray]) -> TrainAccuracy:
    n, correct = int(arrays["n"]), int(arrays["correct"])
    return TrainAccuracy(acc=correct / n if n else float("nan"), n=n, correct=correct)


def _cached(run: Run, limit: int) -> TrainAccuracy | None:
    """The cached result of :func:`train_accuracy_eval`, found from the dataset's manifest alone (the number of
    training images, and the checksum the run must have trained on), or None: then the images are loaded, checked
    and, when the cache lacks it, the accuracy computed. A run trained on CUDA takes that path too (whether CUDA is
    here decides the device, and asking needs torch)."""
    from ..data import read_manifest
    manifest = read_manifest(run.config["dataset"])
    recorded = run.record.dataset_sha256
    if manifest is None or run.record.device.startswith("cuda") or (recorded and recorded != manifest.get("checksum")):
        return None
    try:
        in_split = int(manifest["files"][_TRAIN_LABELS]["size"]) - 8 - VAL_SIZE
    except (KeyError, TypeError, ValueError):
        return None
    n = min(limit, run.config.get("train_limit") or in_split)
    arrays = read_arrays(cache_file(run, ANALYSIS, {"n": n, "device": "cpu"}))
    return None if arrays is None else _accuracy(arrays)


def precompute_train_accuracy(study: Study) -> None:
    """Fill the cache with the eval-mode training accuracy of every run of the study (every seed: the gap's
    interval is over seeds)."""
    for v in study.available:
        for run in v.runs:
            train_accuracy_eval(run)
