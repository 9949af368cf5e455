"""Training: one run is ``train_run`` (a plain loop a student can follow); ``reportgen.pipeline.run`` trains every run
of the declared studies that the results store does not already hold.

Speed tricks live on the data side (``reportgen.loader``): here there is only the loop.
"""
from __future__ import annotations

import math
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import __version__
from .run_schema import TrainingConfig
from .loader import DeviceLoader, Normalization, to_input
from .models import build_model, count_parameters
from .settings import CHANNELS_LAST_ON_CPU, CPU_THREADS_PER_RUN, EVAL_BATCH
from .store import RunState, Store, cache_key, check_run, json_bytes, npz_bytes


class TrainingError(Exception):
    """A run that cannot go on (e.g. the loss became NaN); the message names study, variant, seed, epoch."""


class DeviceError(Exception):
    """The requested device is not available."""


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU."""
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
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({platform.processor() or platform.machine()}, {threads} thread{'s' if threads != 1 else ''})"
    return device.type


@torch.no_grad()
def evaluate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, norm: Normalization,
             device: torch.device) -> tuple[float, float, np.ndarray]:
    """Mean cross-entropy, accuracy and softmax probabilities of ``model`` on uint8 images."""
    model.eval()
    total_loss, correct, probs = 0.0, 0, []
    for start in range(0, len(labels), EVAL_BATCH):
        x = to_input(images[start:start + EVAL_BATCH].to(device), norm)
        y = labels[start:start + EVAL_BATCH].to(device)
        logits = model(x)
        total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
        probs.append(torch.softmax(logits.float(), 1).cpu().numpy())
    n = len(labels)
    return total_loss / n, correct / n, np.concatenate(probs).astype(np.float32)


def make_optimizer(model: torch.nn.Module, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                               weight_decay=cfg["weight_decay"])
    return torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])


# Schedules that change the learning rate after every batch (the others: after every epoch).
PER_BATCH_SCHEDULES = ("onecycle", "warmup_cosine")


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """The learning rate of batch ``step`` (0-based) as a fraction of the peak: a linear rise reaching the peak at
    batch ``warmup_steps - 1``, then half a cosine down to 0 at ``total_steps`` (one past the last batch)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_schedule(optimizer: torch.optim.Optimizer, cfg: dict[str, Any], steps_per_epoch: int):
    """The learning-rate scheduler ``cfg`` asks for (None for a constant rate); the training loop steps it after
    every batch for PER_BATCH_SCHEDULES and after every epoch otherwise."""
    total = cfg["epochs"] * steps_per_epoch
    if cfg["schedule"] == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg["step_size"], gamma=cfg["gamma"])
    if cfg["schedule"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg["epochs"])
    if cfg["schedule"] == "onecycle":
        # cycle_momentum=False: the schedule changes the learning rate only, so `momentum` (and Adam's betas)
        # stay what the config says for every variant.
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg["lr"], total_steps=total, pct_start=cfg["pct_start"], div_factor=cfg["div_factor"],
            final_div_factor=cfg["final_div_factor"], cycle_momentum=False)
    if cfg["schedule"] == "warmup_cosine":
        # A profile with fewer epochs than the warmup spends all of them warming up.
        warmup = min(cfg["warmup_epochs"] * steps_per_epoch, total)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, partial(warmup_cosine_factor, warmup_steps=warmup,
                                                                    total_steps=total))
    return None


@dataclass
class RunOutput:
    history: list[dict[str, float]]
    best_epoch: int
    best_state: dict[str, torch.Tensor]
    test_loss: float
    test_acc: float
    test_labels: np.ndarray
    test_probs: np.ndarray
    norm: Normalization
    parameters: int
    epoch_seconds: list[float] = field(default_factory=list)


def train_run(config: dict[str, Any], splits: Any, device: torch.device, name: str = "run",
              progress: Callable[[str], None] | None = None) -> RunOutput:
    """Train one model as ``config`` (a resolved run config) says; keep the best-validation checkpoint.
    On a CPU the run trains on CPU_THREADS_PER_RUN threads (restored afterwards), so its numbers are the same on
    any machine and whether or not other runs train beside it."""
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(CPU_THREADS_PER_RUN)
    try:
        return _train(config, splits, device, name, progress)
    finally:
        torch.set_num_threads(threads)


def _train(config: dict[str, Any], splits: Any, device: torch.device, name: str,
           progress: Callable[[str], None] | None) -> RunOutput:
    torch.manual_seed(config["seed"])
    cfg = TrainingConfig.complete(config["training"])  # the resolved config leaves newer fields out at default
    train_x, train_y = splits.train_images, splits.train_labels
    if config.get("train_limit"):
        train_x, train_y = train_x[:config["train_limit"]], train_y[:config["train_limit"]]
    limit = config.get("eval_limit") or None
    val_x, val_y = splits.val_images[:limit], splits.val_labels[:limit]
    test_x, test_y = splits.test_images[:limit], splits.test_labels[:limit]

    norm = Normalization.of(train_x)
    loader = DeviceLoader(train_x, train_y, cfg["batch_size"], norm, device, shuffle=True, seed=config["seed"],
                          augment=cfg.get("augment"))
    model = build_model(config["model"]["name"], **config["model"]["options"]).to(device)
    # channels_last: the same arithmetic in another memory layout, faster on a CPU; evaluation keeps the default
    # layout, so the test pass matches what the analyses later compute from the saved weights, bit for bit
    fast = device.type == "cpu" and CHANNELS_LAST_ON_CPU
    layout = torch.channels_last if fast else torch.contiguous_format
    model = model.to(memory_format=layout)
    optimizer = make_optimizer(model, cfg)
    schedule = make_schedule(optimizer, cfg, len(loader))
    per_batch = cfg["schedule"] in PER_BATCH_SCHEDULES

    history: list[dict[str, float]] = []
    best_acc, best_epoch, best_state = -1.0, 0, None
    epoch_seconds: list[float] = []
    bar = _progress_bar(cfg["epochs"] * len(loader), name)
    for epoch in range(1, cfg["epochs"] + 1):
        started = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        for step, (x, y) in enumerate(loader):
            logits = model(x.contiguous(memory_format=layout))
            # label smoothing shapes the training loss only; validation and test losses stay plain cross-entropy
            loss = F.cross_entropy(logits, y, label_smoothing=cfg["label_smoothing"])
            if not torch.isfinite(loss.detach()):
                raise TrainingError(f"{name}: loss became {loss.item()} at epoch {epoch}, batch {step + 1}; "
                                    f"lower the learning rate (lr={cfg['lr']}) or check the data")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if per_batch:
                schedule.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            if bar is not None:
                bar.update(1)
        if schedule is not None and not per_batch:
            schedule.step()
        train_loss, train_acc = float(loss_sum) / len(train_y), int(correct) / len(train_y)
        val_loss, val_acc, _ = evaluate(model, val_x, val_y, norm, device)
        seconds = time.perf_counter() - started
        epoch_seconds.append(seconds)
        history.append({"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                        "val_loss": val_loss, "val_acc": val_acc, "seconds": seconds})
        line = (f"{name} epoch {epoch}/{cfg['epochs']}: train loss {train_loss:.4f} acc {train_acc:.4f} | "
                f"val loss {val_loss:.4f} acc {val_acc:.4f} | {seconds:.1f}s")
        if bar is not None:
            bar.set_postfix(val_acc=f"{val_acc:.4f}")
        elif progress is not None:
            progress(line)
        if val_acc > best_acc:  # ties keep the earlier epoch
            best_acc, best_epoch = val_acc, epoch
            best_state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    if bar is not None:
        bar.close()

    model = model.to(memory_format=torch.contiguous_format)
    model.load_state_dict(best_state)
    test_loss, test_acc, test_probs = evaluate(model, test_x, test_y, norm, device)
    return RunOutput(history=history, best_epoch=best_epoch, best_state=best_state, test_loss=test_loss,
                     test_acc=test_acc, test_labels=test_y.cpu().numpy().astype(np.int64), test_probs=test_probs,
                     norm=norm, parameters=count_parameters(model), epoch_seconds=epoch_seconds)


PROGRESS_BARS = True  # False in worker processes: several bars on one terminal would overwrite each other


def _progress_bar(total: int, name: str):
    """A tqdm bar with ETA on a terminal; None (plain per-epoch lines) otherwise."""
    if not PROGRESS_BARS or not sys.stderr.isatty():
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=name, unit="batch", leave=False, dynamic_ncols=True)


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
    import torchvision
    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": np.__version__, "reportgen": __version__}


def run_files(config: dict[str, Any], out: RunOutput, record: dict[str, Any]) -> dict[str, bytes]:
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


def deterministic(enable: bool = True) -> None:
    """Same seed, same config, same machine -> same numbers (CPU kernels are deterministic with this)."""
    torch.use_deterministic_algorithms(enable, warn_only=True)


# ---- running the declared studies ---------------------------------------------------------------------------
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
            for seed in exp.profile(profile)["seeds"]:
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


def execute(run: PlannedRun, splits: Any, device: torch.device, store: Store, profile: str,
            log: Callable[[str], None], force: bool = False) -> Path:
    """Train one planned run (or, unless ``force``, copy an identical complete run of another study) and write
    it to the store atomically."""
    assert run.key is not None
    own = store.run_dir(run.study, run.variant, run.seed)
    twin = None if force else store.find_complete(run.key, exclude=own)
    if twin is not None:
        log(f"{run.study}/{run.variant}/seed-{run.seed}: "
            + ("restoring the run kept from before, no training" if store.is_kept(twin, own)
               else f"identical run found at {twin}, copying"))
        return store.copy_run(twin, run.study, run.variant, run.seed)
    name = f"{run.study}/{run.variant}/seed-{run.seed}"
    started, wall = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.perf_counter()
    out = train_run(run.config, splits, device, name=name, progress=log)
    record = {
        "study": run.study, "variant": run.variant, "seed": run.seed, "profile": profile,
        "cache_key": run.key, "dataset": run.dataset, "dataset_sha256": splits.checksum,
        "device": describe_device(device), "versions": versions(), "git_commit": git_commit(),
        "started": started, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": round(time.perf_counter() - wall, 3), "epoch_seconds": [round(s, 3) for s in out.epoch_seconds],
        "train_size": int(min(len(splits.train_labels), run.config.get("train_limit") or len(splits.train_labels))),
    }
    path = store.write_run(run.study, run.variant, run.seed, run.key, run_files(run.config, out, record))
    log(f"{name}: test accuracy {out.test_acc:.4f} (best epoch {out.best_epoch}), {record['wall_seconds']:.1f}s")
    return path
