"""The fast side of the data: a device-resident loader with batched, per-sample augmentation.

Following airbench: the whole split lives on the device as one uint8 tensor, each epoch draws one permutation
and slices batches from it, and augmentation is one batched ``affine_grid``/``grid_sample`` call with a different
random affine matrix per image, never a Python loop over images. From the outside it is an ordinary loader::

    for images, labels in loader:   # float32 [B, 1, 28, 28] normalised, int64 [B]
        ...
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Optional

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Normalization:
    """Per-dataset pixel statistics of the training split (images in [0, 1])."""
    mean: float
    std: float

    @classmethod
    def of(cls, images_uint8: torch.Tensor) -> "Normalization":
        x = images_uint8.float().div_(255)
        return cls(mean=round(float(x.mean()), 6), std=round(float(x.std()), 6))

    def apply(self, images01: torch.Tensor) -> torch.Tensor:
        return (images01 - self.mean) / self.std


def to_input(images_uint8: torch.Tensor, norm: Normalization) -> torch.Tensor:
    """uint8 [N, 28, 28] -> normalised float32 [N, 1, 28, 28], the exact preprocessing used in training."""
    return norm.apply(images_uint8.unsqueeze(1).float().div(255))


def random_affine(images01: torch.Tensor, generator: torch.Generator, rotation: float = 0.0,
                  translate: float = 0.0, scale: tuple[float, float] = (1.0, 1.0), shear: float = 0.0) -> torch.Tensor:
    """Apply a different random affine transform to every image of a [B, C, H, W] batch in [0, 1].

    ``rotation`` and ``shear`` in degrees (uniform in ±value), ``translate`` as a fraction of the image size
    (uniform in ±value, each axis), ``scale`` a (low, high) range. Pixels from outside the image are black (0),
    as for torchvision's RandomAffine with fill=0.
    """
    b, device = images01.shape[0], images01.device

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(b, generator=generator, device=device) * (high - low) + low

    angle = torch.deg2rad(uniform(-rotation, rotation))
    shear_x = torch.deg2rad(uniform(-shear, shear))
    s = uniform(scale[0], scale[1])
    # affine_grid works in normalised coordinates [-1, 1]: a shift of t * size is 2 * t there.
    tx, ty = uniform(-translate, translate) * 2, uniform(-translate, translate) * 2
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Forward map A = R(angle) @ Shear(shear_x) @ S(s); grid_sample needs the inverse (output -> input).
    a = torch.stack([
        torch.stack([cos * s, (cos * torch.tan(shear_x) - sin) * s], dim=-1),
        torch.stack([sin * s, (sin * torch.tan(shear_x) + cos) * s], dim=-1),
    ], dim=-2)
    a_inv = torch.linalg.inv(a)
    shift = torch.stack([tx, ty], dim=-1).unsqueeze(-1)
    theta = torch.cat([a_inv, -a_inv @ shift], dim=-1)
    grid = F.affine_grid(theta, list(images01.shape), align_corners=False)
    return F.grid_sample(images01, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class DeviceLoader:
    """Batches of a split that lives on ``device``; shuffled by a seeded generator, augmented per batch."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, norm: Normalization,
                 device: torch.device | str = "cpu", shuffle: bool = False, seed: int = 0,
                 augment: Optional[dict] = None, drop_last: bool = False):
        self.device = torch.device(device)
        self.images = images.to(self.device)  # stays uint8: 4x less memory than float
        self.labels = labels.to(self.device)
        self.batch_size = batch_size
        self.norm = norm
        self.shuffle = shuffle
        self.augment = augment if augment and any(_active(k, v) for k, v in augment.items()) else None
        self.drop_last = drop_last
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = (torch.randperm(n, generator=self.generator, device=self.device) if self.shuffle
                 else torch.arange(n, device=self.device))
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start:start + self.batch_size]
            x = self.images[idx].unsqueeze(1).float().div_(255)
            if self.augment is not None:
                x = random_affine(x, self.generator, **self.augment)
            yield self.norm.apply(x), self.labels[idx]


def _active(name: str, value: object) -> bool:
    if name == "scale":
        return tuple(value) != (1.0, 1.0)  # type: ignore[arg-type]
    return bool(value)
