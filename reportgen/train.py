"""Training one run, the way pytorch/examples' mnist/main.py reads: ``train_epoch`` trains the model for one pass
over the training images, ``evaluate`` measures it, and ``train_run`` wires the two into epochs and keeps the
best-validation checkpoint.

Speed tricks live on the data side (``reportgen.loader``); planning which runs to train, where they train and how
they are recorded lives in ``reportgen.runs`` and ``reportgen.executors``. Here there is only the loop.
"""
from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .loader import DeviceLoader, Normalization, to_input
from .models import build_model, count_parameters
from .run_schema import TrainingConfig
from .settings import CHANNELS_LAST_ON_CPU, CPU_THREADS_PER_RUN, EVAL_BATCH

Log = Callable[[str], None]


class TrainingError(Exception):
    """A run that cannot go on (e.g. the loss became NaN); the message names study, variant, seed, epoch."""


@dataclass(frozen=True)
class RunSpec:
    """What one run trains, typed: read from the resolved run config (the dict hashed into its cache key)."""
    seed: int
    training: TrainingConfig
    model: str
    model_options: dict[str, Any]
    train_limit: int | None = None
    eval_limit: int | None = None

    @classmethod
    def of(cls, config: dict[str, Any]) -> "RunSpec":
        return cls(seed=config["seed"], training=TrainingConfig.model_validate(config["training"]),
                   model=config["model"]["name"], model_options=dict(config["model"]["options"]),
                   train_limit=config.get("train_limit") or None, eval_limit=config.get("eval_limit") or None)


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


# ---- optimiser and learning-rate schedule ---------------------------------------------------------------------
def make_optimizer(model: torch.nn.Module, training: TrainingConfig) -> torch.optim.Optimizer:
    if training.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=training.lr, momentum=training.momentum,
                               weight_decay=training.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=training.lr, weight_decay=training.weight_decay)


# Schedules that change the learning rate after every batch (the others: after every epoch).
PER_BATCH_SCHEDULES = ("onecycle", "warmup_cosine")


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """The learning rate of batch ``step`` (0-based) as a fraction of the peak: a linear rise reaching the peak at
    batch ``warmup_steps - 1``, then half a cosine down to 0 at ``total_steps`` (one past the last batch)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_schedule(optimizer: torch.optim.Optimizer, training: TrainingConfig, steps_per_epoch: int):
    """The learning-rate scheduler ``training`` asks for (None for a constant rate); :class:`Schedule` steps it
    after every batch for PER_BATCH_SCHEDULES and after every epoch otherwise."""
    total = training.epochs * steps_per_epoch
    if training.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=training.step_size, gamma=training.gamma)
    if training.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=training.epochs)
    if training.schedule == "onecycle":
        # cycle_momentum=False: the schedule changes the learning rate only, so `momentum` (and Adam's betas)
        # stay what the config says for every variant.
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=training.lr, total_steps=total, pct_start=training.pct_start,
            div_factor=training.div_factor, final_div_factor=training.final_div_factor, cycle_momentum=False)
    if training.schedule == "warmup_cosine":
        # A profile with fewer epochs than the warmup spends all of them warming up.
        warmup = min(training.warmup_epochs * steps_per_epoch, total)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, partial(warmup_cosine_factor, warmup_steps=warmup,
                                                                    total_steps=total))
    return None


@dataclass
class Schedule:
    """A scheduler and when it steps: ``after_batch`` and ``after_epoch`` each step it only when it is its turn."""
    scheduler: Any
    per_batch: bool

    @classmethod
    def of(cls, optimizer: torch.optim.Optimizer, training: TrainingConfig, steps_per_epoch: int) -> "Schedule":
        return cls(make_schedule(optimizer, training, steps_per_epoch), training.schedule in PER_BATCH_SCHEDULES)

    def after_batch(self) -> None:
        if self.scheduler is not None and self.per_batch:
            self.scheduler.step()

    def after_epoch(self) -> None:
        if self.scheduler is not None and not self.per_batch:
            self.scheduler.step()


# ---- the loop -----------------------------------------------------------------------------------------------
class NonFiniteLoss(ArithmeticError):
    """The training loss of batch ``batch`` (1-based) is NaN or infinite."""

    def __init__(self, batch: int, value: float):
        super().__init__(f"loss became {value} at batch {batch}")
        self.batch, self.value = batch, value


def train_epoch(model: torch.nn.Module, loader: Any, optimizer: torch.optim.Optimizer, schedule: Schedule,
                label_smoothing: float = 0.0, layout: torch.memory_format = torch.contiguous_format,
                on_batch: Callable[[], None] | None = None) -> tuple[float, float]:
    """One pass over ``loader``'s batches; the mean training loss and accuracy, counted while training."""
    model.train()
    loss_sum = correct = seen = 0
    for batch, (x, y) in enumerate(loader, start=1):
        logits = model(x.contiguous(memory_format=layout))
        # label smoothing shapes the training loss only; validation and test losses stay plain cross-entropy
        loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        if not torch.isfinite(loss.detach()):
            raise NonFiniteLoss(batch, loss.item())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.after_batch()
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        if on_batch is not None:
            on_batch()
    schedule.after_epoch()
    return float(loss_sum) / seen, int(correct) / seen


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


def train_run(config: dict[str, Any] | RunSpec, splits: Any, device: torch.device, name: str = "run",
              progress: Log | None = None) -> RunOutput:
    """Train one model as ``config`` (a resolved run config) says; keep the best-validation checkpoint."""
    spec = config if isinstance(config, RunSpec) else RunSpec.of(config)
    training = spec.training
    with pinned_threads(device):
        torch.manual_seed(spec.seed)
        train_x, train_y = splits.train_images[:spec.train_limit], splits.train_labels[:spec.train_limit]
        val_x, val_y = splits.val_images[:spec.eval_limit], splits.val_labels[:spec.eval_limit]
        test_x, test_y = splits.test_images[:spec.eval_limit], splits.test_labels[:spec.eval_limit]
        norm = Normalization.of(train_x)
        augment = training.augment.model_dump(mode="json") if training.augment else None
        loader = DeviceLoader(train_x, train_y, training.batch_size, norm, device, shuffle=True, seed=spec.seed,
                              augment=augment)
        layout = memory_layout(device)
        model = build_model(spec.model, **spec.model_options).to(device).to(memory_format=layout)
        optimizer = make_optimizer(model, training)
        schedule = Schedule.of(optimizer, training, len(loader))

        report = EpochReport(name, training.epochs, len(loader), progress)
        history, best_acc, best_epoch, best_state = [], -1.0, 0, None
        for epoch in range(1, training.epochs + 1):
            started = time.perf_counter()
            try:
                train_loss, train_acc = train_epoch(model, loader, optimizer, schedule, training.label_smoothing,
                                                    layout, report.batch_done)
            except NonFiniteLoss as exc:
                raise TrainingError(f"{name}: loss became {exc.value} at epoch {epoch}, batch {exc.batch}; "
                                    f"lower the learning rate (lr={training.lr}) or check the data") from None
            val_loss, val_acc, _ = evaluate(model, val_x, val_y, norm, device)
            history.append({"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                            "val_loss": val_loss, "val_acc": val_acc, "seconds": time.perf_counter() - started})
            report.epoch_done(history[-1])
            if val_acc > best_acc:  # ties keep the earlier epoch
                best_acc, best_epoch = val_acc, epoch
                best_state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        report.close()

        # the test pass in the default layout, so it matches what the analyses compute from the saved weights
        model = model.to(memory_format=torch.contiguous_format)
        model.load_state_dict(best_state)
        test_loss, test_acc, test_probs = evaluate(model, test_x, test_y, norm, device)
    return RunOutput(history=history, best_epoch=best_epoch, best_state=best_state, test_loss=test_loss,
                     test_acc=test_acc, test_labels=test_y.cpu().numpy().astype(np.int64), test_probs=test_probs,
                     norm=norm, parameters=count_parameters(model), epoch_seconds=[h["seconds"] for h in history])


# ---- what the loop needs from around it ------------------------------------------------------------------------
@contextlib.contextmanager
def pinned_threads(device: torch.device) -> Iterator[None]:
    """On a CPU, train on CPU_THREADS_PER_RUN threads (restored afterwards), so a run's numbers are the same on any
    machine and whether or not other runs train beside it."""
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(CPU_THREADS_PER_RUN)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def memory_layout(device: torch.device) -> torch.memory_format:
    """channels_last on a CPU: the same arithmetic in another memory layout, faster there."""
    return torch.channels_last if device.type == "cpu" and CHANNELS_LAST_ON_CPU else torch.contiguous_format


PROGRESS_BARS = True  # False in worker processes: several bars on one terminal would overwrite each other


class EpochReport:
    """Progress of one run: a tqdm bar with ETA on a terminal, else one line per epoch through ``progress``."""

    def __init__(self, name: str, epochs: int, batches: int, progress: Log | None):
        self.name, self.epochs, self.progress = name, epochs, progress
        self.bar = None
        if PROGRESS_BARS and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=epochs * batches, desc=name, unit="batch", leave=False, dynamic_ncols=True)

    def batch_done(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def epoch_done(self, h: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.set_postfix(val_acc=f"{h['val_acc']:.4f}")
        elif self.progress is not None:
            self.progress(f"{self.name} epoch {h['epoch']}/{self.epochs}: train loss {h['train_loss']:.4f} "
                          f"acc {h['train_acc']:.4f} | val loss {h['val_loss']:.4f} acc {h['val_acc']:.4f} | "
                          f"{h['seconds']:.1f}s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
