"""Data augmentation, one image at a time: a real test image under torchvision's v2 transforms, and under our
batched ``random_affine`` exactly as training applies it. Every random draw is seeded, so the figures never change.
Needs no trained network: it shows the data, not a model."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, TypedDict

import matplotlib.pyplot as plt
import numpy as np
import torch

from .. import i18n
from ..i18n import N_
from ..figures import IMAGE_CMAP, MUTED, WIDTH, Figure, FigureWriter, _tile_axes, _with_bad
from ..i18n import N_
from ..loader import random_affine
from ..study import Study
from . import Analysis
from ._common import dataset_splits, study_dataset

# random_affine's settings when no variant of the study trains with augmentation
AUGMENT_DEMO = {"rotation": 15.0, "translate": 0.1, "scale": (0.9, 1.1), "shear": 10.0}

# A dict, not a dataclass: the partial reads ``.class``, which no Python attribute can be called.
TestImage = TypedDict("TestImage", {"dataset": str, "title": str, "index": int, "class": str})


@dataclass
class Transform:
    name: str
    code: str        # the torchvision call, as the reader would write it


@dataclass
class AffineDemo:
    params: dict[str, Any]     # random_affine's keyword arguments (tuples as lists)
    translate_pct: float       # the largest shift in % of the image side
    translate_px: float        # ... and in pixels
    source: str                # the label of the variant that trains with these settings, or "demo"
    draws: int
    figure: Figure


@dataclass
class AugmentationGalleryResult:
    image: TestImage
    transforms: list[Transform]
    draws: int                 # random draws per torchvision transform
    seed: int
    figure: Figure
    affine: AffineDemo


def _torchvision_augmentations() -> list[tuple[str, str, Callable[[], Any]]]:
    from torchvision.transforms import v2
    return [
        (N_("rotation"), "v2.RandomRotation(degrees=30)", lambda: v2.RandomRotation(degrees=30)),
        (N_("translation"), "v2.RandomAffine(degrees=0, translate=(0.15, 0.15))",
         lambda: v2.RandomAffine(degrees=0, translate=(0.15, 0.15))),
        (N_("shear"), "v2.RandomAffine(degrees=0, shear=(-30, 30, -30, 30))",
         lambda: v2.RandomAffine(degrees=0, shear=(-30, 30, -30, 30))),
        (N_("random crop"), "v2.RandomCrop(28, padding=4)", lambda: v2.RandomCrop(28, padding=4)),
        (N_("horizontal flip"), "v2.RandomHorizontalFlip(p=0.5)", lambda: v2.RandomHorizontalFlip(p=0.5)),
        (N_("vertical flip"), "v2.RandomVerticalFlip(p=0.5)", lambda: v2.RandomVerticalFlip(p=0.5)),
        (N_("brightness / contrast"), "v2.ColorJitter(brightness=0.5, contrast=0.5)",
         lambda: v2.ColorJitter(brightness=0.5, contrast=0.5)),
        (N_("perspective"), "v2.RandomPerspective(distortion_scale=0.4, p=1.0)",
         lambda: v2.RandomPerspective(distortion_scale=0.4, p=1.0)),
    ]


def compute(study: Study, figures: FigureWriter, index: int = 0, draws: int = 6,
            seed: int = 0) -> AugmentationGalleryResult:
    from torchvision import tv_tensors

    from ..data import DATASETS
    ds = study_dataset(study)
    splits = dataset_splits(ds)
    original = splits.test_images[index]
    cls = i18n.class_name(splits.classes[int(splits.test_labels[index])])
    rows, transforms = [], []
    for i, (name, code, make) in enumerate(_torchvision_augmentations()):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + i)
            transform = make()
            outs = [transform(tv_tensors.Image(original.unsqueeze(0)))[0].numpy() for _ in range(draws)]
        rows.append((i18n._(name), np.stack(outs)))
        transforms.append(Transform(name=i18n._(name), code=code))
    fig = draw_augmentations(figures, original.numpy(), rows, name="augmentation-torchvision",
                             title=i18n._("torchvision.transforms.v2 on a %(dataset)s test image (%(class)s), "
                                          "%(n)s random draws each") % {"dataset": DATASETS[ds].title, "class": cls,
                                                                        "n": draws})
    # Our own batched augmentation: the study's settings if a variant trains with them, else a demonstration.
    params, source = dict(AUGMENT_DEMO), "demo"
    for v in study.config.variants:
        augment = study.config.resolve(v, 0, study.profile)["training"].get("augment")
        if augment:
            params = {k: (tuple(val) if isinstance(val, list) else val) for k, val in augment.items()}
            source = v.label or v.name
            break
    generator = torch.Generator().manual_seed(seed)
    batch = original.float().div(255).expand(draws * 2, 1, *original.shape).contiguous()
    augmented = random_affine(batch, generator, **params)[:, 0].clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    fig_affine = draw_augmentations(
        figures, original.numpy(), [("random_affine", augmented)], name="augmentation-random-affine",
        title=i18n._("reportgen.loader.random_affine: %(n)s draws in one batched call") % {"n": len(augmented)})
    affine = AffineDemo(params={k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
                        translate_pct=100 * params["translate"], translate_px=params["translate"] * original.shape[-1],
                        source=source, draws=int(len(augmented)), figure=fig_affine)
    return AugmentationGalleryResult(image={"dataset": ds, "title": DATASETS[ds].title, "index": index, "class": cls},
                                     transforms=transforms, draws=draws, seed=seed, figure=fig, affine=affine)


def draw_augmentations(figures: FigureWriter, original: np.ndarray, rows: list[tuple[str, np.ndarray]], title: str,
                       name: str) -> Figure:
    """One row per transform: the original image, then its random draws."""
    def draw() -> plt.Figure:
        draws = max(len(imgs) for _, imgs in rows)
        tiles = np.full((len(rows), draws + 1, *original.shape), np.nan)
        for r, (_, imgs) in enumerate(rows):
            tiles[r, 0] = original
            tiles[r, 1:len(imgs) + 1] = imgs
        label_w = 1.9 if len(rows) > 1 else 0.0
        pitch = 1.1
        cell = (WIDTH - 0.3) / (label_w + (draws + 1) * pitch + 0.3)
        fig, ax = plt.subplots(figsize=(WIDTH, 0.55 + cell * len(rows) * pitch + 0.2))
        for r, (label, _) in enumerate(rows):
            for c in range(draws + 1):
                x0, y0 = label_w + c * pitch + (0.3 if c else 0), r * pitch
                ax.imshow(tiles[r, c], cmap=_with_bad(IMAGE_CMAP), vmin=0, vmax=255,
                          extent=(x0, x0 + 1, y0 + 1, y0), interpolation="nearest")
            if label_w:
                ax.text(label_w - 0.1, r * pitch + 0.5, label, ha="right", va="center", fontsize=8)
        ax.text(label_w + 0.5, -0.05, i18n._("original"), ha="center", va="bottom", fontsize=7.5, color=MUTED)
        ax.text(label_w + 1.3 + draws * pitch / 2, -0.05, i18n._("random draws"), ha="center", va="bottom", fontsize=7.5,
                color=MUTED)
        _tile_axes(ax, label_w + (draws + 1) * pitch + 0.3 - (pitch - 1), len(rows) * pitch, top=-0.4, left=0)
        ax.set_title(title, fontsize=10)
        fig.tight_layout()
        return fig

    alt = i18n._("%(title)s: one row per transform (%(transforms)s), the original on the left") % {
        "title": title, "transforms": ", ".join(r[0] for r in rows)}
    return figures.emit(name, alt, (original, rows, title), draw)


ANALYSIS = Analysis(
    name="augmentation_gallery", title=N_("Data augmentation gallery"), compute=compute, needs_training=False,
    summary=N_("A test image under torchvision's v2 transforms and under the batched random_affine training uses."),
)
