"""Experiments are data: one YAML file per study under ``experiments/``, validated here with pydantic.

A bad file never produces a traceback: :func:`load_study` raises :class:`ConfigError` whose message is one
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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from .settings import SPLIT_SEED, VAL_SIZE

PROFILES = ("smoke", "quick", "full")
DATASET_NAMES = ("mnist", "fashion-mnist", "kmnist")
MODEL_NAMES = ("lenet", "tiny", "deep_pool", "fcnn")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("none", "step", "cosine", "onecycle", "warmup_cosine")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class ConfigError(Exception):
    """A user-facing, one-line configuration error."""


class Strict(BaseModel):
    # strict: a wrong type is an error, never coerced (``epochs: true`` is not 1, ``lr: "0.1"`` is not 0.1);
    # allow_inf_nan=False: ``.nan`` and ``.inf`` are refused for every float field.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class AugmentConfig(Strict):
    """Random affine augmentation, drawn per image on the batch (degrees, fraction of size, scale range)."""
    rotation: float = Field(0.0, ge=0, le=180)
    translate: float = Field(0.0, ge=0, lt=1)
    scale: tuple[float, float] = Field((1.0, 1.0), strict=False)  # YAML gives a list
    shear: float = Field(0.0, ge=0, lt=90)

    @field_validator("scale")
    @classmethod
    def _scale_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not (0 < v[0] <= v[1]):
            raise ValueError("must be [low, high] with 0 < low <= high")
        return v


class TrainingConfig(Strict):
    optimizer: Literal["sgd", "adam"] = "adam"
    lr: float = Field(1e-3, gt=0)  # the peak learning rate under onecycle and warmup_cosine
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(128, gt=0, le=65536)
    epochs: int = Field(5, gt=0, le=1000)
    # none, step and cosine change the learning rate once per epoch; onecycle and warmup_cosine once per batch.
    schedule: Literal["none", "step", "cosine", "onecycle", "warmup_cosine"] = "none"
    step_size: int = Field(5, gt=0)
    gamma: float = Field(0.5, gt=0, le=1)
    augment: Optional[AugmentConfig] = None
    # Added after results were cached: left out of the resolved config at their default (TRAINING_OMITTED_AT_DEFAULT).
    label_smoothing: float = Field(0.0, ge=0, lt=1)  # CrossEntropyLoss(label_smoothing=...) of the training loss
    warmup_epochs: int = Field(1, ge=0, le=1000)     # warmup_cosine: epochs of linear warmup from 0 to lr
    pct_start: float = Field(0.3, gt=0, lt=1)        # onecycle: fraction of the steps spent rising to lr
    div_factor: float = Field(25.0, ge=1)            # onecycle: starts at lr / div_factor
    final_div_factor: float = Field(1e4, ge=1)       # onecycle: ends at lr / div_factor / final_div_factor

    @field_validator("lr", "weight_decay", "momentum", "gamma", "label_smoothing", "pct_start", "div_factor",
                     "final_div_factor")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @model_validator(mode="after")
    def _schedule_fields(self) -> "TrainingConfig":
        # A field of another schedule would be silently ignored: say so instead.
        for name, schedule in SCHEDULE_FIELDS.items():
            if self.schedule != schedule and getattr(self, name) != TrainingConfig.model_fields[name].default:
                raise ValueError(f"{name} applies to schedule: {schedule} only (schedule is {self.schedule})")
        return self

    def resolved(self) -> dict[str, Any]:
        """Plain data for the resolved run config: fields added after results were cached are left out while at
        their default, so every run cached before they existed keeps its cache key."""
        data = self.model_dump(mode="json")
        for name in TRAINING_OMITTED_AT_DEFAULT:
            if getattr(self, name) == TrainingConfig.model_fields[name].default:
                del data[name]
        return data

    @classmethod
    def complete(cls, resolved: dict[str, Any]) -> dict[str, Any]:
        """A resolved training config with the fields left out at their default put back (what training reads)."""
        return {**cls().model_dump(mode="json"), **resolved}


# Training fields added after runs were cached: omitted from the resolved config while at their default.
TRAINING_OMITTED_AT_DEFAULT = ("label_smoothing", "warmup_epochs", "pct_start", "div_factor", "final_div_factor")
# Fields that only one schedule reads.
SCHEDULE_FIELDS = {"warmup_epochs": "warmup_cosine", "pct_start": "onecycle", "div_factor": "onecycle",
                   "final_div_factor": "onecycle"}


class ImageOptions(Strict):
    """What every model is fed: one-channel 28x28 images of 10 classes (any other value fails only mid-training)."""
    in_channels: int = 1
    num_classes: int = 10

    @field_validator("in_channels")
    @classmethod
    def _grayscale(cls, v: int) -> int:
        if v != 1:
            raise ValueError("must be 1: MNIST, Fashion-MNIST and KMNIST images have one (grayscale) channel")
        return v

    @field_validator("num_classes")
    @classmethod
    def _ten_classes(cls, v: int) -> int:
        if v != 10:
            raise ValueError("must be 10: MNIST, Fashion-MNIST and KMNIST each have 10 classes")
        return v


Activation = Literal["relu", "tanh", "sigmoid", "gelu"]  # reportgen.models.ACTIVATIONS


class LeNetOptions(ImageOptions):
    dropout: float = Field(0.0, ge=0, lt=1)
    pooling: bool = True
    activation: Activation = "relu"
    # Added after results were cached: left out of the resolved config at their default (OMITTED_AT_DEFAULT).
    batch_norm: bool = False
    channels: list[int] = [6, 16]  # widths of conv1 and conv2
    kernel_size: int = 5

    @field_validator("channels")
    @classmethod
    def _two_widths(cls, v: list[int]) -> list[int]:
        if len(v) != 2 or any(c <= 0 for c in v):
            raise ValueError("must be two positive convolution widths [conv1, conv2], e.g. [6, 16]")
        return v

    @field_validator("kernel_size")
    @classmethod
    def _odd_kernel(cls, v: int) -> int:
        if v not in (3, 5, 7):
            raise ValueError("must be 3, 5 or 7 (odd, so the padded conv1 keeps the 28x28 size)")
        return v


# Options each model gained after runs were cached: omitted from the resolved config while at their default.
OMITTED_AT_DEFAULT: dict[str, tuple[str, ...]] = {"lenet": ("batch_norm", "channels", "kernel_size")}


class TinyOptions(ImageOptions):
    pass


class DeepPoolOptions(ImageOptions):
    activation: Activation = "tanh"


class FcnnOptions(ImageOptions):
    hidden: Optional[list[int]] = None
    match_params_of: Optional[Literal["lenet", "tiny", "deep_pool"]] = None
    activation: Activation = "relu"

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

    @field_validator("options")
    @classmethod
    def _check_options(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "name" not in info.data:  # the name itself is wrong; that error is reported instead
            return v
        # Raised inside a field validator, the schema's errors keep their location: model.options.<option>.
        schema = MODEL_OPTIONS[info.data["name"]]
        options = schema.model_validate(v).model_dump(exclude_defaults=False)
        # The resolved config is hashed into each run's cache key: an option added later must not change the key
        # of a run that leaves it at its default (that would force retraining every shipped study).
        for key in OMITTED_AT_DEFAULT.get(info.data["name"], ()):
            if options[key] == schema.model_fields[key].get_default(call_default_factory=True):
                del options[key]
        return options


class VariantModel(Strict):
    """A variant's model override: another model name and/or some options (checked when the run resolves)."""
    name: Optional[Literal["lenet", "tiny", "deep_pool", "fcnn"]] = None
    options: dict[str, Any] = Field(default_factory=dict)


class ProfileConfig(Strict):
    epochs: Optional[int] = Field(None, gt=0, le=1000)
    seeds: Optional[list[int]] = None
    train_limit: Optional[int] = Field(None, gt=0)
    eval_limit: Optional[int] = Field(None, gt=0)
    shift_images: Optional[int] = Field(None, gt=0)  # shift grid on the first N test images (CPU only)

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
    "smoke": {"epochs": 1, "seeds": [0], "train_limit": 512, "eval_limit": 1000, "shift_images": 200},
    # quick: minutes on a laptop CPU. The shift grid (169 shifts x 2 modes) of one model over the whole test set
    # costs 2-7 minutes on a 2-core CPU, so on a CPU it uses the first 2,000 test images; on CUDA all of them.
    "quick": {"seeds": [0, 1, 2], "shift_images": 2000},
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

    @field_validator("model")
    @classmethod
    def _model_keys(cls, v: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
        if v is not None:
            VariantModel.model_validate(v)  # unknown keys and a wrong name fail here, with their location
        return v

    @field_validator("training")
    @classmethod
    def _no_epochs(cls, v: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
        if v is not None and "epochs" in v:
            # resolve() takes epochs from the profile, so a per-variant value would be silently ignored
            raise ValueError("epochs cannot differ per variant; set training.epochs or profiles.<profile>.epochs")
        return v


class StudyConfig(Strict):
    id: str
    title: str
    description: str = ""
    question: str = ""
    date: dt.date = Field(dt.date(2026, 11, 23), strict=False)  # a quoted "2026-11-23" is fine too
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
    analyses: list[str] = Field(default_factory=list)  # names of modules in reportgen/analyses/
    trains: bool = True  # False for studies that only illustrate (e.g. convolution by hand)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not ID_PATTERN.match(v):
            raise ValueError("must be lower-case letters, digits, '-' or '_' (no '/', '..' or absolute paths)")
        return v

    @field_validator("template")
    @classmethod
    def _template(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not ID_PATTERN.match(v):
            raise ValueError("must be the id of another study whose prose file this one uses, such as 'dropout' "
                             "(no '/', '..' or file extension)")
        return v

    @field_validator("analyses")
    @classmethod
    def _analyses(cls, v: list[str]) -> list[str]:
        from . import analyses  # the registry: the modules of reportgen/analyses/ (read without importing them)
        for index, name in enumerate(v):
            if name not in analyses.names():
                raise ValueError(f"[{index}] {name!r} is not allowed; choose from {', '.join(analyses.names())}"
                                 f"{analyses.closest(name)}")
        dupes = sorted({n for n in v if v.count(n) > 1})
        if dupes:
            raise ValueError(f"{dupes[0]!r} is listed twice; each analysis appears once in a post")
        return v

    @field_validator("variants")
    @classmethod
    def _unique_variants(cls, v: list[VariantConfig]) -> list[VariantConfig]:
        names = [variant.name for variant in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate variant name {dupes[0]!r}; variant names must be unique")
        return v

    @model_validator(mode="after")
    def _variants(self) -> "StudyConfig":
        # Errors raised here have no field location, so each message starts with the field it is about.
        names = [v.name for v in self.variants]
        if self.trains and not self.variants:
            raise ValueError("variants: at least one variant is required (or set trains: false)")
        if self.baseline is not None and self.baseline not in names:
            raise ValueError(f"baseline: {self.baseline!r} is not a variant name{_closest(self.baseline, names)} "
                             f"(variants: {', '.join(names)})")
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
        merged.setdefault("shift_images", None)
        return merged

    def variant(self, name: str) -> VariantConfig:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)

    def variant_model(self, variant: VariantConfig) -> ModelConfig:
        """The study's model with ``variant``'s override applied (another name starts from no options)."""
        model = {"name": self.model.name, "options": dict(self.model.options)}
        if variant.model:
            if variant.model.get("name") not in (None, self.model.name):
                model = {"name": variant.model["name"], "options": {}}
            model["options"].update(variant.model.get("options") or {})
        return ModelConfig.model_validate(model)

    def variant_training(self, variant: VariantConfig, epochs: int) -> TrainingConfig:
        training = self.training.model_dump()
        training.update(copy.deepcopy(variant.training or {}))
        training["epochs"] = epochs
        return TrainingConfig.model_validate(training)

    def resolve(self, variant: VariantConfig, seed: int, profile: str) -> dict[str, Any]:
        """The complete, plain-data config of one run (what is hashed into its cache key)."""
        prof = self.profile(profile)
        model_cfg = self.variant_model(variant)
        training_cfg = self.variant_training(variant, prof["epochs"])
        return {
            "dataset": variant.dataset or self.dataset,
            "model": {"name": model_cfg.name, "options": model_cfg.options},
            "training": training_cfg.resolved(),
            "seed": seed,
            "train_limit": prof["train_limit"],
            "eval_limit": prof["eval_limit"],
            "val_size": VAL_SIZE,
            "split_seed": SPLIT_SEED,
        }


def _closest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.5)
    return f"; did you mean {match[0]!r}?" if match else ""


_INTERNAL = ("function-after", "function-wrap", "function-plain", "literal", "list", "tuple", "dict", "[key]")


def _clean(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop pydantic's internal location tags, keeping field names and list indices."""
    return tuple(i for i in loc if isinstance(i, int) or (i not in _INTERNAL and "[" not in str(i)))


def _location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        parts.append(f"[{item}]" if isinstance(item, int) else ("." if parts else "") + str(item))
    return "".join(parts)


def _walk(data: Any, loc: tuple[Any, ...]) -> Any:
    for item in loc:
        if isinstance(data, dict):
            data = data.get(item)
        elif isinstance(data, list) and isinstance(item, int) and 0 <= item < len(data):
            data = data[item]
        else:
            return None
    return data


def _allowed_fields(loc: tuple[Any, ...], data: Any) -> list[str]:
    """Field names valid in the mapping that holds the last element of ``loc`` (a full location in the file)."""
    parent = loc[:-1]
    names = [i for i in parent if not isinstance(i, int)]
    if not names:
        return list(StudyConfig.model_fields)
    last = names[-1]
    if last == "options":  # model options: which ones depends on the model the enclosing mapping names
        model = _walk(data, parent[:-1]) or {}
        name = model.get("name") if isinstance(model, dict) else None
        if name is None:
            top = data.get("model") if isinstance(data, dict) else None
            name = top.get("name", "lenet") if isinstance(top, dict) else "lenet"
        schema = MODEL_OPTIONS.get(name)
        return list(schema.model_fields) if schema else []
    if len(names) >= 2 and names[-2] == "profiles":
        return list(ProfileConfig.model_fields)
    schema = {"variants": VariantConfig, "model": ModelConfig, "training": TrainingConfig, "augment": AugmentConfig,
              "profiles": None}.get(last)
    return list(schema.model_fields) if schema else []


# Fields that belong to a section: an unknown top-level ``epochs`` is answered with "did you mean 'training.epochs'?".
_SECTIONS = (("training", TrainingConfig), ("training.augment", AugmentConfig), ("model.options", LeNetOptions),
             ("model.options", FcnnOptions), ("profiles.<profile>", ProfileConfig))


def _pick(errors: list[Any]) -> Any:
    """The most helpful of pydantic's errors: an unknown key first (it usually explains a 'missing' one too)."""
    return next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])


def _format_error(path: Path, err: ValidationError, data: dict[str, Any], prefix: tuple[Any, ...] = ()) -> str:
    """One line: the file, the field (as written in the file), what is wrong, what is allowed, the closest name."""
    e = _pick(err.errors())
    loc = _clean(tuple(prefix) + tuple(e["loc"]))
    where = _location(loc)
    kind = e["type"]
    got = e.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_fields(loc, data)
        hint = _closest(key, allowed)
        if not hint and len(loc) == 1:
            homes = [f"{section}.{key}" for section, schema in _SECTIONS if key in schema.model_fields]
            hint = f"; did you mean {homes[0]!r}?" if homes else ""
        return (f"{path}: unknown field {where!r}{hint} (allowed here: {', '.join(allowed)})" if allowed
                else f"{path}: unknown field {where!r}{hint}")
    if kind == "literal_error":
        expected = e.get("ctx", {}).get("expected", "")
        choices = re.findall(r"'([^']*)'", expected)
        return f"{path}: {where}: {got!r} is not allowed; choose from {', '.join(choices)}{_closest(got, choices)}"
    if kind == "missing":
        return f"{path}: {where}: this field is required"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        allowed = _allowed_fields(loc + ("?",), data)
        fields = f" with fields {', '.join(allowed)}" if allowed else ""
        return f"{path}: {where}: expected a mapping{fields} (got {got!r})"
    msg = e["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    indexed = re.match(r"\[(\d+)\] (.*)", msg)  # a list validator naming the offending item: field[i]
    if indexed:
        where, msg, got = f"{where}[{indexed.group(1)}]", indexed.group(2), None
    shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
    return f"{path}: {where}: {msg}{shown}" if where else f"{path}: {msg}"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader (plain data only: no Python tags), refusing duplicate keys, and reading ``1e-3`` as a
    number (YAML 1.1 would make it the string '1e-3', which the strict schema then refuses)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: let the base class report it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if isinstance(exc, yaml.constructor.ConstructorError):
        tag = re.search(r"tag '([^']*)'", problem)
        if tag:  # e.g. !!python/object/apply: never executed, refused
            problem = (f"tag {tag.group(1).replace('tag:yaml.org,2002:', '!!')!r} is not allowed "
                       "(study files hold plain data: mappings, lists, strings, numbers)")
        return f"{path}: YAML error{where}: {problem}"
    return f"{path}: YAML syntax error{where}: {problem}"


def load_study(path: str | Path) -> StudyConfig:
    """Read and validate one study file; raise ConfigError with a one-line message on any problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); "
                          "save the file as UTF-8") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error(path, exc)) from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML error: nested too deeply") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty; expected a mapping of fields (id, title, variants, ...)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields (id, title, variants, ...) at the top level, "
                          f"got a {type(data).__name__}")
    try:
        exp = StudyConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(path, err, data)) from None
    # Resolve every run once now, so a variant override that breaks a model or training field fails here.
    for index, variant in enumerate(exp.variants):
        for section, check in (("model", lambda v: exp.variant_model(v)),
                               ("training", lambda v: exp.variant_training(v, exp.training.epochs))):
            if not getattr(variant, section):
                continue
            try:
                check(variant)
            except ValidationError as err:
                raise ConfigError(_format_error(path, err, data, prefix=("variants", index, section))) from None
    return exp


def discover(directory: str | Path = "experiments") -> dict[str, tuple[Path, StudyConfig]]:
    """All study files in ``directory`` by id; two files with the same id are an error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory}: studies directory not found (run from the project root or pass --studies DIR)")
    found: dict[str, tuple[Path, StudyConfig]] = {}
    paths = sorted(p for p in directory.glob("*.y*ml") if p.suffix in (".yaml", ".yml") and not p.name.startswith("."))
    if not paths:
        raise ConfigError(f"{directory}: no study files (*.yaml) here; add one, or pass --studies DIR")
    for path in paths:
        exp = load_study(path)
        if exp.id in found:
            raise ConfigError(f"{path}: id {exp.id!r} is already used by {found[exp.id][0]}; ids must be unique")
        found[exp.id] = (path, exp)
    return dict(sorted(found.items(), key=lambda kv: (kv[1][1].order, kv[0])))


def select(studies: dict[str, tuple[Path, StudyConfig]], names: tuple[str, ...] | list[str]) -> list[str]:
    """Validate study names given on the command line (all when none)."""
    if not names:
        return list(studies)
    for name in names:
        if name not in studies:
            raise ConfigError(f"unknown study {name!r}{_closest(name, list(studies))} (declared: {', '.join(studies)})")
    return list(dict.fromkeys(names))
