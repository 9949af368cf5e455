"""The schema of a study file, with pydantic: its profiles, its variants and what each run resolves to. The
fields of one run (training recipe, model options) are in :mod:`reportgen.run_schema`.

Loading a file and turning a validation error into one line is :mod:`reportgen.config`'s job.
"""
from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Optional

from pydantic import Field, field_validator, model_validator

from .run_schema import (  # noqa: F401 - the names a study file's schema is built from, importable from here
    DATASET_NAMES, ID_PATTERN, INTENDED, MODEL_NAMES, MODEL_OPTIONS, OMITTED_AT_DEFAULT, PROFILES, ModelName,
    TRAINING_OMITTED_AT_DEFAULT, Activation, AugmentConfig, ConfigError, FcnnOptions, LeNetOptions, ModelConfig,
    Strict, TrainingConfig)
from .settings import SPLIT_SEED, VAL_SIZE
from .suggest import suggest
from .exercises import Exercise, check_exercises
from .override import DatasetName, Intended, Override, ProfileEpochs, VariantModel  # noqa: F401


class ProfileConfig(Strict):
    epochs: Optional[int] = Field(None, gt=0, le=1000)
    seeds: Optional[list[int]] = None
    train_limit: Optional[int] = Field(None, gt=0)
    eval_limit: Optional[int] = Field(None, gt=0)
    shift_images: Optional[int] = Field(None, gt=0)  # shift grid on the first N test images (CPU only)
    # Overrides of the study's training block under this profile (any field but epochs), applied before a
    # variant's own overrides: e.g. quick trains 2,000 images in batches of 32, full all images in batches of 128.
    training: Optional[dict[str, Any]] = None

    @field_validator("training")
    @classmethod
    def _training_keys(cls, v: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
        if v is not None:
            if "epochs" in v:
                raise ValueError("epochs is set by profiles.<profile>.epochs, not in its training block")
            TrainingConfig.model_validate(v)  # unknown keys and bad values fail here, with their location
        return v

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


@dataclass(frozen=True)
class ProfileSettings:
    """What a profile resolves to for one study (:meth:`StudyConfig.profile`): the defaults of
    :data:`DEFAULT_PROFILES`, overridden by the study's ``profiles`` block."""
    epochs: int
    seeds: list[int]
    train_limit: Optional[int] = None
    eval_limit: Optional[int] = None
    shift_images: Optional[int] = None


class VariantConfig(Override):
    KIND: ClassVar[str] = "a variant's"
    name: str
    label: Optional[str] = None
    description: str = ""
    dataset: Optional[DatasetName] = None
    model: Optional[dict[str, Any]] = None
    training: Optional[dict[str, Any]] = None
    optional: bool = False  # leave it out (with a note in the post) when its dataset cannot be provisioned
    # Differences from the baseline besides the study's declared factor that are there on purpose (the confounds
    # check then states them instead of warning), and why. Not part of any run's config or cache key.
    intended: list[Intended] = Field(default_factory=list)
    intended_reason: str = ""
    # This variant's own number of epochs under a profile, e.g. {full: 40} for a network that needs longer to
    # converge than the baseline; a difference from the baseline must be declared with intended: [epochs].
    epochs: ProfileEpochs = Field(default_factory=dict)

    @model_validator(mode="after")
    def _intended(self) -> "VariantConfig":
        self.check_intended()
        return self


class StudyConfig(Strict):
    id: str
    title: str
    description: str = ""
    question: str = ""
    varies: str = ""  # the one thing the variants change, in words (the setup table and the closing section)
    # The kind of difference that *is* what the study varies, when it is one the confounds check measures (dataset
    # for a study of datasets, recipe for one of augmentation): never warned about, never stated as a limitation.
    factor: Optional[Literal["parameters", "data", "dataset", "recipe", "epochs"]] = None
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
    # Other studies whose results this one's prose reads (from_study("id")): its post is in a site only when each
    # of them has complete results for the profile (reportgen.crossread).
    reads: list[str] = Field(default_factory=list)
    # Questions a reader answers by running one more variant (reportgen/exercises.py); never part of a variant's
    # resolved config, so adding one changes no cache key. hide_answers: the post gives the questions only.
    exercises: list[Exercise] = Field(default_factory=list)
    hide_answers: bool = False

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
                hint = suggest(name, analyses.names())
                if hint:  # the closest name is enough; the whole list is long (every module of reportgen/analyses/)
                    raise ValueError(f"[{index}] {name!r} is not allowed{hint} (`reportgen list` and the 'Write "
                                     "your own study' page list them all)")
                raise ValueError(f"[{index}] {name!r} is not allowed; choose from {', '.join(analyses.names())}")
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
        for index, v in enumerate(self.variants):
            if self.factor is not None and self.factor in v.intended:
                raise ValueError(f"variants[{index}].intended: lists {self.factor!r}, the study's factor; a "
                                 f"difference in what the study varies needs no declaration, so remove it")
        if self.baseline is not None and self.baseline not in names:
            raise ValueError(f"baseline: {self.baseline!r} is not a variant name{suggest(self.baseline, names)} "
                             f"(variants: {', '.join(names)})")
        return self

    @model_validator(mode="after")
    def _exercises(self) -> "StudyConfig":
        check_exercises(self)
        return self

    # ---- resolution -------------------------------------------------------------------------------------
    def profile(self, name: str) -> ProfileSettings:
        """Epochs, seeds and limits for a profile: defaults, overridden by this file's ``profiles`` block."""
        merged = dict(DEFAULT_PROFILES[name])
        if name in self.profiles:
            merged.update({k: v for k, v in self.profiles[name].model_dump().items()
                           if v is not None and k != "training"})
        merged.setdefault("epochs", self.training.epochs)
        return ProfileSettings(**merged)

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

    def variant_epochs(self, variant: VariantConfig, profile: str) -> int:
        """The variant's own epochs under ``profile`` when it declares them, else the profile's."""
        return variant.epochs.get(profile) or self.profile(profile).epochs

    def variant_training(self, variant: VariantConfig, epochs: int, profile: Optional[str] = None) -> TrainingConfig:
        """The study's training block, then the profile's overrides, then the variant's, with the given epochs."""
        training = self.training.model_dump()
        if profile in self.profiles:
            training.update(copy.deepcopy(self.profiles[profile].training or {}))
        training.update(copy.deepcopy(variant.training or {}))
        training["epochs"] = epochs
        return TrainingConfig.model_validate(training)

    def resolve(self, variant: VariantConfig, seed: int, profile: str) -> dict[str, Any]:
        """The complete, plain-data config of one run (what is hashed into its cache key)."""
        prof = self.profile(profile)
        model_cfg = self.variant_model(variant)
        training_cfg = self.variant_training(variant, self.variant_epochs(variant, profile), profile)
        return {
            "dataset": variant.dataset or self.dataset,
            "model": {"name": model_cfg.name, "options": model_cfg.options},
            "training": training_cfg.resolved(),
            "seed": seed,
            "train_limit": prof.train_limit,
            "eval_limit": prof.eval_limit,
            "val_size": VAL_SIZE,
            "split_seed": SPLIT_SEED,
        }
