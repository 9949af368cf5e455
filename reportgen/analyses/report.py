"""Classification report: per-class precision, recall, F1 and support of the first seed's test predictions
(scikit-learn's ``classification_report``), accuracy, macro and weighted averages, and macro F1 over every seed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..figures import FigureWriter
from ..i18n import N_
from ..stats import Interval, mean_ci
from ..study import Study
from . import Analysis
from ._common import FIRST_SEED, class_names, first_run, variant_head


@dataclass
class Scores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class ClassScores:
    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class ClassificationNumbers:
    classes: list[ClassScores]
    accuracy: float
    macro: Scores
    weighted: Scores
    raw: dict[str, Any]          # classification_report(output_dict=True) as scikit-learn returns it


@dataclass
class VariantReport:
    name: str
    label: str
    dataset: str
    seeds: list[int]
    seed: int
    classes: list[ClassScores]
    accuracy: float
    macro: Scores
    weighted: Scores
    raw: dict[str, Any]
    test_size: int
    macro_f1_seeds: Interval  # the macro F1 of every seed, mean with its interval


@dataclass
class ReportResult:
    basis: str
    variants: list[VariantReport]


def classification_numbers(labels: np.ndarray, probs: np.ndarray, classes: list[str]) -> ClassificationNumbers:
    """scikit-learn's classification_report (output_dict=True) on argmax predictions, reshaped for a table."""
    from sklearn.metrics import classification_report
    preds = probs.argmax(1)
    raw = classification_report(labels, preds, labels=list(range(len(classes))), target_names=classes,
                                output_dict=True, zero_division=0)

    def row(d: dict[str, float]) -> dict[str, Any]:
        return {"precision": float(d["precision"]), "recall": float(d["recall"]), "f1": float(d["f1-score"]),
                "support": int(d["support"])}

    return ClassificationNumbers(classes=[ClassScores(name=c, **row(raw[c])) for c in classes],
                                 accuracy=float(raw.get("accuracy", float((preds == labels).mean()))),
                                 macro=Scores(**row(raw["macro avg"])), weighted=Scores(**row(raw["weighted avg"])),
                                 raw=raw)


def compute(study: Study, figures: FigureWriter) -> ReportResult:
    from sklearn.metrics import f1_score
    rows = []
    for v in study.available:
        run = first_run(v)
        labels, probs = run.predictions()
        numbers = classification_numbers(labels, probs, class_names(v.dataset, probs.shape[1]))
        macro_f1 = []
        for r in v.runs:
            y, p = r.predictions()
            macro_f1.append(f1_score(y, p.argmax(1), labels=list(range(p.shape[1])), average="macro", zero_division=0))
        rows.append(VariantReport(**variant_head(v, run), **vars(numbers), test_size=int(len(labels)),
                                  macro_f1_seeds=mean_ci(np.array(macro_f1))))
    return ReportResult(basis=FIRST_SEED, variants=rows)


ANALYSIS = Analysis(
    name="report", title=N_("Classification report"), compute=compute,
    summary=N_("Per-class precision, recall, F1 and support of the first seed's test predictions, with macro F1 "
               "over every seed."),
)
