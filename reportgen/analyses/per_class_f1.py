"""F1 score per class: the mean over every seed with the min–max range, per variant (and so per dataset)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from .. import i18n, numbers
from ..numbers import fixed
from ..figures import PALETTE, WIDTH, Figure, FigureWriter
from ..i18n import N_
from ..study import Study
from . import Analysis
from ._common import class_names, variant_head

BASIS = "mean over every seed"


@dataclass
class ClassF1:
    name: str
    f1: float                    # mean over seeds
    min: float                   # lowest seed
    max: float                   # highest seed


@dataclass
class VariantF1:
    name: str
    label: str
    dataset: str
    seeds: list[int]
    classes: list[ClassF1]
    macro_f1: float
    worst: ClassF1               # lowest mean F1 (ties: first name)
    best: ClassF1


@dataclass
class PerClassF1Result:
    basis: str
    variants: list[VariantF1]
    figure: Figure | None        # None when no variant has results


def compute(study: Study, figures: FigureWriter) -> PerClassF1Result:
    from sklearn.metrics import f1_score
    rows = []
    for v in study.available:
        per_seed = []
        for r in v.runs:
            y, p = r.predictions()
            per_seed.append(f1_score(y, p.argmax(1), labels=list(range(p.shape[1])), average=None, zero_division=0))
        f1 = np.array(per_seed)
        classes = class_names(v.dataset, f1.shape[1])
        per_class = [ClassF1(name=c, f1=float(f1[:, i].mean()), min=float(f1[:, i].min()),
                             max=float(f1[:, i].max())) for i, c in enumerate(classes)]
        order = sorted(per_class, key=lambda row: (row.f1, row.name))
        rows.append(VariantF1(**variant_head(v), classes=per_class, macro_f1=float(f1.mean(1).mean()),
                              worst=order[0], best=order[-1]))
    fig = draw_per_class_f1(figures, [(r.label, r.dataset, [asdict(c) for c in r.classes]) for r in rows],
                            name="per-class-f1", title=i18n._("F1 per class (mean over seeds, bars: min–max)")) if rows else None
    return PerClassF1Result(basis=BASIS, variants=rows, figure=fig)


def draw_per_class_f1(figures: FigureWriter, variants: list[tuple[str, str, list[dict[str, Any]]]], title: str,
                      name: str) -> Figure:
    """Horizontal bars of F1 per class with min–max whiskers; grouped when every variant shares a dataset."""
    def draw() -> plt.Figure:
        same = len({ds for _, ds, _ in variants}) == 1
        if same:
            classes = [c["name"] for c in variants[0][2]]
            k = len(variants)
            fig, ax = plt.subplots(figsize=(WIDTH, 3.8))
            width = 0.82 / k
            for i, (label, _, rows) in enumerate(variants):
                x = np.arange(len(rows)) + (i - (k - 1) / 2) * width
                f1 = np.array([r["f1"] for r in rows])
                err = np.array([[r["f1"] - r["min"] for r in rows], [r["max"] - r["f1"] for r in rows]])
                ax.bar(x, f1, width=width * 0.92, color=PALETTE[i % len(PALETTE)], label=label,
                       yerr=err if err.any() else None, error_kw={"elinewidth": 0.8, "capsize": 1.5})
            ax.set_xticks(np.arange(len(classes)), classes, rotation=30, ha="right", rotation_mode="anchor")
            ax.set(ylim=(0, 1.0), ylabel=i18n._("F1 score"), title=title)
            ax.grid(axis="x", visible=False)
            if k > 1:
                ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=min(k, 3))
            fig.tight_layout()
            return fig
        cols = min(len(variants), 3)
        rows_n = math.ceil(len(variants) / cols)
        fig, axes = plt.subplots(rows_n, cols, figsize=(WIDTH, 0.6 + 2.9 * rows_n), squeeze=False)
        for i, (label, ds, rows) in enumerate(variants):
            ax = axes[i // cols, i % cols]
            f1 = np.array([r["f1"] for r in rows])
            err = np.array([[r["f1"] - r["min"] for r in rows], [r["max"] - r["f1"] for r in rows]])
            ax.barh(np.arange(len(rows)), f1, color=PALETTE[i % len(PALETTE)],
                    xerr=err if err.any() else None, error_kw={"elinewidth": 0.8, "capsize": 1.5})
            ax.set_yticks(np.arange(len(rows)), [r["name"] for r in rows], fontsize=8)
            ax.invert_yaxis()
            ax.set(xlim=(0, 1.0), title=label)
            ax.title.set_fontsize(9.5)
            ax.grid(axis="y", visible=False)
        for j in range(len(variants), rows_n * cols):
            axes[j // cols, j % cols].set_visible(False)
        fig.suptitle(title, fontsize=10.5)
        fig.tight_layout()
        return fig

    def extremes(rows: list[dict[str, Any]]) -> str:
        ordered = sorted(rows, key=lambda r: (r["f1"], r["name"]))
        return i18n._("lowest %(lowest)s (%(low)s), highest %(highest)s (%(high)s)") % {
            "lowest": ordered[0]["name"], "low": numbers.plain(ordered[0]["f1"], 2),
            "highest": ordered[-1]["name"], "high": numbers.plain(ordered[-1]["f1"], 2)}

    parts = "; ".join(f"{label}: {extremes(rows)}" for label, _, rows in variants)
    alt = f"{title}. {parts}"
    return figures.emit(name, alt, (variants, title), draw)


def findings(result: PerClassF1Result) -> list[str]:
    """Where each variant goes wrong most: its hardest and easiest class by mean F1."""
    message = i18n._("%(label)s: the hardest class is %(worst)s (F1 %(worst_f1)s, mean over seeds), the easiest "
                     "%(best)s (%(best_f1)s).")
    return [message % {"label": v.label, "worst": v.worst.name, "worst_f1": fixed(v.worst.f1, 3), "best": v.best.name,
                       "best_f1": fixed(v.best.f1, 3)} for v in result.variants if v.classes]


ANALYSIS = Analysis(
    name="per_class_f1", title=N_("F1 score per class"), compute=compute, findings=findings,
    summary=N_("F1 of every class, mean over seeds with the min–max range, per variant."),
)
