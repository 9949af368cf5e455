"""What the shift analyses (``shift_grid``, ``shift_curve``) contribute to a post's closing section: how much of
its unshifted test accuracy each variant keeps when the test images move 1, 2 and 4 pixels, zero-filled and
wrapped around, and which variant keeps the most at each distance.

Both analyses read the same cached grids, and both hand the same numbers here (accuracy averaged over the shifts at
one rounded distance √(dx² + dy²), as the shift curve plots it), so a post that declares both states each finding
once: the closing section drops identical sentences.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Shift distances (pixels) the closing section reports: one pixel (with the diagonal ±1, ±1) is less than a 2×2
# pooling window, two is a whole window, four is two windows of the first pooling layer (one of the second).
DISTANCES = (1, 2, 4)


@dataclass(frozen=True)
class Kept:
    """One variant's accuracy (%) unshifted and at each reported distance (zero-filled, wrapped around)."""
    label: str
    unshifted: float
    zero: dict[int, float]
    wrap: dict[int, float]


def distance_bins(radius: int) -> np.ndarray:
    """[dy + radius, dx + radius] -> the shift's distance √(dx² + dy²) rounded to whole pixels."""
    axis = np.arange(-radius, radius + 1) ** 2
    return np.rint(np.sqrt(np.add.outer(axis, axis))).astype(int)


def by_distance(grid: np.ndarray, radius: int) -> dict[int, float]:
    """Mean of a shift grid's cells at each rounded distance 0..radius."""
    bins = distance_bins(radius)
    return {d: float(grid[bins == d].mean()) for d in range(radius + 1)}


def _share(part: float, whole: float) -> float:
    # rounded far below the printed digit, so the grid and the curve (the same counts, summed in another order)
    # print the same sentence
    return round(100 * part / whole, 9)


def _acc(value: float) -> float:
    return round(value, 9)  # as _share: the same sentence from the grid and from the curve


def findings(variants: list[Kept], basis: str, test_images: list[int], full_test_size: int) -> list[str]:
    """The sentences: per variant its accuracy at each of :data:`DISTANCES`, zero-filled with the share of its
    unshifted accuracy that is, and wrapped around; then, at the largest distance, the variants from the highest
    accuracy to the lowest (a share alone flatters a variant that starts lower, since accuracy cannot fall much
    below chance); then what they rest on."""
    rows = [v for v in variants if v.unshifted > 0]
    out = []
    for v in rows:
        steps = [d for d in DISTANCES if d in v.zero]
        if not steps:
            continue
        parts = [f"{d} pixel{'s' if d != 1 else ''}: {_acc(v.zero[d]):.2f}% zero-filled "
                 f"({_share(v.zero[d], v.unshifted):.1f}% of it kept), {_acc(v.wrap[d]):.2f}% wrapped around"
                 for d in steps]
        out.append(f"{v.label}, {_acc(v.unshifted):.2f}% unshifted, when the test images move by "
                   + "; ".join(parts) + ".")
    far = max((d for d in DISTANCES if all(d in v.zero for v in rows)), default=None)
    if len(rows) > 1 and far is not None:
        ranked = sorted(rows, key=lambda v: -v.zero[far])
        out.append(f"Moved by {far} pixel{'s' if far != 1 else ''} (zero-filled), from the highest accuracy to the "
                   f"lowest: " + "; ".join(f"{v.label} {_acc(v.zero[far]):.2f}%" for v in ranked) + ".")
    if out:
        images = " / ".join(f"{n:,}" for n in test_images)
        where = (f"all {full_test_size:,} test images" if test_images == [full_test_size]
                 else f"the first {images} of the {full_test_size:,} test images")
        out.append(f"A distance is √(dx² + dy²) rounded to whole pixels, its accuracy the mean over the shifts at "
                   f"that distance; each variant is one network ({basis}) on {where}, so these shares have no "
                   f"interval over seeds.")
    return out
