"""Runs: which (study, variant, seed) runs a command trains, what each one leaves in the results store (its files
and its record: versions, device, executor, git commit, timing), and the order in which they are trained, copied
from an identical twin or moved back from where they were kept.

Where a run trains is an executor's business (:mod:`reportgen.executors`): it hands :func:`train_files` a planned
run and gets the run's files back as bytes; the driver alone writes them into the store (:func:`train_all`).
"""
from __future__ import annotations

import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import __version__
from .settings import CPU_THREADS_PER_RUN
from .store import RunState, Store, cache_key, check_run, json_bytes, npz_bytes

if TYPE_CHECKING:  # torch and the training loop are imported when a run trains: a warm `run` needs neither
    import torch

    from . import train
    from .executors import Executor

Log = Callable[[str], None]


class DeviceError(Exception):
    """The requested device is not available."""


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU."""
    import torch
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        built = "with" if torch.backends.cuda.is_built() else "without"
        raise DeviceError(f"--device cuda: no CUDA device is available (torch {torch.__version__} was built {built} "
                          "CUDA support); use --device cpu or --device auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError("--device mps: Apple MPS is not available here; use --device cpu or --device auto")
    return torch.device(name)


def describe_device(device: torch.device, threads: int = CPU_THREADS_PER_RUN) -> str:
    """The device in words; on a CPU with the threads a run trains on (``train_run`` pins them), not this
    process's current thread count."""
    import torch
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({platform.processor() or platform.machine()}, {threads} thread{'s' if threads != 1 else ''})"
    return device.type


def deterministic(enable: bool = True) -> None:
    """Same seed, same config, same machine -> same numbers (CPU kernels are deterministic with this)."""
    import torch
    torch.use_deterministic_algorithms(enable, warn_only=True)


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    commit = out.stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                           capture_output=True, text=True, timeout=5).stdout.strip()
    return commit + ("-dirty" if dirty else "")


def versions() -> dict[str, str]:
    import torch
    import torchvision
    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": np.__version__, "reportgen": __version__}


# ---- planning --------------------------------------------------------------------------------------------------
@dataclass
class PlannedRun:
    """One (study, variant, seed) slot and what the store says about it."""
    study: str
    variant: str
    seed: int
    dataset: str
    config: dict[str, Any]
    key: str | None      # None when the dataset is not provisioned yet
    status: str          # complete / kept / missing / incomplete / stale / corrupt / no-data
    reason: str = ""

    @property
    def name(self) -> str:
        return f"{self.study}/{self.variant}/seed-{self.seed}"


def plan_runs(studies: dict, names: list[str], profile: str, store: Store,
              checksums: dict[str, str | None], exercises: dict[str, list[Any]] | None = None) -> list[PlannedRun]:
    """Every run the named studies declare under ``profile``, with its cache status; with ``exercises`` (study ->
    the variants of its chosen exercises, :func:`reportgen.exercises.extra_variants`) those runs too."""
    planned = []
    for name in names:
        _, exp = studies[name]
        if not exp.trains:
            continue
        for variant in [*exp.variants, *(exercises or {}).get(name, [])]:
            dataset = variant.dataset or exp.dataset
            for seed in exp.profile(profile).seeds:
                config = exp.resolve(variant, seed, profile)
                checksum = checksums.get(dataset)
                if checksum is None:
                    planned.append(PlannedRun(name, variant.name, seed, dataset, config, None, "no-data",
                                              f"{dataset} is not provisioned"))
                    continue
                key = cache_key(config, checksum)
                state = store.state(name, variant.name, seed, key)
                kept = store.kept_dir(store.run_dir(name, variant.name, seed), key)
                if state.status != "complete" and check_run(kept, key).status == "complete":
                    state = RunState("kept", "this config's run was kept when another replaced it; run moves it back")
                planned.append(PlannedRun(name, variant.name, seed, dataset, config, key, state.status, state.reason))
    return planned


def split_twins(todo: list[Any], force: bool) -> tuple[list[Any], list[Any]]:
    """The first run of each cache key, and the later ones (copied from it once it exists)."""
    first, later, seen = [], [], set()
    for p in todo:
        (later if (p.key in seen and not force) else first).append(p)
        seen.add(p.key)
    return first, later


# ---- one run: train it, and what it leaves in the store ----------------------------------------------------------
@dataclass
class TrainedRun:
    """A trained run, serialised: the files the driver writes into the store, and the line it logs."""
    files: dict[str, bytes]
    summary: str


def train_files(run: PlannedRun, splits: Any, device: torch.device, profile: str, executor: str,
                log: Log) -> TrainedRun:
    """Train ``run`` on ``splits`` and serialise everything it leaves in the store; ``executor`` names where it
    trained (``local`` or ``ray``), for its record."""
    from . import train
    started, wall = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.perf_counter()
    out = train.train_run(run.config, splits, device, name=run.name, progress=log)
    record = {
        "study": run.study, "variant": run.variant, "seed": run.seed, "profile": profile,
        "cache_key": run.key, "dataset": run.dataset, "dataset_sha256": splits.checksum,
        "device": describe_device(device), "executor": executor, "versions": versions(), "git_commit": git_commit(),
        "started": started, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": round(time.perf_counter() - wall, 3), "epoch_seconds": [round(s, 3) for s in out.epoch_seconds],
        "train_size": int(min(len(splits.train_labels), run.config.get("train_limit") or len(splits.train_labels))),
    }
    summary = (f"{run.name}: test accuracy {out.test_acc:.4f} (best epoch {out.best_epoch}), "
               f"{record['wall_seconds']:.1f}s")
    return TrainedRun(run_files(run.config, out, record), summary)


def run_files(config: dict[str, Any], out: train.RunOutput, record: dict[str, Any]) -> dict[str, bytes]:
    """Everything a run leaves in the store, serialised."""
    from safetensors.torch import save
    metrics = {"test_loss": out.test_loss, "test_acc": out.test_acc, "best_epoch": out.best_epoch,
               "best_val_acc": out.history[out.best_epoch - 1]["val_acc"], "parameters": out.parameters,
               "test_size": int(len(out.test_labels)),
               "normalization": {"mean": out.norm.mean, "std": out.norm.std}}
    history = {"epochs": out.history, "best_epoch": out.best_epoch}
    return {
        "config.json": json_bytes(config),
        "history.json": json_bytes(history),
        "metrics.json": json_bytes(metrics),
        "predictions.npz": npz_bytes(labels=out.test_labels, probs=out.test_probs),
        "weights.safetensors": save({k: v.contiguous() for k, v in out.best_state.items()}),
        "run.json": json_bytes(record),
    }


def write_trained(store: Store, run: PlannedRun, trained: TrainedRun, log: Log) -> Path:
    """The driver's side of a trained run: into the store (atomic swap, COMPLETE.json last)."""
    assert run.key is not None
    path = store.write_run(run.study, run.variant, run.seed, run.key, trained.files)
    log(trained.summary)
    return path


def restore_twin(run: PlannedRun, store: Store, log: Log, force: bool) -> Path | None:
    """Unless ``force``: put an identical complete run (this slot's kept run, or another study's) in place instead
    of training; None when there is none."""
    own = store.run_dir(run.study, run.variant, run.seed)
    twin = None if force else store.find_complete(run.key, exclude=own)
    if twin is None:
        return None
    log(f"{run.name}: " + ("restoring the run kept from before, no training" if store.is_kept(twin, own)
                           else f"identical run found at {twin}, copying"))
    return store.copy_run(twin, run.study, run.variant, run.seed)


def execute(run: PlannedRun, splits: Any, device: torch.device, store: Store, profile: str, log: Log,
            force: bool = False, executor: str = "local") -> Path:
    """Train one planned run in this process (or, unless ``force``, restore an identical complete run) and write
    it to the store atomically."""
    restored = restore_twin(run, store, log, force)
    if restored is not None:
        return restored
    return write_trained(store, run, train_files(run, splits, device, profile, executor, log), log)


def train_all(todo: list[PlannedRun], executor: "Executor", store: Store, log: Log, force: bool) -> None:
    """Every run of ``todo``: those with an identical complete run already in the store are restored from it, the
    first of each cache key is trained by ``executor`` (the driver writes each one as it arrives), and the twins
    of a run trained now are copied from it afterwards."""
    def on_trained(run: PlannedRun, trained: TrainedRun) -> None:
        write_trained(store, run, trained, log)

    first, later = split_twins(todo, force)
    executor.train([p for p in first if restore_twin(p, store, log, force) is None], on_trained)
    executor.train([p for p in later if restore_twin(p, store, log, force=False) is None], on_trained)
