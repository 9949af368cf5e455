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

# Shift distances (pixels) the closing section reports: one pixel is within a 2×2 pooling window, two is a whole
# window, four is two windows of the first pooling layer (one of the second).
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


def findings(variants: list[Kept], basis: str, test_images: list[int], full_test_size: int) -> list[str]:
    """The sentences: per variant the share of its unshifted accuracy kept at each of :data:`DISTANCES` (both
    ways of moving), then per distance the variants from the most kept to the least, then what they rest on."""
    rows = [v for v in variants if v.unshifted > 0]
    out = []
    for v in rows:
        steps = [d for d in DISTANCES if d in v.zero]
        if not steps:
            continue
        parts = [f"{d} pixel{'s' if d != 1 else ''}: {_share(v.zero[d], v.unshifted):.1f}%"
                 + (f" zero-filled ({_share(v.wrap[d], v.unshifted):.1f}% wrapped around)" if d == steps[0]
                    else f" ({_share(v.wrap[d], v.unshifted):.1f}%)") for d in steps]
        out.append(f"{v.label}, {v.unshifted:.2f}% unshifted, keeps this share of that accuracy when the test "
                   f"images move by " + "; ".join(parts) + ".")
    if len(rows) > 1:
        for d in DISTANCES:
            ranked = sorted((v for v in rows if d in v.zero), key=lambda v: -_share(v.zero[d], v.unshifted))
            if len(ranked) > 1:
                out.append(f"Moved by {d} pixel{'s' if d != 1 else ''} (zero-filled), from the most of its accuracy "
                           f"kept to the least: " + "; ".join(f"{v.label} {_share(v.zero[d], v.unshifted):.1f}%"
                                                            for v in ranked) + ".")
    if out:
        images = " / ".join(f"{n:,}" for n in test_images)
        where = (f"all {full_test_size:,} test images" if test_images == [full_test_size]
                 else f"the first {images} of the {full_test_size:,} test images")
        out.append(f"A distance is √(dx² + dy²) rounded to whole pixels, its accuracy the mean over the shifts at "
                   f"that distance; each variant is one network ({basis}) on {where}, so these shares have no "
                   f"interval over seeds.")
    return out
