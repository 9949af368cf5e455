"""The shift grid shared by ``shift_grid`` and ``shift_curve``: test accuracy of a run's model for every shift
(dx, dy) of its test images, zero-filled and wrapped around, cached on disk.

It is by far the most expensive number of a report: 169 shifts × 2 modes × the whole test set is 3.4 million
forward passes per model (minutes for LeNet on a laptop CPU, seconds on a GPU; runs trained on CUDA are analysed on
CUDA when it is available). On a CPU the profile's ``shift_images`` (2,000 in ``quick``) limits it to the first N
test images, and ``$REPORTGEN_SHIFT_IMAGES=N`` does so everywhere.
"""
from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..loader import Normalization
from ..settings import ENV_SHIFT_IMAGES, EVAL_BATCH, SHIFT_RADIUS
from ..store import Run
from ..study import Study
from ._common import (AnalysisError, analysis_device, cached_arrays, first_run, forward_logits, load_model, log,
                      normalization, run_test_set)
from ._shift_findings import DISTANCES, SeedKept, distance_bins


def shift_images(images: torch.Tensor, dx: int, dy: int, mode: str = "zero") -> torch.Tensor:
    """Move the content of [..., H, W] images ``dx`` pixels right and ``dy`` down. ``zero``: pixels pushed out are
    lost and black (0) comes in; ``wrap``: what leaves one side comes back in on the other (``torch.roll``)."""
    if mode == "wrap":
        return torch.roll(images, shifts=(dy, dx), dims=(-2, -1))
    if mode != "zero":
        raise ValueError(f"mode must be 'zero' or 'wrap', got {mode!r}")
    h, w = images.shape[-2:]
    r = max(abs(dx), abs(dy))
    canvas = F.pad(images, (r, r, r, r)) if r else images
    return canvas[..., r - dy:r - dy + h, r - dx:r - dx + w]


def shift_accuracy_grid(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, norm: Normalization,
                        radius: int = SHIFT_RADIUS, batch: int = EVAL_BATCH) -> dict[str, np.ndarray]:
    """Correct predictions for every shift (dx, dy) in -radius..radius, zero-filled and wrapped around, over all
    ``images``: ``zero`` and ``wrap`` are int arrays [dy + radius, dx + radius] of correct counts.

    One pad (or roll) of the whole set per shift, then batches of ``batch``. The unshifted images go through the
    model exactly as training's evaluation did (same layout, same batches), so that cell reproduces the run's
    test accuracy bit for bit; every shifted cell uses a channels-last copy of the model, the same arithmetic in
    another memory layout, about 1.5 times faster on a CPU. A wrapped image whose border strip that wraps around
    is all black is identical to its zero-filled twin, so it is not evaluated twice."""
    size = 2 * radius + 1
    zero = np.zeros((size, size), dtype=np.int64)
    wrap = np.zeros((size, size), dtype=np.int64)
    device = next(model.parameters()).device
    images, labels = images.to(device), labels.to(device)
    h, w = images.shape[-2:]
    canvas = F.pad(images, (radius, radius, radius, radius))
    model.eval()
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last).eval()
    with torch.inference_mode():
        for iy, dy in enumerate(range(-radius, radius + 1)):
            for ix, dx in enumerate(range(-radius, radius + 1)):
                shifted = canvas[:, radius - dy:radius - dy + h, radius - dx:radius - dx + w].contiguous()
                if dx == 0 and dy == 0:
                    ok = forward_logits(model, shifted, norm, batch).argmax(1) == labels
                else:
                    ok = forward_logits(fast, shifted, norm, batch, channels_last=True).argmax(1) == labels
                zero[iy, ix] = int(ok.sum())
                rolled = torch.roll(images, shifts=(dy, dx), dims=(-2, -1))
                differs = (rolled != shifted).flatten(1).any(1)
                same_ok = int(ok[~differs].sum())
                if bool(differs.any()):
                    idx = differs.nonzero().squeeze(1)
                    logits = forward_logits(fast, rolled[idx], norm, batch, channels_last=True)
                    wrap_ok = int((logits.argmax(1) == labels[idx]).sum())
                else:
                    wrap_ok = 0
                wrap[iy, ix] = same_ok + wrap_ok
    return {"zero": zero, "wrap": wrap, "n": np.array(len(labels))}


def shift_images_limit(study: Study | None = None, device: torch.device | None = None) -> int | None:
    """How many test images (the first N) the shift grid uses; None = the whole test set.
    ``$REPORTGEN_SHIFT_IMAGES`` decides when set; otherwise the profile's ``shift_images``, which applies on a CPU
    (or MPS) only: on CUDA the whole test set takes seconds."""
    value = os.environ.get(ENV_SHIFT_IMAGES, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise AnalysisError(f"{ENV_SHIFT_IMAGES}={value!r}: expected a positive number of test images")
        return int(value)
    if study is None or (device is not None and device.type == "cuda"):
        return None
    return study.config.profile(study.profile).shift_images


@dataclass(frozen=True)
class ShiftGrid:
    """A run's shift grid (:func:`shift_grid_of`): the accuracy (a fraction) at every shift (dx, dy) within the
    radius, zero-filled and wrapped around, on ``n`` of the ``full`` test images."""
    zero: np.ndarray             # [2r + 1, 2r + 1], indexed [dy + r, dx + r]
    wrap: np.ndarray
    n: int
    full: int
    center: float                # the unshifted cell
    center_delta_images: int     # the unshifted cell's correct images less the run's own evaluation's
    seconds: float               # what computing it took (before it was cached)
    device: str


def shift_grid_of(run: Run, radius: int = SHIFT_RADIUS, study: Study | None = None) -> ShiftGrid:
    """The run's shift grid (cached on disk), checked: the unshifted cell must reproduce the run's test accuracy
    (metrics.json) exactly; on another kind of device than the run was evaluated on, or on a subset (see
    :func:`shift_images_limit`), within one image per thousand of what its stored predictions give."""
    images, labels = run_test_set(run)
    full = len(labels)
    device = analysis_device(run)
    limit = shift_images_limit(study, device)
    if limit is not None and limit < full:
        images, labels = images[:limit], labels[:limit]

    def compute() -> dict[str, np.ndarray]:
        started = time.perf_counter()
        log(f"analysis: shift grid of {run.path} ({(2 * radius + 1) ** 2} shifts × 2 modes × {len(labels):,} test "
            f"images on {device.type}; cached afterwards)")
        arrays = shift_accuracy_grid(load_model(run, device), images, labels, normalization(run), radius)
        arrays["seconds"] = np.array(time.perf_counter() - started)
        return arrays

    arrays = cached_arrays(run, "shift_grid", {"radius": radius, "n": len(labels), "device": device.type}, compute)
    n = int(arrays["n"])
    zero, wrap = arrays["zero"] / n, arrays["wrap"] / n
    center = int(arrays["zero"][radius, radius])
    if n == full:
        expected_correct, exact = round(run.metrics.test_acc * n), center / n == run.metrics.test_acc
    else:
        stored_labels, probs = run.predictions()
        expected_correct = int((probs[:n].argmax(1) == stored_labels[:n]).sum())
        exact = center == expected_correct
    delta = center - expected_correct
    same_device = (run.record.device or "cpu").split()[0] == device.type and n == full
    if not exact and (same_device or abs(delta) > max(1, n // 1000)):
        raise AnalysisError(f"{run.path}: the unshifted cell of the shift grid gives accuracy {center / n:.4f} "
                            f"({center} of {n}) but the run's own evaluation gives {expected_correct} of {n}; the "
                            "analysis preprocessing differs from training's")
    return ShiftGrid(zero=zero, wrap=wrap, n=n, full=full, center=center / n, center_delta_images=int(delta),
                     seconds=float(arrays["seconds"]), device=device.type)


def distance_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, norm: Normalization,
                      distances: list[int], radius: int = SHIFT_RADIUS) -> dict[str, np.ndarray]:
    """Correct predictions, zero-filled, summed over the shifts (dx, dy) whose distance √(dx² + dy²) rounds to each
    of ``distances`` (0: unshifted), with how many shifts that is: the shift grid's cells at those distances,
    computed alone (``correct`` and ``shifts`` follow ``distances``; ``n`` is the number of images)."""
    bins = distance_bins(radius)
    device = next(model.parameters()).device
    x, y = images.to(device), labels.to(device)
    model.eval()
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last).eval()
    correct = np.zeros(len(distances), dtype=np.int64)
    shifts = np.zeros(len(distances), dtype=np.int64)
    with torch.inference_mode():
        for k, d in enumerate(distances):
            for iy, ix in zip(*np.nonzero(bins == d)):
                moved = shift_images(x, int(ix) - radius, int(iy) - radius).contiguous()
                net, last = (model, False) if d == 0 else (fast, True)
                correct[k] += int((forward_logits(net, moved, norm, channels_last=last).argmax(1) == y).sum())
                shifts[k] += 1
    return {"correct": correct, "shifts": shifts, "n": np.array(len(labels))}


def distance_accuracy_of(run: Run, distances: tuple[int, ...], radius: int = SHIFT_RADIUS,
                         study: Study | None = None) -> dict[int, float]:
    """The run's test accuracy (%) unshifted (distance 0) and, zero-filled, averaged over the shifts at each of
    ``distances`` (:func:`distance_accuracy`): what the shift grid gives there, for any seed at a quarter of the
    grid's cost, cached on disk, on the same test images as the grid (see :func:`shift_images_limit`)."""
    images, labels = run_test_set(run)
    device = analysis_device(run)
    limit = shift_images_limit(study, device)
    if limit is not None and limit < len(labels):
        images, labels = images[:limit], labels[:limit]
    wanted = sorted({0, *distances})
    arrays = cached_arrays(run, "shift_distances", {"radius": radius, "distances": wanted, "n": len(labels),
                                                    "device": device.type},
                           lambda: distance_accuracy(load_model(run, device), images, labels, normalization(run),
                                                     wanted, radius))
    n = int(arrays["n"])
    return {d: 100.0 * float(c) / (n * int(k)) for d, c, k in zip(wanted, arrays["correct"], arrays["shifts"])}


def precompute_shift_grids(study: Study) -> None:
    """Fill the cache with every variant's shift grid (first seed) and every seed's accuracy at the distances the
    closing section reports, drawing nothing (shift_grid and shift_curve share both, so their precompute is this
    one function)."""
    for v in study.available:
        shift_grid_of(first_run(v), study=study)
        for run in v.runs:
            distance_accuracy_of(run, DISTANCES, study=study)


def seed_kept(study: Study, distances: tuple[int, ...] = DISTANCES) -> list[SeedKept]:
    """Every seed's accuracy at each distance, per variant of ``study`` (cached; see :func:`distance_accuracy_of`)."""
    return [SeedKept(label=v.label, by_seed={r.seed: distance_accuracy_of(r, distances, study=study)
                                             for r in v.runs}, name=v.name)
            for v in study.available]
