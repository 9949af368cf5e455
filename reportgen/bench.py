"""`reportgen bench`: our device-resident engine against the usual torchvision pipeline, side by side, one process.

The usual pipeline is the one in pytorch/examples' mnist/main.py: a torchvision ``Dataset`` whose
``__getitem__`` makes a PIL image and runs PIL transforms per image, a ``DataLoader`` at batch size 64 that
collates the tensors, and (with augmentation) torchvision's ``RandomAffine`` on each PIL image. Ours keeps the
split on the device as one uint8 tensor and augments whole batches at once (``reportgen.loader``). Both train the
same LeNet from the same initial weights with Adam for the same number of epochs; we report seconds per epoch,
the ratio, and the test accuracy each reaches. Timings are ratios measured in one run on one machine.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .data import DATASETS, data_root, load_splits, validation_split
from .loader import DeviceLoader, Normalization
from .models import build_model
from .provision import provision
from .settings import SPLIT_SEED, VAL_SIZE
from .train import describe_device, evaluate, resolve_device

AUGMENT = {"rotation": 10.0, "translate": 0.1, "scale": (0.9, 1.1), "shear": 10.0}


def _train_epochs(model, batches: Callable, epochs: int, device: torch.device) -> list[float]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    seconds = []
    for _ in range(epochs):
        model.train()
        started = time.perf_counter()
        for x, y in batches():
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return seconds


def _torchvision_loader(dataset: str, train_idx: np.ndarray, norm: Normalization, batch_size: int, augment: bool,
                        seed: int):
    from torchvision import transforms

    steps = [transforms.RandomAffine(degrees=AUGMENT["rotation"], translate=(AUGMENT["translate"],) * 2,
                                     scale=AUGMENT["scale"], shear=AUGMENT["shear"])] if augment else []
    steps += [transforms.ToTensor(), transforms.Normalize((norm.mean,), (norm.std,))]
    full = DATASETS[dataset].tv_class(str(data_root()), train=True, download=False,
                                      transform=transforms.Compose(steps))
    subset = torch.utils.data.Subset(full, train_idx.tolist())
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=True, generator=generator)


def run_bench(epochs: int = 2, dataset: str = "fashion-mnist", batch_size: int = 64, engine_batch_size: int = 128,
              device: str = "auto", log: Callable[[str], None] = print) -> list[dict]:
    """Time both pipelines with and without augmentation; return one row per (pipeline, augmentation)."""
    provision(dataset, log=log)
    torch_device = resolve_device(device)
    splits = load_splits(dataset)
    full_train = DATASETS[dataset].tv_class(str(data_root()), train=True, download=False)
    train_idx, _ = validation_split(full_train.targets, VAL_SIZE, SPLIT_SEED)  # the same images as load_splits
    norm = Normalization.of(splits.train_images)
    log(f"bench: LeNet on {dataset}, {len(train_idx):,} training images, {epochs} epoch(s) each, "
        f"device {describe_device(torch_device)}, torch {torch.__version__}")
    rows = []
    for augment in (False, True):
        aug = AUGMENT if augment else None
        contenders = [
            (f"torchvision Dataset + DataLoader + PIL, batch {batch_size}", batch_size,
             lambda bs: _torchvision_loader(dataset, train_idx, norm, bs, augment, seed=0)),
            (f"reportgen device-resident, batch {batch_size}", batch_size,
             lambda bs: DeviceLoader(splits.train_images, splits.train_labels, bs, norm, torch_device, shuffle=True,
                                     seed=0, augment=aug)),
            (f"reportgen device-resident, batch {engine_batch_size}", engine_batch_size,
             lambda bs: DeviceLoader(splits.train_images, splits.train_labels, bs, norm, torch_device, shuffle=True,
                                     seed=0, augment=aug)),
        ]
        for name, bs, make in contenders:
            torch.manual_seed(0)
            model = build_model("lenet").to(torch_device)
            loader = make(bs)
            seconds = _train_epochs(model, lambda: loader, epochs, torch_device)
            _, acc, _ = evaluate(model, splits.test_images, splits.test_labels, norm, torch_device)
            rows.append({"pipeline": name, "augment": augment, "batch_size": bs,
                         "seconds_per_epoch": float(np.mean(seconds)), "test_acc": acc})
            log(f"  {'augmented' if augment else 'plain':<9} {name:<48} {np.mean(seconds):7.2f} s/epoch   "
                f"test accuracy {100 * acc:.2f}%")
    log("")
    log("speed-up over the torchvision pipeline (same augmentation setting):")
    for augment in (False, True):
        group = [r for r in rows if r["augment"] == augment]
        base = group[0]
        for r in group[1:]:
            ratio = base["seconds_per_epoch"] / r["seconds_per_epoch"]
            delta = 100 * (r["test_acc"] - base["test_acc"])
            log(f"  {'augmented' if augment else 'plain':<9} {r['pipeline']:<48} {ratio:5.2f}x faster, "
                f"accuracy {delta:+.2f} points")
    return rows
