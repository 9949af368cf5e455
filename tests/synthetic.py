"""Synthetic, learnable stand-ins for the MNIST-family IDX files, so tests never need the real data.

Each class is a textured square patch (class-specific stripe orientation and period) at a class-specific position,
jittered by a few pixels, on a noisy background. Both cues are easy: a small CNN, even one ending in global
average pooling, is far above chance after one epoch on a few hundred images.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
PATCH = 8


def write_idx_file(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array (1-D labels or 3-D images) as an IDX file; gzip it if ``path`` ends in ``.gz``."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def _texture(c: int) -> np.ndarray:
    """Class ``c``'s PATCH x PATCH pattern in {0, 1}: 5 stripe orientations (incl. checkerboard) x 2 periods."""
    y, x = np.mgrid[0:PATCH, 0:PATCH]
    p = 2 if (c // 5) % 2 == 0 else 4
    bands = (y // p, x // p, (x + y) // p, (x - y + PATCH) // p, x // p + y // p)[c % 5]
    return (bands % 2).astype(np.float32)


def make_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(labels)
    imgs = rng.uniform(0, 40, size=(n, 28, 28)).astype(np.float32)
    for i, c in enumerate(labels):
        c = int(c)
        r0 = 1 + (c % 4) * 6 + int(rng.integers(-1, 2))
        c0 = 1 + ((c // 4) % 4) * 6 + int(rng.integers(-1, 2))
        r0, c0 = min(max(r0, 0), 28 - PATCH), min(max(c0, 0), 28 - PATCH)
        imgs[i, r0:r0 + PATCH, c0:c0 + PATCH] += 60 + 170 * _texture(c) * rng.uniform(0.8, 1.0)
    return np.clip(imgs + rng.normal(0, 8, size=imgs.shape), 0, 255).astype(np.uint8)


def make_split(n: int, seed: int, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [n,28,28], labels uint8 [n]) with balanced, shuffled labels."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.uint8)
    return make_images(labels, rng), labels


def write_idx_dataset(directory: Path, n_train: int = 600, n_test: int = 200, gz: bool = False, seed: int = 0,
                      num_classes: int = 10) -> None:
    """Write the four IDX files (``*.gz`` if ``gz``) of a learnable synthetic dataset into ``directory``."""
    directory = Path(directory)
    suffix = ".gz" if gz else ""
    for prefix, n, s in (("train", n_train, seed), ("t10k", n_test, seed + 10_000)):
        images, labels = make_split(n, s, num_classes)
        write_idx_file(directory / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx_file(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels)


def stored(epochs: list[dict], wall_seconds: float = 1.0, **metrics):
    """(history, metrics, record) of a hand-made run, typed as reportgen.store.Run reads them from its files, holding
    only the fields given (what the statistics read)."""
    from reportgen.store import Epoch, RunHistory, RunMetrics, RunRecord
    history = RunHistory.model_construct(epochs=[Epoch.model_construct(**e) for e in epochs],
                                         best_epoch=metrics.get("best_epoch", 1))
    return history, RunMetrics.model_construct(**metrics), RunRecord.model_construct(wall_seconds=wall_seconds)
