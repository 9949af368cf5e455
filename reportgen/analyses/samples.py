"""Sample images: the first training images of every class, for each dataset of the study (needs no training)."""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from .. import i18n
from ..figures import IMAGE_CMAP, WIDTH, Figure, FigureWriter, _frameless, _mosaic, _with_bad
from ..i18n import N_
from ..study import Study
from . import Analysis
from ._common import dataset_splits, study_dataset

PER_CLASS = 8  # images per class: one row of the grid


@dataclass
class DatasetSamples:
    dataset: str
    title: str
    classes: list[str]
    per_class: int
    train_counts: list[int]      # training images per class (after the validation hold-out)
    train_size: int
    test_size: int
    size: int                    # pixels per side
    figure: Figure


@dataclass
class SamplesResult:
    datasets: list[DatasetSamples]


def compute(study: Study, figures: FigureWriter, per_class: int = PER_CLASS) -> SamplesResult:
    datasets = list(dict.fromkeys(v.dataset for v in study.available)) or [study_dataset(study)]
    return SamplesResult(datasets=[dataset_samples(ds, figures, per_class) for ds in datasets])


def dataset_samples(ds: str, figures: FigureWriter, per_class: int = PER_CLASS,
                    prefix: str = "samples") -> DatasetSamples:
    """The first ``per_class`` training images of every class of dataset ``ds`` (AnalysisError when it is not
    provisioned), drawn as one grid named ``<prefix>-<ds>`` (each analysis writes its own files)."""
    from ..data import DATASETS
    splits = dataset_splits(ds)
    labels = splits.train_labels.numpy()
    classes = i18n.class_names(splits.classes)
    picks = [np.flatnonzero(labels == c)[:per_class] for c in range(len(classes))]
    grid = np.zeros((len(classes), per_class, *splits.train_images.shape[-2:]), dtype=np.uint8)
    for c, idx in enumerate(picks):
        grid[c, :len(idx)] = splits.train_images[torch.from_numpy(idx)].numpy()
    fig = draw_samples(figures, grid, classes, name=f"{prefix}-{ds}",
                       title=i18n.ngettext("%(dataset)s: %(n)s training image of each class",
                                             "%(dataset)s: %(n)s training images of each class", per_class)
                       % {"dataset": DATASETS[ds].title, "n": per_class})
    return DatasetSamples(dataset=ds, title=DATASETS[ds].title, classes=classes, per_class=per_class,
                          train_counts=np.bincount(labels, minlength=len(classes)).tolist(),
                          train_size=int(len(labels)), test_size=int(len(splits.test_labels)),
                          size=int(splits.train_images.shape[-1]), figure=fig)


def draw_samples(figures: FigureWriter, grid: np.ndarray, classes: list[str], title: str, name: str) -> Figure:
    """Rows of training images, one row per class, the class name on the left."""
    def draw() -> plt.Figure:
        n_cls, per = grid.shape[:2]
        mosaic = _mosaic(grid.reshape(-1, *grid.shape[2:]).astype(float), per, gap=2)
        fig, ax = plt.subplots(figsize=(WIDTH * 0.8, WIDTH * 0.8 * n_cls / per + 0.4))
        ax.imshow(mosaic, cmap=_with_bad(IMAGE_CMAP), vmin=0, vmax=255, interpolation="nearest")
        step = grid.shape[2] + 2
        ax.set_yticks([c * step + grid.shape[2] / 2 for c in range(n_cls)], classes)
        ax.set_xticks([])
        _frameless(ax, tick_marks=False)
        ax.set_title(title)
        fig.tight_layout()
        return fig

    alt = i18n._("%(title)s: a grid with one row per class (%(classes)s)") % {"title": title,
                                                                          "classes": ", ".join(classes)}
    return figures.emit(name, alt, (grid, classes, title), draw)


ANALYSIS = Analysis(
    name="samples", title=N_("Sample images"), compute=compute, needs_training=False,
    summary=N_("The first training images of every class, one grid per dataset of the study."),
)
