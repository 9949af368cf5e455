"""Misclassified test images: the first seed's most confident mistakes, with true class, predicted class and
confidence."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from .. import i18n, numbers
from ..figures import IMAGE_CMAP, TEXT_DARK, WIDTH, WRONG, Figure, FigureWriter, _tile_axes
from ..i18n import N_
from ..study import Study, label_smoothing
from . import Analysis
from ._common import FIRST_SEED, class_names, first_run, pct, run_test_set, variant_head

SHOWN = 18  # mistakes drawn per variant: three rows of six


@dataclass
class Mistake:
    index: int                   # position in the test set
    true: str
    predicted: str
    confidence_pct: float        # softmax probability of the predicted class
    true_prob_pct: float


@dataclass
class VariantMistakes:
    name: str
    label: str
    dataset: str
    seeds: list[int]
    seed: int
    errors: int
    test_size: int
    error_pct: float
    shown: list[Mistake]
    figure: Figure | None        # None when the run makes no mistake
    label_smoothing: float = 0.0
    target_pct: float = 100.0    # the probability training asks for on the right class: 1 − ε + ε/K with smoothing ε


@dataclass
class MisclassifiedResult:
    basis: str
    variants: list[VariantMistakes]


def compute(study: Study, figures: FigureWriter, count: int = SHOWN) -> MisclassifiedResult:
    rows = []
    for v in study.available:
        run = first_run(v)
        images, _ = run_test_set(run)
        labels, probs = run.predictions()
        classes = class_names(v.dataset, probs.shape[1])
        preds, confidence = probs.argmax(1), probs.max(1)
        wrong = np.flatnonzero(preds != labels)
        order = wrong[np.lexsort((wrong, -confidence[wrong]))][:count]
        shown = [Mistake(index=int(i), true=classes[labels[i]], predicted=classes[preds[i]],
                         confidence_pct=pct(confidence[i]), true_prob_pct=pct(probs[i, labels[i]])) for i in order]
        fig = None
        if shown:
            fig = draw_misclassified(figures, images[order].numpy(), [asdict(s) for s in shown],
                                     name=f"misclassified-{v.name}",
                                     title=i18n.ngettext("%(label)s: the most confident mistake (seed %(seed)s)",
                                                          "%(label)s: the %(n)s most confident mistakes "
                                                          "(seed %(seed)s)", len(shown))
                                     % {"label": v.label, "n": len(shown), "seed": run.seed})
        smoothing = label_smoothing(run)
        rows.append(VariantMistakes(**variant_head(v, run), errors=int(len(wrong)), test_size=int(len(labels)),
                                    error_pct=pct(len(wrong) / max(1, len(labels))), shown=shown, figure=fig,
                                    label_smoothing=smoothing,
                                    target_pct=pct(1 - smoothing + smoothing / probs.shape[1])))
    return MisclassifiedResult(basis=FIRST_SEED, variants=rows)


def draw_misclassified(figures: FigureWriter, images: np.ndarray, shown: list[dict[str, Any]], title: str, name: str,
                       ncols: int = 6) -> Figure:
    """A gallery of test images with their true class and the (wrong) prediction with its confidence."""
    def draw() -> plt.Figure:
        n = len(images)
        cols = min(ncols, n)
        rows = math.ceil(n / cols)
        pitch_x, pitch_y = 1.25, 1.55
        fig, ax = plt.subplots(figsize=(WIDTH, 0.5 + (rows * pitch_y - pitch_y + 1.5) * WIDTH / (cols * pitch_x)))
        for k, (img, info) in enumerate(zip(images, shown)):
            x0, y0 = (k % cols) * pitch_x, (k // cols) * pitch_y
            ax.imshow(img, cmap=IMAGE_CMAP, vmin=0, vmax=255, extent=(x0, x0 + 1, y0 + 1, y0),
                      interpolation="nearest")
            ax.text(x0 + 0.5, y0 - 0.04, f"{info['predicted']} {numbers.plain(info['confidence_pct'])}%", ha="center",
                    va="bottom", fontsize=7.5, color=WRONG, fontweight="bold")
            ax.text(x0 + 0.5, y0 - 0.22, i18n._("true: %(class)s") % {"class": info["true"]}, ha="center", va="bottom", fontsize=7.5,
                    color=TEXT_DARK)
        _tile_axes(ax, cols * pitch_x - (pitch_x - 1), rows * pitch_y - (pitch_y - 1), top=-0.5)
        fig.suptitle(title, y=1.0)
        fig.tight_layout()
        return fig

    pairs = ", ".join(i18n._("%(true)s predicted as %(predicted)s") % {"true": s["true"], "predicted": s["predicted"]}
                      for s in shown[:3])
    alt = i18n._("%(title)s: %(n)s test images, each labelled with the wrong prediction and its confidence (red) "
                 "and the true class; the first are %(pairs)s") % {"title": title, "n": len(shown), "pairs": pairs}
    return figures.emit(name, alt, (images, shown, title, ncols), draw)


ANALYSIS = Analysis(
    name="misclassified", title=N_("Misclassified test images"), compute=compute,
    summary=N_("The first seed's most confident mistakes on the test set: image, true class, prediction, confidence."),
)
