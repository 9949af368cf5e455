"""Equivariance against invariance, on a real image with a hand-made kernel (needs no training).

A layer f is *equivariant* to a shift T when shifting the input shifts the output the same way, f(Tx) = T′f(x), and
*invariant* when the output does not change at all, f(Tx) = f(x). Here, for a test image moved right by 1 and by
2 pixels (zero-filled):

- a convolution and its ReLU (the Sobel kernel of the kernels analysis, padding 1): f(Tx) against T f(x), the same
  shift;
- 2×2 max-pooling after it: the pooled map of the moved image against the pooled map of the original moved by the
  whole pooled pixels that come closest (T′ moves by s/2 pooled pixels; for an odd s no T′ fits exactly);
- the same convolution with stride 2 instead (the strided network's way to halve a map), compared the same way;
- the global average of that output: one number, which should not change at all.

Every number is the largest absolute difference over the map; the figure shows the differences."""
from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from .. import i18n, numbers
from ..figures import DIVERGING, IMAGE_CMAP, WIDTH, Figure, FigureWriter, _frameless
from ..i18n import N_
from ..study import Study
from . import Analysis
from ._common import dataset_splits, study_dataset
from .kernels import HAND_KERNELS

KERNEL = "vertical edges (Sobel)"
SHIFTS = (1, 2)   # pixels to the right: less than a 2×2 pooling window, and exactly one
POOL = 2
ROUNDING = 6      # decimals kept of each difference: float32 rounding (about 1e-8 here) is not a difference


@dataclass
class ShiftCheck:
    pixels: int
    conv_difference: float           # max |f(Tx) − T f(x)|: 0 means equivariant
    pool_difference: float           # max |pool f(Tx) − T′ pool f(x)| for the best whole-pixel T′
    pool_shift: int                  # that T′, in pooled pixels
    strided_difference: float        # max |g(Tx) − T′ g(x)| for g the convolution with stride 2, best whole-pixel T′
    strided_shift: int               # that T′, in output pixels
    average_difference: float        # |mean f(Tx) − mean f(x)|: 0 means invariant
    conv_change: float               # max |f(Tx) − f(x)|: how much the unmoved output changes (not invariant)


@dataclass
class EquivarianceResult:
    index: int                       # the test image
    kernel: str
    pool: int
    margin: int                      # black columns added on the image's right (and one on its left)
    average: float                   # the global average of f(x), the convolution's output after its ReLU
    checks: list[ShiftCheck] = field(default_factory=list)
    figure: Figure | None = None


def shift_right(x: torch.Tensor, pixels: int) -> torch.Tensor:
    """[..., H, W] moved ``pixels`` to the right, the uncovered columns filled with zeros."""
    if pixels == 0:
        return x.clone()
    out = torch.zeros_like(x)
    out[..., pixels:] = x[..., :-pixels]
    return out


def best_move(moved: torch.Tensor, original: torch.Tensor, pixels: int) -> tuple[int, torch.Tensor]:
    """For maps at half the image's resolution: the whole-pixel move T′ of ``original`` that comes closest to
    ``moved`` (``pixels`` / 2, rounded either way) and the difference it leaves."""
    candidates = {s: moved - shift_right(original, s) for s in range(pixels // POOL, -(-pixels // POOL) + 1)}
    best = min(candidates, key=lambda s: float(candidates[s].abs().max()))
    return best, candidates[best]


def check(image: torch.Tensor, kernel: torch.Tensor, pixels: int) -> tuple[ShiftCheck, dict[str, np.ndarray]]:
    """The comparisons for one shift, and the maps the figure draws."""
    f = lambda x, stride=1: torch.relu(F.conv2d(x[None, None], kernel[None, None], padding=1,  # noqa: E731
                                                stride=stride))[0, 0]
    pool = lambda m: F.max_pool2d(m[None, None], POOL)[0, 0]  # noqa: E731
    moved = shift_right(image, pixels)
    out, out_moved = f(image), f(moved)
    conv_diff = out_moved - shift_right(out, pixels)
    pooled_moved = pool(out_moved)
    pool_shift, pool_diff = best_move(pooled_moved, pool(out), pixels)
    strided_shift, strided_diff = best_move(f(moved, POOL), f(image, POOL), pixels)
    exact = lambda v: round(float(v), ROUNDING)  # noqa: E731 - float32 sums differ in the 8th digit
    result = ShiftCheck(pixels=pixels, conv_difference=exact(conv_diff.abs().max()),
                        pool_difference=exact(pool_diff.abs().max()), pool_shift=pool_shift,
                        strided_difference=exact(strided_diff.abs().max()), strided_shift=strided_shift,
                        average_difference=exact((out_moved.mean() - out.mean()).abs()),
                        conv_change=exact((out_moved - out).abs().max()))
    return result, {"moved": moved.numpy(), "conv": out_moved.numpy(), "conv_diff": conv_diff.numpy(),
                    "pool": pooled_moved.numpy(), "pool_diff": pool_diff.numpy()}


def compute(study: Study, figures: FigureWriter, index: int = 0) -> EquivarianceResult:
    # black columns around it: moving the image right loses nothing over the edge, and the kernel's reach (1 pixel)
    # never meets the frame, so any difference below comes from the layer, not from the image leaving the frame
    image = F.pad(dataset_splits(study_dataset(study)).test_images[index].float() / 255, (1, max(SHIFTS) + 1))
    kernel = torch.tensor(next(w for n, _, w in HAND_KERNELS if n == KERNEL), dtype=torch.float32)
    base = torch.relu(F.conv2d(image[None, None], kernel[None, None], padding=1))[0, 0]
    result = EquivarianceResult(index=index, kernel=KERNEL, pool=POOL, average=float(base.mean()),
                                margin=max(SHIFTS) + 1)
    rows = []
    for pixels in SHIFTS:
        found, maps = check(image, kernel, pixels)
        result.checks.append(found)
        rows.append((found, maps))
    pooled = F.max_pool2d(base[None, None], POOL)[0, 0]
    original = {"moved": image.numpy(), "conv": base.numpy(), "pool": pooled.numpy()}
    result.figure = draw_equivariance(figures, original, rows)
    return result


def draw_equivariance(figures: FigureWriter, original: dict[str, np.ndarray],
                      rows: list[tuple[ShiftCheck, dict[str, np.ndarray]]], name: str = "equivariance") -> Figure:
    """Top row: the image, its convolution and the pooled map. One row per shift: the moved image, f(Tx) − T f(x)
    and pool f(Tx) − T′ pool f(x) on the convolution's colour scale (white: zero, equivariant)."""
    def draw() -> plt.Figure:
        limit = float(np.abs(original["conv"]).max()) or 1.0
        fig, axes = plt.subplots(1 + len(rows), 3, figsize=(WIDTH * 0.8, 2.2 * (1 + len(rows))), layout="constrained")
        heads = [(i18n._("image x"), original["moved"], IMAGE_CMAP),
                 (i18n._("convolution + ReLU: f(x)"), original["conv"], DIVERGING),
                 (i18n._("2×2 max-pool of f(x)"), original["pool"], DIVERGING)]
        for ax, (title, data, cmap) in zip(axes[0], heads):
            gray = cmap == IMAGE_CMAP
            ax.imshow(data, cmap=cmap, vmin=0 if gray else -limit, vmax=1 if gray else limit, interpolation="nearest")
            ax.set_title(title, fontsize=8.5)
        for r, (c, maps) in enumerate(rows, start=1):
            axes[r, 0].imshow(maps["moved"], cmap=IMAGE_CMAP, vmin=0, vmax=1, interpolation="nearest")
            axes[r, 0].set_title(i18n._("Tx: moved %(n)s px right") % {"n": c.pixels}, fontsize=8.5)
            axes[r, 1].imshow(maps["conv_diff"], cmap=DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
            axes[r, 1].set_title(i18n._("f(Tx) − T f(x): largest %(d)s") % {"d": numbers.significant(c.conv_difference, 2)},
                                 fontsize=8.5)
            axes[r, 2].imshow(maps["pool_diff"], cmap=DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
            axes[r, 2].set_title(i18n._("pool: moved %(n)s pooled px,\nlargest difference %(d)s")
                                 % {"n": c.pool_shift, "d": numbers.significant(c.pool_difference, 2)},
                                 fontsize=8.5)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
            _frameless(ax)
        fig.suptitle(i18n._("Equivariance: f(Tx) = T′ f(x)"), fontsize=10.5)
        return fig

    parts = "; ".join(i18n._("moved %(n)s px: the convolution's output moves with it (largest difference %(conv)s), "
                             "the pooled map differs by up to %(pool)s from the best whole-pixel move")
                      % {"n": c.pixels, "conv": numbers.significant(c.conv_difference, 2),
                         "pool": numbers.significant(c.pool_difference, 2)} for c, _ in rows)
    alt = i18n._("A test image, its Sobel convolution and its 2×2 max-pooled map; then per shift the differences: "
                 "%(parts)s") % {"parts": parts}
    return figures.emit(name, alt, (original, [(c, maps) for c, maps in rows]), draw)


ANALYSIS = Analysis(
    name="equivariance", title=N_("Equivariance and invariance"), compute=compute, needs_training=False,
    summary=N_("A moved image through a convolution, 2×2 max-pooling and a global average: which moves with the "
               "image (equivariant), which does not change (invariant), measured."),
)
