"""Experiments are data: one YAML file per study under ``experiments/``, validated here with pydantic.

A bad file never produces a traceback: :func:`load_experiment` raises :class:`ConfigError` whose message is one
line naming the file, the field, what is allowed and (for names) the closest valid one.
"""
from __future__ import annotations

import copy
import datetime as dt
import difflib
import math
import re
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PROFILES = ("smoke", "quick", "full")
DATASET_NAMES = ("mnist", "fashion-mnist", "kmnist")
MODEL_NAMES = ("lenet", "tiny", "deep_pool", "fcnn")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("none", "step", "cosine")
# Every analysis a study may ask for; reportgen.analysis implements each of these names.
ANALYSIS_NAMES = (
    "curves", "report", "confusion", "misclassified", "samples", "architecture", "filters", "feature_maps",
    "activation_stats", "kernels", "output_size", "augmentation_gallery", "shift_single", "shift_grid",
    "shift_curve", "per_class_f1",
)
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class ConfigError(Exception):
    """A user-facing, one-line configuration error."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AugmentConfig(Strict):
    """Random affine augmentation, drawn per image on the batch (degrees, fraction of size, scale range)."""
    rotation: float = Field(0.0, ge=0, le=180)
    translate: float = Field(0.0, ge=0, lt=1)
    scale: tuple[float, float] = (1.0, 1.0)
    shear: float = Field(0.0, ge=0, lt=90)

    @field_validator("scale")
    @classmethod
    def _scale_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not (0 < v[0] <= v[1]):
            raise ValueError("must be [low, high] with 0 < low <= high")
        return v


class TrainingConfig(Strict):
    optimizer: Literal["sgd", "adam"] = "adam"
    lr: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(128, gt=0, le=65536)
    epochs: int = Field(5, gt=0, le=1000)
    schedule: Literal["none", "step", "cosine"] = "none"
    step_size: int = Field(5, gt=0)
    gamma: float = Field(0.5, gt=0, le=1)
    augment: Optional[AugmentConfig] = None

    @field_validator("lr", "weight_decay", "momentum", "gamma")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class LeNetOptions(Strict):
    in_channels: int = Field(1, gt=0)
    num_classes: int = Field(10, gt=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    pooling: bool = True
    activation: Literal["relu", "tanh"] = "relu"


class TinyOptions(Strict):
    in_channels: int = Field(1, gt=0)
    num_classes: int = Field(10, gt=1)


class DeepPoolOptions(Strict):
    in_channels: int = Field(1, gt=0)
    num_classes: int = Field(10, gt=1)
    activation: Literal["relu", "tanh"] = "tanh"


class FcnnOptions(Strict):
    in_channels: int = Field(1, gt=0)
    num_classes: int = Field(10, gt=1)
    hidden: Optional[list[int]] = None
    match_params_of: Optional[Literal["lenet", "tiny", "deep_pool"]] = None
    activation: Literal["relu", "tanh"] = "relu"

    @model_validator(mode="after")
    def _one_of(self) -> "FcnnOptions":
        if self.hidden is not None and self.match_params_of is not None:
            raise ValueError("give either hidden or match_params_of, not both")
        if self.hidden is not None and (not self.hidden or any(h <= 0 for h in self.hidden)):
            raise ValueError("hidden must be a non-empty list of positive layer widths")
        return self


MODEL_OPTIONS: dict[str, type[Strict]] = {
    "lenet": LeNetOptions, "tiny": TinyOptions, "deep_pool": DeepPoolOptions, "fcnn": FcnnOptions,
}


class ModelConfig(Strict):
    name: Literal["lenet", "tiny", "deep_pool", "fcnn"] = "lenet"
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_options(self) -> "ModelConfig":
        schema = MODEL_OPTIONS[self.name]
        parsed = schema.model_validate(self.options)  # raises with the option's name in the error location
        object.__setattr__(self, "options", parsed.model_dump(exclude_defaults=False))
        return self


class ProfileConfig(Strict):
    epochs: Optional[int] = Field(None, gt=0, le=1000)
    seeds: Optional[list[int]] = None
    train_limit: Optional[int] = Field(None, gt=0)
    eval_limit: Optional[int] = Field(None, gt=0)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: Optional[list[int]]) -> Optional[list[int]]:
        if v is not None:
            if not v:
                raise ValueError("seed list must not be empty")
            if len(set(v)) != len(v):
                raise ValueError("seeds must be distinct")
            if any(s < 0 for s in v):
                raise ValueError("seeds must be >= 0")
        return v


DEFAULT_PROFILES: dict[str, dict[str, Any]] = {
    # smoke: the whole pipeline in seconds (a few hundred images, one epoch, one seed).
    "smoke": {"epochs": 1, "seeds": [0], "train_limit": 512, "eval_limit": 1000},
    "quick": {"seeds": [0, 1, 2]},
    "full": {"seeds": [0, 1, 2, 3, 4]},
}


class VariantConfig(Strict):
    name: str
    label: Optional[str] = None
    description: str = ""
    dataset: Optional[Literal["mnist", "fashion-mnist", "kmnist"]] = None
    model: Optional[dict[str, Any]] = None
    training: Optional[dict[str, Any]] = None
    optional: bool = False  # leave it out (with a note in the post) when its dataset cannot be provisioned

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not ID_PATTERN.match(v):
            raise ValueError("must be lower-case letters, digits, '-' or '_' (no path separators), at most 64")
        return v


class ExperimentConfig(Strict):
    id: str
    title: str
    description: str = ""
    question: str = ""
    date: dt.date = dt.date(2026, 11, 23)
    categories: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    template: Optional[str] = None
    order: int = 100
    dataset: Literal["mnist", "fashion-mnist", "kmnist"] = "fashion-mnist"
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    profiles: dict[Literal["smoke", "quick", "full"], ProfileConfig] = Field(default_factory=dict)
    variants: list[VariantConfig] = Field(default_factory=list)
    baseline: Optional[str] = None
    analyses: list[Literal[ANALYSIS_NAMES]] = Field(default_factory=list)  # type: ignore[valid-type]
    trains: bool = True  # False for studies that only illustrate (e.g. convolution by hand)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not ID_PATTERN.match(v):
            raise ValueError("must be lower-case letters, digits, '-' or '_' (no '/', '..' or absolute paths)")
        return v

    @model_validator(mode="after")
    def _variants(self) -> "ExperimentConfig":
        names = [v.name for v in self.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate variant name {dupes[0]!r}")
        if self.trains and not self.variants:
            raise ValueError("at least one variant is required")
        if self.baseline is not None and self.baseline not in names:
            raise ValueError(f"baseline {self.baseline!r} is not a variant (variants: {', '.join(names)})")
        return self

    # ---- resolution -------------------------------------------------------------------------------------
    def profile(self, name: str) -> dict[str, Any]:
        """Epochs, seeds and limits for a profile: defaults, overridden by this file's ``profiles`` block."""
        merged = dict(DEFAULT_PROFILES[name])
        if name in self.profiles:
            merged.update({k: v for k, v in self.profiles[name].model_dump().items() if v is not None})
        merged.setdefault("epochs", self.training.epochs)
        merged.setdefault("train_limit", None)
        merged.setdefault("eval_limit", None)
        return merged

    def variant(self, name: str) -> VariantConfig:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)

    def resolve(self, variant: VariantConfig, seed: int, profile: str) -> dict[str, Any]:
        """The complete, plain-data config of one run (what is hashed into its cache key)."""
        prof = self.profile(profile)
        model = {"name": self.model.name, "options": dict(self.model.options)}
        if variant.model:
            if "name" in variant.model and variant.model["name"] != self.model.name:
                model = {"name": variant.model["name"], "options": {}}
            model["options"].update(variant.model.get("options", {}))
        model_cfg = ModelConfig.model_validate(model)
        training = self.training.model_dump()
        training.update(copy.deepcopy(variant.training or {}))
        training["epochs"] = prof["epochs"]
        training_cfg = TrainingConfig.model_validate(training)
        return {
            "dataset": variant.dataset or self.dataset,
            "model": {"name": model_cfg.name, "options": model_cfg.options},
            "training": training_cfg.model_dump(mode="json"),
            "seed": seed,
            "train_limit": prof["train_limit"],
            "eval_limit": prof["eval_limit"],
            "val_size": 5000,
            "split_seed": 0,
        }


def _closest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.5)
    return f"; did you mean {match[0]!r}?" if match else ""


def _location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("function-after", "literal", "list", "tuple") or "[" in str(item):
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _allowed_fields(loc: tuple[Any, ...]) -> list[str]:
    """Names valid at the parent of ``loc`` (for 'did you mean' on unknown keys)."""
    model: Any = ExperimentConfig
    for item in loc[:-1]:
        if isinstance(item, int) or model is None:
            continue
        field = model.model_fields.get(item) if hasattr(model, "model_fields") else None
        if field is None:
            model = MODEL_OPTIONS.get(item) if item in MODEL_OPTIONS else None
            continue
        ann = field.annotation
        for candidate in (ann, *getattr(ann, "__args__", ())):
            for inner in (candidate, *getattr(candidate, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    model = inner
                    break
            else:
                continue
            break
        else:
            model = None
    return list(model.model_fields) if model is not None and hasattr(model, "model_fields") else []


def _format_error(path: Path, err: ValidationError, data: dict[str, Any], prefix: str = "") -> str:
    e = err.errors()[0]
    loc = tuple(e["loc"])
    where = prefix + _location(loc)
    kind = e["type"]
    if kind == "extra_forbidden":
        key = loc[-1]
        allowed = _allowed_fields(loc)
        if where.startswith("model.options"):
            name = (data.get("model") or {}).get("name", "lenet")
            allowed = list(MODEL_OPTIONS.get(name, LeNetOptions).model_fields)
        hint = _closest(str(key), allowed)
        return (f"{path}: unknown field {where!r}{hint} (allowed here: {', '.join(allowed)})" if allowed
                else f"{path}: unknown field {where!r}{hint}")
    if kind == "literal_error":
        expected = e.get("ctx", {}).get("expected", "")
        choices = re.findall(r"'([^']*)'", expected)
        return f"{path}: {where}: {e['input']!r} is not allowed; choose from {', '.join(choices)}{_closest(e['input'], choices)}"
    msg = e["msg"].removeprefix("Value error, ")
    got = e.get("input")
    shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
    return f"{path}: {where}: {msg}{shown}"


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read and validate one experiment file; raise ConfigError with a one-line message on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: YAML syntax error at {line}{problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields (id, title, variants, ...), got {type(data).__name__}")
    try:
        exp = ExperimentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(path, err, data)) from None
    # Resolve every run once now, so a variant override that breaks a model or training field fails here.
    for index, variant in enumerate(exp.variants):
        for section in ("model", "training"):
            override = getattr(variant, section)
            if not override:
                continue
            try:
                exp.resolve(variant, 0, "quick")
            except ValidationError as err:
                raise ConfigError(_format_error(path, err, data, prefix=f"variants[{index}].{section}.")) from None
    return exp


def discover(directory: str | Path = "experiments") -> dict[str, tuple[Path, ExperimentConfig]]:
    """All experiment files in ``directory`` by id; two files with the same id are an error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory}: experiments directory not found (run from the project root or pass --experiments)")
    found: dict[str, tuple[Path, ExperimentConfig]] = {}
    for path in sorted(directory.glob("*.y*ml")):
        exp = load_experiment(path)
        if exp.id in found:
            raise ConfigError(f"{path}: id {exp.id!r} is already used by {found[exp.id][0]}; ids must be unique")
        found[exp.id] = (path, exp)
    return dict(sorted(found.items(), key=lambda kv: (kv[1][1].order, kv[0])))


def select(experiments: dict[str, tuple[Path, ExperimentConfig]], names: tuple[str, ...] | list[str]) -> list[str]:
    """Validate experiment names given on the command line (all when none)."""
    if not names:
        return list(experiments)
    for name in names:
        if name not in experiments:
            raise ConfigError(f"unknown experiment {name!r}{_closest(name, list(experiments))} (declared: {', '.join(experiments)})")
    return list(dict.fromkeys(names))
