"""The results store: one directory per run, written atomically, complete only when its marker exists.

Layout: ``results/<study>/<variant>/seed-<n>/`` holding

- ``config.json``     the resolved run config (what was trained)
- ``history.json``    per-epoch train/validation loss and accuracy, wall time per epoch, best epoch
- ``metrics.json``    final test metrics of the best-validation checkpoint
- ``predictions.npz`` test labels and class probabilities (loaded with ``allow_pickle=False``)
- ``weights.safetensors`` the best-validation weights (safetensors: loading never runs code)
- ``run.json``        versions, device, wall time, git commit, dataset checksum, cache key
- ``COMPLETE.json``   the marker, written last: cache key and the SHA-256 of every file above

A complete run that a run with another cache key replaces (another profile, or a config edited and edited back)
is not deleted: it moves to ``results/<study>/<variant>/.kept/seed-<n>-<cache key>/``. Asked for again, it is moved
back by a rename instead of being retrained, and rendering reads it from there meanwhile, so switching between
``--profile quick`` and ``--profile full`` never throws away an hour of training.

A run is written into a hidden staging directory and renamed into place, so a run killed at any moment leaves
either the previous complete run (in its slot, or moved to ``.kept/``) or nothing that looks complete. The next
``reportgen run`` (holding the store's lock) removes what a killed writer left; a staging directory that was
already complete when the writer died (killed between moving the old run aside and moving the new one in) is put
in place instead, as is a moved-aside old run that nothing replaced.

Test hook (off by default, for the fault-injection tests only): ``REPORTGEN_TEST_WRITE_DELAY=<seconds>`` (or a
comma-separated list of them, one per run written, :func:`reportgen.fsutil.pause_for_tests`) makes
:meth:`Store.write_run` sleep after each file it stages and (in :func:`reportgen.fsutil.swap_dir`) between moving
the old run aside and moving the new one in, so a test can kill the process at each of those moments.
"""
from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict

from . import __version__
# write_run looks atomic_write up in this module, so the fault tests can patch it here
from .fsutil import atomic_write, fsync_dir, pause_for_tests, sha256_bytes, sha256_file, swap_dir
from .settings import ENV_RESULTS

if TYPE_CHECKING:
    import torch

MARKER = "COMPLETE.json"
KEPT = ".kept"  # per variant: the complete runs that a run with another cache key replaced (see the docstring)
RUN_FILES = ("config.json", "history.json", "metrics.json", "predictions.npz", "weights.safetensors", "run.json")


class StoreError(Exception):
    """A one-line problem with the results directory."""


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def cache_key(resolved: dict[str, Any], dataset_checksum: str) -> str:
    """Hash of everything that determines a run's numbers: resolved config, data, package version and the
    training engine (threads per CPU run, memory layout)."""
    from .settings import TRAINING_ENGINE
    payload = {"config": resolved, "dataset_sha256": dataset_checksum, "reportgen": __version__,
               "engine": TRAINING_ENGINE}
    return sha256_bytes(canonical_json(payload).encode())[:20]


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@dataclass(frozen=True)
class RunState:
    """What the store knows about one run slot."""
    status: str  # 'complete', 'missing', 'incomplete', 'stale', 'corrupt' (plan_runs adds 'kept')
    reason: str = ""


class _Stored(BaseModel):
    # what training wrote (reportgen.train.run_files); fields it may add later are kept, not refused
    model_config = ConfigDict(extra="allow")


class Epoch(_Stored):
    """One epoch of ``history.json``: running training loss and accuracy, validation loss and accuracy
    (fractions), and its wall time."""
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: Optional[float] = None
    val_acc: float
    seconds: Optional[float] = None


class RunHistory(_Stored):
    """``history.json``: every epoch, and the epoch of the highest validation accuracy (1-based)."""
    epochs: list[Epoch]
    best_epoch: int


class StoredNormalization(_Stored):
    """The training split's pixel mean and standard deviation the run was normalised with."""
    mean: float
    std: float


class RunMetrics(_Stored):
    """``metrics.json``: the test metrics of the best-validation checkpoint (accuracies as fractions)."""
    test_loss: float
    test_acc: float
    best_epoch: int
    best_val_acc: float
    parameters: int
    test_size: Optional[int] = None  # runs of early versions did not record it
    normalization: StoredNormalization


class RunRecord(_Stored):
    """``run.json``: where, when and with what the run was made (what rendering reads is typed; the rest, e.g.
    ``study``, ``started``, ``epoch_seconds``, stays as written: records of early versions named other keys)."""
    cache_key: str
    wall_seconds: float
    device: str = ""                       # "cpu (x86_64, 1 thread)", "cuda (NVIDIA H100 ...)"
    versions: dict[str, str] = {}
    git_commit: Optional[str] = None
    dataset_sha256: Optional[str] = None
    train_size: Optional[int] = None
    executor: str = "local"                # runs recorded before `--executor` existed were all local


class Run:
    """A complete run, read back for analysis and rendering. Never modifies the files. ``config`` is the resolved
    run config exactly as stored (plain data: it is what the cache key hashes)."""

    def __init__(self, path: Path):
        self.path = path
        self.config: dict[str, Any] = json.loads((path / "config.json").read_text())
        self.history = RunHistory.model_validate(json.loads((path / "history.json").read_text()))
        self.metrics = RunMetrics.model_validate(json.loads((path / "metrics.json").read_text()))
        self.record = RunRecord.model_validate(json.loads((path / "run.json").read_text()))

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    def predictions(self) -> tuple[np.ndarray, np.ndarray]:
        """(test labels [N], class probabilities [N, C])."""
        with np.load(self.path / "predictions.npz", allow_pickle=False) as z:
            return z["labels"], z["probs"]

    def state_dict(self) -> dict[str, "torch.Tensor"]:
        from safetensors.torch import load_file
        return load_file(str(self.path / "weights.safetensors"))

    def load_model(self, device: str = "cpu"):
        """The best-validation model, in eval mode."""
        from .models import build_config
        model = build_config(self.config["model"])
        model.load_state_dict(self.state_dict())
        return model.to(device).eval()


class Store:
    def __init__(self, root: str | Path = "results"):
        self.root = Path(root)
        self.runs_written = 0  # by this process, through this store (the test hook's per-run delays)

    def run_dir(self, study: str, variant: str, seed: int) -> Path:
        return self.root / study / variant / f"seed-{seed}"

    # ---- reading --------------------------------------------------------------------------------------
    def state(self, study: str, variant: str, seed: int, key: str | None = None) -> RunState:
        path = self.run_dir(study, variant, seed)
        return check_run(path, key)

    def load(self, study: str, variant: str, seed: int) -> Run:
        path = self.run_dir(study, variant, seed)
        state = check_run(path)
        if state.status != "complete":
            raise StoreError(f"{path}: run is {state.status}{': ' + state.reason if state.reason else ''}")
        return Run(path)

    @staticmethod
    def kept_dir(slot: Path, key: str) -> Path:
        """Where the complete run of cache key ``key`` for ``slot`` (a ``seed-<n>`` directory) is kept."""
        return slot.parent / KEPT / f"{slot.name}-{key}"

    @staticmethod
    def is_kept(path: Path, slot: Path) -> bool:
        """Is ``path`` one of the runs kept for ``slot``?"""
        return path.parent == slot.parent / KEPT and path.name.startswith(f"{slot.name}-")

    def kept_runs(self, study: str, variant: str, seed: int) -> list[Path]:
        """The runs kept for this slot when runs with other cache keys replaced them, newest first."""
        found = (self.root / study / variant / KEPT).glob(f"seed-{seed}-*")
        return sorted((p for p in found if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)

    def find_complete(self, key: str, exclude: Path | None = None) -> Path | None:
        """Another complete run with the same cache key (identical config and data): the run kept for the slot
        ``exclude`` itself, or e.g. a baseline shared by several studies; it is restored or copied instead of
        retrained."""
        own = [] if exclude is None else [self.kept_dir(exclude, key) / MARKER]
        for marker in [m for m in own if m.exists()] + sorted(self.root.glob(f"*/*/seed-*/{MARKER}")) \
                + sorted(self.root.glob(f"*/*/{KEPT}/seed-*/{MARKER}")):
            if exclude is not None and marker.parent == exclude:
                continue
            try:
                if json.loads(marker.read_text()).get("cache_key") == key and check_run(marker.parent, key).status == "complete":
                    return marker.parent
            except (OSError, ValueError):
                continue
        return None

    # ---- writing --------------------------------------------------------------------------------------
    def write_run(self, study: str, variant: str, seed: int, key: str, files: dict[str, bytes]) -> Path:
        """Stage every file, write the marker last, then swap the staging directory into place."""
        missing = set(RUN_FILES) - set(files)
        if missing:
            raise ValueError(f"run files missing: {sorted(missing)}")
        final = self.run_dir(study, variant, seed)
        staging = final.parent / f".{final.name}.partial-{os.getpid()}"
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            for name, data in files.items():
                atomic_write(staging / name, data)
                pause_for_tests(self.runs_written)
            marker = {"cache_key": key, "files": {name: sha256_bytes(data) for name, data in sorted(files.items())}}
            atomic_write(staging / MARKER, json_bytes(marker))
            self._keep(final, key)
            self._swap_in(staging, final)
            self.runs_written += 1
            # a kept run with this key (e.g. before --force retrained it) is superseded by the one now in place
            shutil.rmtree(self.kept_dir(final, key), ignore_errors=True)
        except BaseException as exc:  # full disk, read-only directory, Ctrl-C: nothing half-written stays behind
            if not (staging / MARKER).exists():  # a complete staging run is left for clean_partials to put in place
                shutil.rmtree(staging, ignore_errors=True)
            if not isinstance(exc, OSError):
                raise
            raise StoreError(f"cannot write the run {final}: {exc.strerror or exc}"
                             f"{' (' + str(exc.filename) + ')' if exc.filename else ''}; "
                             "free space or fix permissions and run again (finished runs are kept)") from None
        return final

    def copy_run(self, source: Path, study: str, variant: str, seed: int) -> Path:
        """Put the complete run ``source`` in this slot: moved back by renames when it is the slot's own kept
        run, else copied through a staging directory. Whatever complete run the slot held is kept."""
        final = self.run_dir(study, variant, seed)
        staging = final.parent / f".{final.name}.partial-{os.getpid()}"
        try:
            key = json.loads((source / MARKER).read_text()).get("cache_key", "")
            if self.is_kept(source, final):
                self._keep(final, key)
                if final.exists():  # an incomplete or corrupt leftover: nothing worth keeping
                    shutil.rmtree(final)
                os.replace(source, final)
                fsync_dir(final.parent)
                return final
            final.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(source, staging)
            self._keep(final, key)
            self._swap_in(staging, final)
        except (OSError, ValueError, shutil.Error) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise StoreError(f"cannot copy {source} to {final}: {exc}") from None
        return final

    @classmethod
    def _keep(cls, final: Path, key: str) -> None:
        """Before a run with cache key ``key`` replaces ``final``: if ``final`` is a complete run with another key,
        move it (one rename) to the slot's kept runs, unless an identical run is kept there already."""
        if check_run(final).status != "complete":
            return
        old_key = json.loads((final / MARKER).read_text()).get("cache_key")
        if not old_key or old_key == key:
            return
        kept = cls.kept_dir(final, old_key)
        if kept.exists():
            if check_run(kept, old_key).status == "complete":
                return  # the same run is kept already; the slot's copy is replaced as usual
            shutil.rmtree(kept)
        kept.parent.mkdir(exist_ok=True)
        os.replace(final, kept)
        fsync_dir(kept.parent)

    @staticmethod
    def _swap_in(staging: Path, final: Path) -> None:
        swap_dir(staging, final, final.parent / f".{final.name}.old-{os.getpid()}")

    def clean_partials(self) -> tuple[int, int]:
        """Tidy up after killed writers (call it holding :meth:`lock`); returns (removed, restored).

        A staging directory is removed, unless it is a complete run whose slot is empty (the writer died between
        moving the old run aside and moving this one in): then it is moved into place. A moved-aside old run is
        restored when nothing took its place, else removed. Nothing incomplete is ever moved into a slot."""
        removed = restored = 0
        leftovers = sorted(self.root.glob("*/*/.seed-*.partial-*")) + sorted(self.root.glob("*/*/.seed-*.old-*"))
        for path in leftovers:
            slot = path.parent / path.name[1:].split(".", 1)[0]  # .seed-0.partial-123 -> seed-0
            if path.is_dir() and not slot.exists() and check_run(path).status == "complete":
                os.replace(path, slot)
                fsync_dir(slot.parent)
                restored += 1
            else:
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        return removed, restored

    def lock(self) -> "StoreLock":
        return StoreLock(self.root)


def check_run(path: Path, key: str | None = None) -> RunState:
    """Is the run at ``path`` complete, and (with ``key``) is it the run this config asks for?"""
    if not path.exists():
        return RunState("missing")
    marker_path = path / MARKER
    if not marker_path.exists():
        return RunState("incomplete", "no completion marker (the run was interrupted)")
    try:
        marker = json.loads(marker_path.read_text())
        recorded = marker["files"]
        if not isinstance(recorded, dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        return RunState("corrupt", f"{MARKER} is unreadable")
    for name in RUN_FILES:
        file = path / name
        if name not in recorded:
            return RunState("corrupt", f"{name} is not recorded in {MARKER}")
        if not file.is_file():
            return RunState("corrupt", f"{name} was deleted")
        try:
            digest = sha256_file(file)
        except OSError as exc:
            return RunState("corrupt", f"{name} is unreadable ({exc.strerror or exc})")
        if digest != recorded[name]:
            return RunState("corrupt", f"{name} was modified or truncated (its SHA-256 no longer matches)")
    if key is not None and marker.get("cache_key") != key:
        return RunState("stale", "config, data or reportgen version changed since it ran")
    return RunState("complete")


class StoreLock:
    """An exclusive lock on the results directory: two `reportgen run` never write into it at once."""

    def __init__(self, root: Path):
        self.path = root / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> "StoreLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot lock the results directory {self.path.parent}: {exc.strerror or exc} "
                             f"(it must be a writable directory; pass --results DIR or set {ENV_RESULTS})") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(self.fd)
            self.fd = None
            raise StoreError(f"{self.root_name}: another `reportgen run` (pid {holder}) is writing results; "
                             "wait for it to finish and run again") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        return self

    @property
    def root_name(self) -> str:
        return str(self.path.parent)

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
