"""The schema of one run: its training recipe (optimizer, schedule, augmentation) and its model with its options,
with pydantic. A study file (:mod:`reportgen.schema`) combines these into variants and profiles; what a run
resolves to is hashed into its cache key.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

PROFILES = ("smoke", "quick", "full")
DATASET_NAMES = ("mnist", "fashion-mnist", "kmnist")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# What else a variant may differ in from the baseline, on purpose (reportgen.confounds checks each).
INTENDED = ("parameters", "data", "dataset", "recipe", "epochs")


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

# The zoo: every model a study can name, with the schema of its options. This is the one list of models: the
# schema's model names, the "Write your own study" page and reportgen.models.build_model all read it, and
# reportgen.models registers one builder per options class (``@builds(LeNetOptions)``).
MODEL_OPTIONS: dict[str, type[ImageOptions]] = {}


def zoo_model(name: str) -> Callable[[type[ImageOptions]], type[ImageOptions]]:
    """Class decorator: the options schema of the zoo's model ``name`` (adds ``name`` to :data:`MODEL_OPTIONS`)."""
    def register(options: type[ImageOptions]) -> type[ImageOptions]:
        MODEL_OPTIONS[name] = options
        return options
    return register


@zoo_model("lenet")
class LeNetOptions(ImageOptions):
    dropout: float = Field(0.0, ge=0, lt=1)
    pooling: bool = True
    activation: Activation = "relu"
    # Added after results were cached: left out of the resolved config at their default (OMITTED_AT_DEFAULT).
    batch_norm: bool = False
    channels: list[int] = [6, 16]  # widths of conv1 and conv2
    kernel_size: int = 5
    strided: bool = False      # stride-2 convolutions halve the maps instead of max-pooling (needs pooling: false)
    global_pool: bool = False  # average each final feature map to one number before fc1

    @model_validator(mode="after")
    def _strided_without_pooling(self) -> "LeNetOptions":
        if self.strided and self.pooling:
            raise ValueError("strided replaces max-pooling: set pooling: false with strided: true")
        return self

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
OMITTED_AT_DEFAULT: dict[str, tuple[str, ...]] = {
    "lenet": ("batch_norm", "channels", "kernel_size", "strided", "global_pool")}


@zoo_model("tiny")
class TinyOptions(ImageOptions):
    pass


@zoo_model("deep_pool")
class DeepPoolOptions(ImageOptions):
    activation: Activation = "tanh"


@zoo_model("fcnn")
class FcnnOptions(ImageOptions):
    hidden: Optional[list[int]] = None
    match_params_of: Optional[str] = None  # a convolutional model of the zoo (any but fcnn itself)
    activation: Activation = "relu"

    @field_validator("match_params_of")
    @classmethod
    def _a_convolutional_model(cls, v: Optional[str]) -> Optional[str]:
        names = [name for name, schema in MODEL_OPTIONS.items() if schema is not cls]
        if v is not None and v not in names:  # worded as a Literal's error: config reports the closest name
            expected = ", ".join(f"{n!r}" for n in names[:-1]) + f" or {names[-1]!r}"
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return v

    @model_validator(mode="after")
    def _one_of(self) -> "FcnnOptions":
        if self.hidden is not None and self.match_params_of is not None:
            raise ValueError("give either hidden or match_params_of, not both")
        if self.hidden is not None and any(h <= 0 for h in self.hidden):
            raise ValueError("hidden must be a list of positive layer widths ([] for none: a linear classifier)")
        return self


MODEL_NAMES = tuple(MODEL_OPTIONS)
ModelName = Literal[MODEL_NAMES]  # type: ignore[valid-type] - the registry's names, checked like any Literal


class ModelConfig(Strict):
    name: ModelName = "lenet"
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

    def typed_options(self) -> ImageOptions:
        """The options as the model's own options object (what reportgen.models builds from)."""
        return MODEL_OPTIONS[self.name].model_validate(self.options)
