"""Five hand-made 3×3 kernels applied with ``torch.nn.functional.conv2d`` to a real test image (needs no
training)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from markupsafe import Markup

from .. import i18n, numbers
from ..i18n import N_
from ..figures import (DIVERGING, IMAGE_CMAP, MUTED, TEXT_DARK, TEXT_LIGHT, WIDTH, Figure, FigureWriter, _frameless,
                       _number_text)
from ..study import Study
from . import Analysis
from ._common import dataset_splits, study_dataset

HAND_KERNELS: list[tuple[str, str, list[list[float]]]] = [
    (N_("box blur"), N_("the average of the 3×3 neighbourhood"), [[1 / 9] * 3] * 3),
    (N_("outline"), N_("8 × the centre minus the sum of its eight neighbours (Laplacian-like): zero on flat areas, "
        "positive where the centre is brighter than its neighbours, negative where it is darker"),
     [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
    (N_("vertical edges (Sobel)"), N_("the right column minus the left one, the middle row counted twice: zero on "
        "flat areas, positive where the image gets brighter from left to right, negative where it gets darker"),
     [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
    (N_("horizontal lines"), N_("a bright row between two darker rows"), [[-1, -1, -1], [2, 2, 2], [-1, -1, -1]]),
    (N_("vertical lines"), N_("a bright column between two darker columns"), [[-1, 2, -1], [-1, 2, -1], [-1, 2, -1]]),
]
PADDING = 1  # a 3×3 kernel with padding 1 keeps the image size

# The partial reads ``a.image.class``; ``class`` cannot be a dataclass field, so this one part stays a (typed) dict.
KernelImage = TypedDict("KernelImage", {"dataset": str, "title": str, "index": int, "class": str})


@dataclass
class KernelRow:
    name: str
    description: str
    weights: list[list[float]]
    out_min: float
    out_max: float
    tex: Markup                  # the weights as an inline LaTeX matrix


@dataclass
class KernelsResult:
    image: KernelImage
    kernels: list[KernelRow]
    padding: int
    size: int                    # input pixels per side
    output_size: int             # output pixels per side
    figure: Figure


def kernel_tex(weights: list[list[float]]) -> Markup:
    """A kernel as an inline LaTeX matrix (fractions such as 1/9 written as fractions)."""
    from fractions import Fraction

    def entry(w: float) -> str:
        f = Fraction(w).limit_denominator(64)
        if abs(float(f) - w) > 1e-6:
            return f"{w:.2f}"
        if f.denominator == 1:
            return str(f.numerator)
        return ("-" if f < 0 else "") + rf"\tfrac{{{abs(f.numerator)}}}{{{f.denominator}}}"

    body = r" \\ ".join(" & ".join(entry(w) for w in row) for row in weights)
    return Markup(rf"\(\begin{{bmatrix}} {body} \end{{bmatrix}}\)")


def apply_kernels(image01: torch.Tensor, kernels: list[list[list[float]]], padding: int = 1) -> torch.Tensor:
    """[H, W] image in [0, 1] -> [K, H', W'] outputs of ``torch.nn.functional.conv2d`` with each kernel."""
    weight = torch.tensor(kernels, dtype=torch.float32).unsqueeze(1)
    return F.conv2d(image01[None, None].float(), weight, padding=padding)[0]


def compute(study: Study, figures: FigureWriter, index: int = 0) -> KernelsResult:
    from ..data import DATASETS
    ds = study_dataset(study)
    splits = dataset_splits(ds)
    image = splits.test_images[index].float() / 255
    weights = [k for _, _, k in HAND_KERNELS]
    outputs = apply_kernels(image, weights, padding=PADDING).numpy()
    rows = [KernelRow(name=i18n._(name), description=i18n._(desc), weights=w, out_min=float(o.min()), out_max=float(o.max()),
                      tex=kernel_tex(w)) for (name, desc, w), o in zip(HAND_KERNELS, outputs)]
    cls = i18n.class_name(splits.classes[int(splits.test_labels[index])])
    fig = draw_kernels(figures, image.numpy(), [(r.name, np.array(r.weights), o) for r, o in zip(rows, outputs)],
                       name="kernels", title=i18n._("Hand-made 3×3 kernels on a %(dataset)s test image (%(class)s)")
                       % {"dataset": DATASETS[ds].title, "class": cls})
    return KernelsResult(image=KernelImage(dataset=ds, title=DATASETS[ds].title, index=index, **{"class": cls}),
                         kernels=rows, padding=PADDING, size=int(image.shape[-1]), output_size=int(outputs.shape[-1]),
                         figure=fig)


def draw_kernels(figures: FigureWriter, image: np.ndarray, kernels: list[tuple[str, np.ndarray, np.ndarray]],
                 title: str, name: str) -> Figure:
    """The input image, then for each kernel its weights (numbers shown) above its output. All kernels share one
    colour scale, symmetric around zero, and all outputs share another: a colour means the same number in every
    tile of its row, so the kernels' sizes and their outputs' strengths can be compared by eye."""
    def draw() -> plt.Figure:
        k = len(kernels)
        weight_limit = max(float(np.abs(w).max()) for _, w, _ in kernels) or 1.0
        output_limit = max(float(np.abs(o).max()) for _, _, o in kernels) or 1.0
        fig, axes = plt.subplots(2, k + 1, figsize=(WIDTH, 4.2), layout="constrained")
        axes[0, 0].imshow(image, cmap=IMAGE_CMAP, vmin=0, vmax=1, interpolation="nearest")
        axes[0, 0].set_title(i18n._("input"), fontsize=9)
        axes[1, 0].set_visible(False)
        for c, (kname, weights, out) in enumerate(kernels, start=1):
            ax_k, ax_o = axes[0, c], axes[1, c]
            shown_k = ax_k.imshow(weights, cmap=DIVERGING, vmin=-weight_limit, vmax=weight_limit)
            for (i, j), w in np.ndenumerate(weights):
                text = _number_text(w)
                ax_k.text(j, i, text, ha="center", va="center", fontsize=7.5 if len(text) > 3 else 9,
                          color=TEXT_LIGHT if abs(w) > 0.6 * weight_limit else TEXT_DARK)
            ax_k.set_title(kname.replace(" (", "\n("), fontsize=9)  # "vertical edges (Sobel)" on two lines
            shown_o = ax_o.imshow(out, cmap=DIVERGING, vmin=-output_limit, vmax=output_limit,
                                  interpolation="nearest")
            ax_o.set_xlabel(f"{numbers.plain(out.min(), 1)} … {numbers.plain(out.max(), 1)}", fontsize=7.5, color=MUTED)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
            _frameless(ax)
        fig.suptitle(title, fontsize=10.5)
        for row, shown, label in ((0, shown_k, i18n._("weight")), (1, shown_o, i18n._("output"))):
            bar = fig.colorbar(shown, ax=list(axes[row, 1:]), fraction=0.03, pad=0.02, shrink=0.9)
            bar.set_label(label, fontsize=8)
            bar.ax.tick_params(labelsize=7)
        return fig

    alt = i18n._("%(title)s: the input image, then for each kernel (%(kernels)s) its 3×3 weights above the output "
                 "of convolving the image with it. The weights share one colour scale and the outputs another, both "
                 "symmetric around zero: red positive, blue negative, white zero") % {
        "title": title, "kernels": ", ".join(k[0] for k in kernels)}
    return figures.emit(name, alt, (image, kernels, title), draw)


ANALYSIS = Analysis(
    name="kernels", title=N_("Hand-made kernels on a real image"), compute=compute, needs_training=False,
    summary=N_("Five hand-made 3×3 kernels (blur, outline, Sobel edges, lines) convolved with a real test image by "
               "torch.nn.functional.conv2d."),
)
