"""Confusion matrix: the first seed's test predictions as counts and row-normalised, and the class pairs mixed up
most often (both directions together)."""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from .. import i18n, numbers
from ..figures import HEAT, TEXT_DARK, TEXT_LIGHT, WIDTH, Figure, FigureWriter
from ..i18n import N_
from ..study import Study
from . import Analysis, ByVariant
from ._common import FIRST_SEED, class_names, first_run, pct, variant_head


@dataclass
class ConfusedPair:
    a: str
    b: str
    a_as_b: int                  # test images of class a predicted as b
    b_as_a: int
    total: int
    share_pct: float             # of the two classes' test images together


@dataclass
class VariantConfusion:
    name: str
    label: str
    dataset: str
    seeds: list[int]
    seed: int
    classes: list[str]
    counts: list[list[int]]          # row = true class, column = predicted class
    normalised: list[list[float]]    # each row divided by its class's support (0..1)
    support: list[int]
    recall_pct: list[float]
    errors: int
    test_size: int
    pairs: list[ConfusedPair]
    figure: Figure
    figure_normalised: Figure

    def errors_within(self, classes: list[str]) -> float:
        """For prose: the share (%) of this network's mistakes where both the true and the predicted class are
        among ``classes`` (one of them taken for another)."""
        from .. import i18n
        from ..suggest import suggest
        classes = [i18n.class_name(c) if c not in self.classes else c for c in classes]  # English names too
        for c in classes:
            if c not in self.classes:
                raise ValueError(f"no class {c!r} in {self.name!r}{suggest(c, self.classes)} "
                                 f"(classes: {', '.join(self.classes)})")
        index = [self.classes.index(c) for c in classes]
        inside = sum(self.counts[i][j] for i in index for j in index if i != j)
        return 100.0 * inside / self.errors if self.errors else float("nan")

    def top_pair_share(self) -> float:
        """For prose: the share (%) of this network's mistakes in its most confused pair of classes."""
        return 100.0 * self.pairs[0].total / self.errors if self.errors and self.pairs else float("nan")


@dataclass
class ConfusionResult(ByVariant):
    basis: str
    variants: list[VariantConfusion]


def confusion_counts(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    from sklearn.metrics import confusion_matrix
    return confusion_matrix(labels, preds, labels=list(range(num_classes)))


def most_confused_pairs(counts: np.ndarray, classes: list[str], top: int = 3) -> list[ConfusedPair]:
    """The class pairs with the most mistakes in either direction (ties: lower class index first)."""
    support = counts.sum(1)
    pairs = []
    for i in range(len(classes)):
        for j in range(i + 1, len(classes)):
            total = int(counts[i, j] + counts[j, i])
            if total > 0:
                pairs.append((-total, i, j))
    rows = []
    for neg, i, j in sorted(pairs)[:top]:
        both = int(support[i] + support[j])
        rows.append(ConfusedPair(a=classes[i], b=classes[j], a_as_b=int(counts[i, j]), b_as_a=int(counts[j, i]),
                                 total=-neg, share_pct=100.0 * -neg / both if both else float("nan")))
    return rows


def compute(study: Study, figures: FigureWriter) -> ConfusionResult:
    rows = []
    for v in study.available:
        run = first_run(v)
        labels, probs = run.predictions()
        classes = class_names(v.dataset, probs.shape[1])
        counts = confusion_counts(labels, probs.argmax(1), len(classes))
        support = counts.sum(1)
        normalised = np.divide(counts, support[:, None], out=np.zeros(counts.shape), where=support[:, None] > 0)
        fig_counts = draw_confusion(figures, counts, classes, normalised=False, name=f"confusion-{v.name}",
                                    title=i18n._("%(label)s: confusion matrix (seed %(seed)s, %(n)s test images)")
                                    % {"label": v.label, "seed": run.seed, "n": numbers.thousands(len(labels))})
        fig_norm = draw_confusion(figures, normalised, classes, normalised=True,
                                  name=f"confusion-{v.name}-normalised",
                                  title=i18n._("%(label)s: confusion matrix, each row as %% of its class")
                                  % {"label": v.label})
        correct = np.diag(counts)
        rows.append(VariantConfusion(
            **variant_head(v, run), classes=classes, counts=counts.tolist(), normalised=normalised.tolist(),
            support=support.tolist(), recall_pct=[pct(x) for x in np.diag(normalised)],
            errors=int(len(labels) - correct.sum()), test_size=int(len(labels)),
            pairs=most_confused_pairs(counts, classes), figure=fig_counts, figure_normalised=fig_norm))
    return ConfusionResult(basis=FIRST_SEED, variants=rows)


def draw_confusion(figures: FigureWriter, matrix: np.ndarray, classes: list[str], normalised: bool, title: str,
                   name: str) -> Figure:
    """A confusion matrix: rows = true class, columns = predicted class, every non-zero cell annotated."""
    matrix = np.asarray(matrix, dtype=float)
    values = matrix * 100 if normalised else matrix

    def draw() -> plt.Figure:
        n = len(classes)
        fig, ax = plt.subplots(figsize=(WIDTH, WIDTH * 0.82))
        top = values.max() if values.size else 1
        image = ax.imshow(values, cmap=HEAT, vmin=0, vmax=100 if normalised else max(top, 1))
        ax.grid(False)
        size = 8 if n <= 10 else 6
        for i in range(n):
            for j in range(n):
                v = values[i, j]
                if v == 0:
                    continue
                text = numbers.plain(v, 0 if v >= 9.95 else 1) if normalised else f"{int(v)}"
                dark = v > 0.55 * (100 if normalised else top)
                ax.text(j, i, text, ha="center", va="center", fontsize=size, in_layout=False,
                        color=TEXT_LIGHT if dark else TEXT_DARK, fontweight="bold" if i == j else "normal")
        ax.set_xticks(range(n), classes, rotation=40, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(n), classes)
        ax.set(xlabel=i18n._("predicted class"), ylabel=i18n._("true class"), title=title)
        for spine in ax.spines.values():
            spine.set_visible(False)
        bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
        bar.set_label(i18n._("%% of the true class") % {} if normalised else i18n._("test images"))
        fig.tight_layout()
        return fig

    off = matrix.copy()
    np.fill_diagonal(off, -1)
    i, j = np.unravel_index(int(np.argmax(off)), off.shape)
    worst = (i18n._("; the largest off-diagonal cell is true %(true)s predicted as %(predicted)s")
             % {"true": classes[i], "predicted": classes[j]} if off[i, j] > 0 else "")
    cells = (i18n._("each row in percent of that class") if normalised else i18n._("cells count test images"))
    alt = i18n._("%(title)s. Rows are the true class, columns the predicted class, %(cells)s; the diagonal holds "
                 "the correct predictions%(worst)s") % {"title": title, "cells": cells, "worst": worst}
    return figures.emit(name, alt, (values, classes, normalised, title), draw)


ANALYSIS = Analysis(
    name="confusion", title=N_("Confusion matrix"), compute=compute,
    summary=N_("The first seed's test predictions as a confusion matrix (counts and per-class %), with the class "
               "pairs mixed up most often."),
)
