"""What a variant and an exercise share: the change they make to a study's baseline, written the same way.

:class:`Override` holds the types of the shared fields and their checks, once; :class:`reportgen.schema.VariantConfig`
and :class:`reportgen.exercises.Exercise` declare the fields in their own order (the order of the "Write your own
study" page) with these types. Each check names its kind (``a variant's``, ``an exercise's``) in its message.

This module imports nothing of reportgen but :mod:`reportgen.run_schema`, so both the study schema and the
exercises (which the schema imports) can build on it.
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Optional

from pydantic import Field, field_validator

from .run_schema import ID_PATTERN, INTENDED, ModelName, Strict

DatasetName = Literal["mnist", "fashion-mnist", "kmnist"]
Intended = Literal["parameters", "data", "dataset", "recipe", "epochs"]
# An override's own number of epochs under a profile, e.g. {full: 40}.
ProfileEpochs = dict[Literal["smoke", "quick", "full"], Annotated[int, Field(gt=0, le=1000)]]


class VariantModel(Strict):
    """A variant's model override: another model name and/or some options (checked when the run resolves)."""
    name: Optional[ModelName] = None
    options: dict[str, Any] = Field(default_factory=dict)


class Override(Strict):
    """The checks of the fields a variant and an exercise share (``name``, ``model``, ``training``,
    ``intended``, ``intended_reason``); a subclass declares those fields, sets :attr:`KIND` and calls
    :meth:`check_intended` from its own model validator."""
    KIND: ClassVar[str] = "an override's"  # how a message names the owner of the field: "a variant's"

    @field_validator("name", check_fields=False)
    @classmethod
    def _slug(cls, v: str) -> str:
        if not ID_PATTERN.match(v):
            raise ValueError("must be lower-case letters, digits, '-' or '_' (no path separators), at most 64")
        return v

    @field_validator("model", check_fields=False)
    @classmethod
    def _model_keys(cls, v: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
        if v is not None:
            VariantModel.model_validate(v)  # unknown keys and a wrong name fail here, with their location
        return v

    @field_validator("training", check_fields=False)
    @classmethod
    def _no_epochs(cls, v: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
        if v is not None and "epochs" in v:
            # resolve() takes epochs from the profile, so a value here would be silently ignored
            raise ValueError(f"{cls.KIND} epochs are set per profile by its own epochs: {{<profile>: N}}, "
                             "not in its training block")
        return v

    def check_intended(self) -> None:
        """``intended`` lists each kind once, and ``intended_reason`` explains a non-empty ``intended``."""
        intended: list[str] = getattr(self, "intended")
        dupes = sorted({n for n in intended if intended.count(n) > 1})
        if dupes:
            raise ValueError(f"intended: {dupes[0]!r} is listed twice")
        if getattr(self, "intended_reason") and not intended:
            raise ValueError(f"intended_reason explains intended differences, and intended is empty; add "
                             f"intended: [...] (from {', '.join(INTENDED)}) or remove intended_reason")
