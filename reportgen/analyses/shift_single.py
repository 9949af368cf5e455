"""One image, moved a few pixels: a test image moved 4 pixels right and 1 down, and 4 left and 1 up
(``torch.roll``); what each variant's first-seed model predicts, and the probability of the true class (also
averaged over every seed)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

import matplotlib.pyplot as plt
import numpy as np
import torch

from .. import i18n
from ..i18n import N_
from ..figures import IMAGE_CMAP, WIDTH, Figure, FigureWriter
from ..i18n import N_
from ..loader import to_input
from ..study import Study
from . import Analysis
from ._common import class_names, first_run, load_model, normalization, pct, run_test_set, variant_head

SINGLE_SHIFTS = ((N_("original"), 0, 0), (N_("lower right"), 4, 1), (N_("upper left"), -4, -1))  # (name, dx, dy) in pixels

# A dict, not a dataclass: the partial reads ``.class``, which no Python attribute can be called.
ShiftedImage = TypedDict("ShiftedImage", {"index": int, "class": str, "all_correct": bool})


@dataclass
class Shift:
    name: str
    dx: int          # pixels to the right
    dy: int          # pixels down


@dataclass
class ShiftPrediction:
    shift: str                       # the Shift's name
    predicted: str                   # the first seed's prediction
    predicted_prob_pct: float
    true_prob_pct: float
    correct: bool
    true_prob_mean_pct: float        # the true class's probability, mean over every seed
    seeds_correct: int


@dataclass
class VariantShiftSingle:
    name: str
    label: str
    dataset: str
    seeds: list[int]
    seed: int
    results: list[ShiftPrediction]   # one per shift, in SINGLE_SHIFTS order


@dataclass
class ShiftSingleResult:
    image: ShiftedImage | None       # None when no variant has results
    shifts: list[Shift] = field(default_factory=list)
    figure: Figure | None = None
    variants: list[VariantShiftSingle] = field(default_factory=list)
    seeds: int = 0                   # the most seeds of any variant


def compute(study: Study, figures: FigureWriter) -> ShiftSingleResult:
    # The variants on the first variant's dataset: they all see the same image.
    variants = [v for v in study.available if v.dataset == study.available[0].dataset] if study.available else []
    if not variants:
        return ShiftSingleResult(image=None)
    runs0 = [first_run(v) for v in variants]
    labels, _ = runs0[0].predictions()
    correct_all = np.ones(len(labels), dtype=bool)
    for r in runs0:
        y, p = r.predictions()
        if len(y) == len(labels):
            correct_all &= p.argmax(1) == y
    all_correct = bool(correct_all.any())
    index = int(np.flatnonzero(correct_all)[0]) if all_correct else 0
    images, labels_t = run_test_set(runs0[0])
    true = int(labels_t[index])
    stack = torch.stack([torch.roll(images[index], shifts=(dy, dx), dims=(-2, -1)) for _, dx, dy in SINGLE_SHIFTS])
    shifts = [Shift(name=i18n._(n), dx=dx, dy=dy) for n, dx, dy in SINGLE_SHIFTS]
    classes = class_names(variants[0].dataset, runs0[0].predictions()[1].shape[1])
    rows = []
    for v in variants:
        per_seed = []
        for r in v.runs:
            with torch.inference_mode():
                per_seed.append(torch.softmax(load_model(r)(to_input(stack, normalization(r))), 1).numpy())
        p0 = per_seed[0]
        v_classes = class_names(v.dataset, p0.shape[1])
        results = []
        for j, s in enumerate(shifts):
            pred = int(p0[j].argmax())
            results.append(ShiftPrediction(shift=s.name, predicted=v_classes[pred],
                                           predicted_prob_pct=pct(p0[j, pred]), true_prob_pct=pct(p0[j, true]),
                                           correct=pred == true,
                                           true_prob_mean_pct=pct(np.mean([p[j, true] for p in per_seed])),
                                           seeds_correct=int(sum(int(p[j].argmax()) == true for p in per_seed))))
        rows.append(VariantShiftSingle(**variant_head(v, first_run(v)), results=results))
    titles = [s.name + (f" (dx {s.dx:+d}, dy {s.dy:+d})" if s.dx or s.dy else "") for s in shifts]
    fig = draw_shift_triptych(figures, stack.numpy(), titles, name="shift-single",
                              title=i18n._("One test image (%(class)s) moved with torch.roll") % {"class": classes[true]})
    return ShiftSingleResult(image={"index": index, "class": classes[true], "all_correct": all_correct},
                             shifts=shifts, figure=fig, variants=rows, seeds=max(len(v.runs) for v in variants))


def draw_shift_triptych(figures: FigureWriter, images: np.ndarray, titles: list[str], title: str, name: str) -> Figure:
    """The same image at its place and shifted, with the image border and a faint pixel grid."""
    def draw() -> plt.Figure:
        fig, axes = plt.subplots(1, len(images), figsize=(WIDTH, WIDTH / len(images) + 0.5))
        for ax, img, t in zip(axes, images, titles):
            ax.imshow(img, cmap=IMAGE_CMAP, vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks(np.arange(-0.5, img.shape[1], 4), minor=False)
            ax.set_yticks(np.arange(-0.5, img.shape[0], 4), minor=False)
            ax.tick_params(length=0, labelbottom=False, labelleft=False)
            ax.grid(True, color="#888888", alpha=0.35, linewidth=0.5)
            ax.set_title(t, fontsize=9)
        fig.suptitle(title, fontsize=10.5)
        fig.tight_layout()
        return fig

    alt = i18n._("%(title)s: three versions of the image side by side: %(titles)s; pixels pushed over one edge "
                 "come back on the opposite edge") % {"title": title, "titles": ", ".join(titles)}
    return figures.emit(name, alt, (images, titles, title), draw)


ANALYSIS = Analysis(
    name="shift_single", title=N_("One image, moved a few pixels"), compute=compute,
    summary=N_("One test image moved a few pixels with torch.roll: what each variant predicts for each version."),
)
