"""Exercises: questions a reader answers by running one more variant of a study.

An exercise is declared in the study file under ``exercises:``. It has a name, a question in the study's own words,
an optional hint and an optional prediction, and the change to try, written exactly like a variant override
(``dataset``, ``model``, ``training``, ``epochs``, with ``intended`` for a difference it makes on purpose).
``reportgen run STUDY --exercise NAME`` trains it over the profile's seeds like any variant; the post then answers
the question from the measured numbers (:mod:`reportgen.answers`).

An exercise is never part of a variant's resolved config: the cache keys of the study's own runs do not change
when exercises are added, and an exercise identical to another study's variant has that variant's cache key, so
its runs are copied rather than trained (the store's twin mechanism).

This module imports nothing of reportgen but :mod:`reportgen.run_schema` and :mod:`reportgen.override` at load
time, so the study schema (:mod:`reportgen.schema`) can use :class:`Exercise` without an import cycle.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Optional

from pydantic import Field, model_validator

from .override import DatasetName, Intended, Override, ProfileEpochs
from .run_schema import ConfigError, Strict
from .suggest import suggest

if TYPE_CHECKING:
    from .schema import StudyConfig, VariantConfig

# The profiles that run every exercise of a study without being asked: the published site carries every answer.
EXERCISE_PROFILES = ("full",)
# What an exercise's answer compares: its test accuracy against the baseline's.
OUTCOMES = ("higher", "lower", "same")
# The fields an exercise shares with a variant: the change it makes, written exactly like a variant override.
VARIANT_FIELDS = ("name", "label", "description", "dataset", "model", "training", "epochs", "intended",
                  "intended_reason")


class Prediction(Strict):
    """What the study's author expects: the exercise's test accuracy against the baseline's, and why."""
    accuracy: Literal["higher", "lower", "same"]
    because: str = ""


class Exercise(Override):
    KIND: ClassVar[str] = "an exercise's"
    name: str
    question: str = Field(min_length=1)
    hint: str = ""
    prediction: Optional[Prediction] = None
    against: Optional[str] = None  # the variant its answer compares with (default: the study's baseline)
    label: Optional[str] = None
    description: str = ""
    dataset: Optional[DatasetName] = None
    model: Optional[dict[str, Any]] = None
    training: Optional[dict[str, Any]] = None
    epochs: ProfileEpochs = Field(default_factory=dict)
    intended: list[Intended] = Field(default_factory=list)
    intended_reason: str = ""

    @model_validator(mode="after")
    def _changes_something(self) -> "Exercise":
        if not (self.dataset or self.model or self.training or self.epochs):
            raise ValueError(f"exercise {self.name!r} changes nothing; give the change to try as a variant "
                             f"override: dataset, model, training or epochs")
        self.check_intended()
        return self

    @property
    def title(self) -> str:
        return self.label or self.name

    def compared_with(self, exp: "StudyConfig") -> Optional[str]:
        """The name of the variant its answer compares with: ``against``, or the study's baseline."""
        return self.against or exp.baseline or (exp.variants[0].name if exp.variants else None)

    def as_variant(self) -> "VariantConfig":
        """The variant this exercise trains: what :meth:`StudyConfig.resolve` and the store see."""
        from .schema import VariantConfig
        return VariantConfig(**{**{k: getattr(self, k) for k in VARIANT_FIELDS}, "label": self.title})

    def says(self) -> set[str]:
        """The kinds of difference from the baseline this exercise states by its override: a dataset is a dataset
        change, a training block a recipe change, its own epochs an epochs change. A model override states no kind:
        a bigger or smaller network is a parameter difference it must declare with ``intended``."""
        return ({"dataset"} if self.dataset else set()) | ({"recipe"} if self.training else set()) | \
            ({"epochs"} if self.epochs else set())


def check_exercises(exp: "StudyConfig") -> None:
    """Exercise names are unique and no variant's (their runs share the study's folder in the store); a study
    that trains nothing has no exercise to run. Raises ValueError naming the field."""
    names = [e.name for e in exp.exercises]
    variants = [v.name for v in exp.variants]
    for index, name in enumerate(names):
        if names.index(name) != index:
            raise ValueError(f"exercises[{index}].name: {name!r} is used twice; exercise names must be unique")
        if name in variants:
            raise ValueError(f"exercises[{index}].name: {name!r} is already a variant's name; an exercise needs a "
                             f"name of its own")
        against = exp.exercises[index].against
        if against is not None and against not in variants:
            raise ValueError(f"exercises[{index}].against: {against!r} is not a variant of this study; it names the "
                             f"variant the answer compares with ({', '.join(variants)}){suggest(against, variants)}")
    if names and not exp.trains:
        raise ValueError("exercises: a study that trains nothing (trains: false) has no exercise to run")


# ---- which exercises a command runs ---------------------------------------------------------------------------
def runs_by_default(profile: str) -> bool:
    """Whether ``reportgen run`` trains every exercise without being asked (the full profile does)."""
    return profile in EXERCISE_PROFILES


def studies_declaring(studies: dict[str, tuple[Path, Any]], names: tuple[str, ...] | list[str]) -> list[str]:
    """The studies that declare any of the exercise ``names`` (what ``run --exercise NAME`` with no study trains)."""
    return [sid for sid, (_, exp) in studies.items() if any(e.name in names for e in exp.exercises)]


def choose(studies: dict[str, tuple[Path, Any]], selected: list[str], profile: str,
           names: tuple[str, ...] | list[str] = (), every: bool = False) -> dict[str, list[Exercise]]:
    """The exercises to train, by study: ``names`` (each must be declared by a selected study), or all of them with
    ``every`` or under a profile that runs them by default. A name no selected study declares is a ConfigError:
    one line with the closest declared name."""
    declared = {sid: studies[sid][1].exercises for sid in selected}
    known = [e.name for exercises in declared.values() for e in exercises]
    for name in names:
        if name not in known:
            where = ", ".join(selected) if len(selected) <= 3 else f"{len(selected)} studies"
            listed = f" (declared: {', '.join(known)})" if known else " (they declare no exercise)"
            raise ConfigError(f"--exercise {name!r}: no such exercise in {where}{suggest(name, known)}{listed}")
    run_all = every or runs_by_default(profile)
    return {sid: [e for e in exercises if run_all or e.name in names] for sid, exercises in declared.items()
            if any(run_all or e.name in names for e in exercises)}


def extra_variants(chosen: dict[str, list[Exercise]]) -> dict[str, list["VariantConfig"]]:
    """The planner's view of the chosen exercises: the variants they train, by study."""
    return {sid: [e.as_variant() for e in exercises] for sid, exercises in chosen.items()}


# ---- the confounds check ----------------------------------------------------------------------------------------
def warnings(path: Path, exp: StudyConfig, profile: str) -> list[str]:
    """One line per exercise that differs from the variant it is compared with (:meth:`Exercise.compared_with`) in
    more than it says (see :meth:`Exercise.says`) and does not declare it with ``intended``; ``reportgen list``
    prints them, as it does the variants' confounds."""
    from .confounds import WHAT, compare, parameter_count
    if not exp.exercises:
        return []
    seed = exp.profile(profile).seeds[0]
    lines = []
    for index, exercise in enumerate(exp.exercises):
        against = exercise.compared_with(exp)
        if against is None:
            continue
        base = exp.variant(against)
        base_config = exp.resolve(base, seed, profile)
        base_count = parameter_count(base_config["model"])
        config = exp.resolve(exercise.as_variant(), seed, profile)
        found = compare(base_config, config, base_count, parameter_count(config["model"]))
        for kind, (value, base_value) in found.items():
            if kind in exercise.says() or kind in exercise.intended:
                continue
            declared = [*exercise.intended, kind]
            lines.append(f"{path}: exercises[{index}] {exercise.name!r} differs from {base.name!r}, which it is "
                         f"compared with, in "
                         f"{WHAT[kind]} as well as in what it says it changes: {value} vs {base_value}; if that "
                         f"is intended, add to the exercise: intended: [{', '.join(declared)}] and "
                         f"intended_reason: \"why\"")
    return lines + _same_runs(path, exp)


def _same_runs(path: Path, exp: StudyConfig) -> list[str]:
    """An exercise that resolves to one of its own study's variants under some profile measures nothing new there
    (e.g. a training override that a profile's own training block already sets)."""
    lines = []
    for index, exercise in enumerate(exp.exercises):
        for profile in EXERCISE_PROFILES + ("quick",):
            seed = exp.profile(profile).seeds[0]
            config = exp.resolve(exercise.as_variant(), seed, profile)
            same = next((v.name for v in exp.variants if exp.resolve(v, seed, profile) == config), None)
            if same is not None:
                lines.append(f"{path}: exercises[{index}] {exercise.name!r} trains exactly the runs of variant "
                             f"{same!r} under the {profile} profile, so its answer there measures nothing new; "
                             f"change what it tries")
                break
    return lines
