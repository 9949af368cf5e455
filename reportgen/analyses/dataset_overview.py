"""Every dataset reportgen can train on, before any training: sample images of each class, the class names, the
split sizes the runs use and the pixel statistics they are normalised with (needs no training).

A dataset that is not provisioned on the machine that renders the post is listed with the reason and the command
that provisions it, instead of failing the post: the other datasets are still shown.
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from .. import i18n
from ..figures import IMAGE_CMAP, WIDTH, Figure, FigureWriter, _frameless, _mosaic, _with_bad
from ..i18n import N_
from ..loader import Normalization
from ..settings import SPLIT_SEED
from ..study import Study
from . import Analysis, AnalysisError
from ._common import dataset_splits
from .samples import PER_CLASS, DatasetSamples, dataset_samples


@dataclass
class PixelStatistics:
    mean: float                  # of the training split's pixels scaled to [0, 1]: what training subtracts
    std: float                   # ... and divides by (reportgen.loader.Normalization, the same function)
    zero_pct: float              # share of the training pixels that are exactly 0 (black background)
    input_low: float             # a black pixel after normalisation: (0 − mean) / std
    input_high: float            # a white pixel after normalisation: (1 − mean) / std


@dataclass
class DatasetOverview:
    dataset: str
    title: str
    fetch: str                              # the command that provisions it
    missing: str | None = None              # why it is not shown (not provisioned here); None: shown
    samples: DatasetSamples | None = None   # sample grid, class names, training images per class
    val_size: int = 0
    val_counts: list[int] | None = None
    test_counts: list[int] | None = None
    pixels: PixelStatistics | None = None
    class_means: Figure | None = None       # the average training image of each class


@dataclass
class DatasetOverviewResult:
    datasets: list[DatasetOverview]
    per_class: int
    split_seed: int

    @property
    def shown(self) -> list[DatasetOverview]:
        return [d for d in self.datasets if d.missing is None]

    @property
    def missing(self) -> list[DatasetOverview]:
        return [d for d in self.datasets if d.missing is not None]


def compute(study: Study, figures: FigureWriter, per_class: int = PER_CLASS) -> DatasetOverviewResult:
    from ..data import DATASETS
    # the study's own dataset first (the one its post is about), then the others in the catalogue's order
    names = [study.config.dataset] + [name for name in DATASETS if name != study.config.dataset]
    return DatasetOverviewResult(datasets=[overview(name, figures, per_class) for name in names],
                                 per_class=per_class, split_seed=SPLIT_SEED)


def overview(name: str, figures: FigureWriter, per_class: int = PER_CLASS) -> DatasetOverview:
    """One dataset's overview, or the reason it cannot be shown (it is not provisioned here)."""
    from ..data import DATASETS
    entry = DatasetOverview(dataset=name, title=DATASETS[name].title, fetch=f"reportgen data fetch {name}")
    try:
        splits = dataset_splits(name)
    except AnalysisError as exc:
        entry.missing = str(exc)
        return entry
    n_classes = len(splits.classes)
    entry.samples = dataset_samples(name, figures, per_class, prefix="overview-samples")
    entry.val_size = len(splits.val_labels)
    entry.val_counts = np.bincount(splits.val_labels.numpy(), minlength=n_classes).tolist()
    entry.test_counts = np.bincount(splits.test_labels.numpy(), minlength=n_classes).tolist()
    norm = Normalization.of(splits.train_images)  # exactly what a run on the whole training split computes
    entry.pixels = PixelStatistics(
        mean=norm.mean, std=norm.std,
        zero_pct=100.0 * int((splits.train_images == 0).sum()) / splits.train_images.numel(),
        input_low=(0.0 - norm.mean) / norm.std, input_high=(1.0 - norm.mean) / norm.std)
    size = tuple(splits.train_images.shape[1:])
    means = np.stack([splits.train_images[splits.train_labels == c].float().mean(0).numpy()
                      if bool((splits.train_labels == c).any()) else np.zeros(size, dtype=np.float32)
                      for c in range(n_classes)])
    entry.class_means = draw_class_means(figures, means, i18n.class_names(splits.classes), name=f"class-means-{name}",
                                         title=i18n._("%(dataset)s: the average training image of each class")
                                         % {"dataset": entry.title})
    return entry


def draw_class_means(figures: FigureWriter, means: np.ndarray, classes: list[str], title: str,
                     name: str) -> Figure:
    """One average image per class in a row, on the images' own 0–255 grey scale, the class name below."""
    def draw() -> plt.Figure:
        n = len(means)
        fig, ax = plt.subplots(figsize=(WIDTH, WIDTH / n + 0.8))
        ax.imshow(_mosaic(means, n, gap=2), cmap=_with_bad(IMAGE_CMAP), vmin=0, vmax=255, interpolation="nearest")
        step = means.shape[-1] + 2
        ax.set_xticks([c * step + means.shape[-1] / 2 for c in range(n)], classes, fontsize=8, rotation=30)
        ax.set_yticks([])
        _frameless(ax, tick_marks=False)
        ax.set_title(title)
        fig.tight_layout()
        return fig

    alt = i18n._("%(title)s: one blurred average image per class (%(classes)s)") % {"title": title,
                                                                                    "classes": ", ".join(classes)}
    return figures.emit(name, alt, (means.round(3), classes, title), draw)


def findings(result: DatasetOverviewResult) -> list[str]:
    """For a closing section: the split sizes and normalisation of each dataset shown, and which were not."""
    out = [f"{d.title}: {d.samples.train_size:,} training, {d.val_size:,} validation and "
           f"{sum(d.test_counts):,} test images in {len(d.samples.classes)} classes; its training pixels have mean "
           f"{d.pixels.mean:.4f} and standard deviation {d.pixels.std:.4f} on a 0–1 scale."
           for d in result.shown]
    out += [f"{d.title} is not shown: it was not provisioned on the machine that built this post." for d in result.missing]
    return out


ANALYSIS = Analysis(
    name="dataset_overview", title=N_("The datasets"), compute=compute, needs_training=False, findings=findings,
    summary=N_("Every dataset reportgen can train on: sample images of each class, class names, split sizes and "
               "pixel statistics (a dataset that is not provisioned is listed with the command that fetches it)."),
)
