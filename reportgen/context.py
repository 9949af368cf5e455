"""What a post says about how its numbers were made: the setup (data, models, training, seeds per variant) and
the reproduce box (command, seeds, epochs, device, versions, wall time, commit). Plain data for the templates."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import i18n
from .numbers import general as _g
from .settings import DATASET_TITLES, DATASET_TRAIN_SIZE, IMAGE_SIZE, VAL_SIZE
from .schema import AugmentConfig, StudyConfig, TrainingConfig, VariantConfig
from .study import Study, VariantResults

if TYPE_CHECKING:  # the zoo builds modules: torch
    from .zoo import ModelDescription


@dataclass(frozen=True)
class Reproduction:
    """The reproduce box: the command, and what the runs were made with (``runs`` 0: nothing is trained)."""
    command: str
    profile: str
    runs: int
    seeds: list[int]
    epochs: list[int]
    devices: list[str]
    executors: list[str]
    versions: dict[str, str]
    wall_seconds: float
    commits: list[str]
    train_sizes: list[int]


def reproducibility(study: Study, profile: str) -> Reproduction:
    """What a reader needs to rerun the study: command, seeds, epochs, device, versions, wall time, commit."""
    runs = [r for v in study.available for r in v.runs]
    if not runs:  # an illustration (trains: false), or every variant unavailable: what rendering used
        from .runs import git_commit, versions
        return Reproduction(
            command=f"reportgen render {study.id} --profile {profile}", profile=profile, runs=0, seeds=[], epochs=[],
            devices=[i18n._("cpu (rendering only; nothing is trained)")], executors=[], versions=versions(), wall_seconds=0.0,
            commits=[git_commit() or "not a git checkout"], train_sizes=[])
    records = [r.record for r in runs]
    return Reproduction(
        command=f"reportgen run {study.id} --profile {profile} && reportgen build --profile {profile}",
        profile=profile, runs=len(runs), seeds=sorted({r.seed for r in runs}),
        epochs=sorted({len(r.history.epochs) for r in runs}), devices=sorted({rec.device for rec in records}),
        executors=sorted({rec.executor for rec in records}),
        versions=records[0].versions, wall_seconds=sum(rec.wall_seconds for rec in records),
        commits=sorted({rec.git_commit or "not a git checkout" for rec in records}),
        train_sizes=sorted({rec.train_size for rec in records if rec.train_size}))


# ---- what each variant is ----------------------------------------------------------------------------------
def describe_training(training: TrainingConfig, epochs: bool = True) -> str:
    """One line for a run's training config (what the setup table says); without the number of epochs when
    ``epochs`` is false (the setup table then gives them in a column of their own)."""
    t = training
    _ = i18n._
    parts = [_("%(optimizer)s, learning rate %(lr)s") % {"optimizer": "SGD" if t.optimizer == "sgd" else "Adam",
                                                          "lr": _g(t.lr)}]
    if t.optimizer == "sgd" and t.momentum:
        parts.append(_("momentum %(m)s") % {"m": _g(t.momentum)})
    # stated when off too: the Methods page's shared recipe has both, and holds "unless the setup table says otherwise"
    parts.append(_("weight decay %(wd)s") % {"wd": _g(t.weight_decay)} if t.weight_decay else _("no weight decay"))
    parts.append(_("batch size %(n)s") % {"n": t.batch_size})
    if epochs:
        parts.append(i18n.ngettext("%(num)s epoch", "%(num)s epochs", t.epochs) % {"num": t.epochs})
    if t.schedule == "step":
        parts.append(_("learning rate × %(gamma)s every %(n)s epochs") % {"gamma": _g(t.gamma), "n": t.step_size})
    elif t.schedule == "cosine":
        parts.append(_("cosine learning-rate schedule"))
    elif t.schedule == "onecycle":
        parts.append(_("one-cycle schedule per batch (peak at the learning rate after %(pct)s%% of the steps)")
                     % {"pct": _g(100 * t.pct_start)})
    elif t.schedule == "warmup_cosine":
        parts.append(i18n.ngettext("%(num)s epoch of linear warmup, then a cosine decay per batch",
                                   "%(num)s epochs of linear warmup, then a cosine decay per batch",
                                   t.warmup_epochs) % {"num": _g(t.warmup_epochs)})
    parts.append(_("label smoothing %(eps)s") % {"eps": _g(t.label_smoothing)} if t.label_smoothing
                 else _("no label smoothing"))
    return ", ".join(parts)


def describe_augment(augment: AugmentConfig | None) -> str:
    _ = i18n._
    if augment is None:
        return _("none")
    parts = []
    if augment.rotation:
        parts.append(_("rotation ±%(deg)s°") % {"deg": _g(augment.rotation)})
    if augment.translate:
        parts.append(_("shift ±%(pct)s%% of the image") % {"pct": _g(100 * augment.translate)})
    if tuple(augment.scale) != (1.0, 1.0):
        parts.append(_("scale %(low)s–%(high)s") % {"low": _g(augment.scale[0]), "high": _g(augment.scale[1])})
    if augment.shear:
        parts.append(_("shear ±%(deg)s°") % {"deg": _g(augment.shear)})
    return ", ".join(parts) or _("none")


@dataclass(frozen=True)
class VariantSetup:
    """One variant as the setup table states it: its model (:func:`reportgen.zoo.describe_model`), training line
    and augmentation in words, the largest shift its augmentation applies (pixels), and why it was left out."""
    name: str
    label: str
    description: str
    optional: bool
    dataset: str
    dataset_name: str
    model: ModelDescription
    parameters: int
    macs: int                         # multiply-adds of one forward pass of one image
    epochs: int
    training: str
    augment: str
    max_shift: float
    unavailable: str | None


@dataclass(frozen=True)
class Budget:
    """What a profile trains: its seeds, epochs and training images (None: all)."""
    seeds: list[int]
    epochs: int
    train_limit: int | None


@dataclass(frozen=True)
class Setup:
    """The setup of a post: every variant, and the profile's data budget. ``training`` is the one training line
    when every variant shares it (None: a column per variant); ``epochs`` the one number of epochs (else the
    profile's, and ``epochs_vary``); ``full`` what the full profile trains."""
    variants: list[VariantSetup]
    training: str | None
    epochs_vary: bool
    augmented: bool
    datasets: list[str]
    seeds: list[int]
    epochs: int
    train_limit: int | None
    eval_limit: int | None
    train_total: int
    val_size: int
    test_sizes: list[int]
    full: Budget


def _variant_setup(exp: StudyConfig, v: VariantConfig, result: VariantResults, seed: int,
                   profile: str) -> VariantSetup:
    from .zoo import describe_model  # builds the module: torch, only when a setup table is rendered
    config = exp.resolve(v, seed, profile)
    model = describe_model(config["model"])
    training = exp.variant_training(v, exp.variant_epochs(v, profile), profile)  # what config["training"] is
    return VariantSetup(
        name=v.name, label=result.label, description=v.description, optional=v.optional, dataset=config["dataset"],
        dataset_name=DATASET_TITLES.get(config["dataset"], config["dataset"]), model=model,
        parameters=model.parameters, macs=model.macs, epochs=training.epochs, training=describe_training(training, epochs=False),
        augment=describe_augment(training.augment),
        max_shift=(training.augment.translate if training.augment else 0.0) * IMAGE_SIZE,
        unavailable=result.unavailable)


def setup(exp: StudyConfig, study: Study, profile: str) -> Setup:
    """Per-variant resolved model and training (seed 0 of the profile), and the profile's data budget."""
    prof = exp.profile(profile)
    full = exp.profile("full")
    rows = [_variant_setup(exp, v, result, prof.seeds[0], profile)
            for v, result in zip(exp.variants, study.variants)]
    trainings = {r.training for r in rows}
    epochs = sorted({r.epochs for r in rows})
    first = next((r for v in study.available for r in v.runs), None)
    val_size = first.config["val_size"] if first else VAL_SIZE
    return Setup(
        # one training line for all variants when they share it; the epochs join it when they share those too,
        # else they are a column of their own (a variant may train longer to converge)
        variants=rows, training=rows[0].training if len(trainings) == 1 and rows else None,
        epochs_vary=len(epochs) > 1, augmented=any(r.augment != describe_augment(None) for r in rows),
        datasets=list(dict.fromkeys(r.dataset_name + (" (left out)" if r.unavailable else "") for r in rows)),
        seeds=prof.seeds, epochs=epochs[0] if len(epochs) == 1 else prof.epochs,
        train_limit=prof.train_limit, eval_limit=prof.eval_limit, train_total=DATASET_TRAIN_SIZE - val_size,
        val_size=min(val_size, prof.eval_limit) if prof.eval_limit else val_size,
        test_sizes=sorted({r.metrics.test_size for v in study.available for r in v.runs}),
        full=Budget(seeds=full.seeds, epochs=full.epochs, train_limit=full.train_limit))
