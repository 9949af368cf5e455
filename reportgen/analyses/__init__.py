"""The analyses a study can declare (``analyses: [curves, confusion, ...]``): one module each, found by name.

An analysis is a module ``reportgen/analyses/<name>.py`` with a module-level ``ANALYSIS = Analysis(...)``, plus its
partial template ``<name>.md.j2`` beside it. The module owns its computation (returning a dataclass that the
partial reads as ``a``), its figures (drawn through :meth:`reportgen.figures.FigureWriter.emit`, each cached on
its module's code), and its optional expensive per-run ``precompute`` step. Modules whose name starts with
``_`` are shared helpers, not analyses.

This package is the only list of analyses: config validation, ``reportgen list``, precompute, rendering and the
"Write your own study" page all read :func:`names` and :func:`get`. Adding an analysis is adding one module and its
partial; nothing else changes.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..suggest import suggest

if TYPE_CHECKING:
    from ..schema import StudyConfig

HERE = Path(__file__).parent


class AnalysisError(Exception):
    """A one-line problem computing an analysis (missing data, results that do not match the data, ...)."""


@dataclass(frozen=True)
class Analysis:
    name: str
    title: str                         # what the analysis is called in prose and on the "Write your own study" page
    summary: str                       # one line: what it shows (title and summary: English msgids, N_("..."))
    compute: Callable[..., Any]        # (study, figures) -> the module's result dataclass
    needs_training: bool = True        # False: works on a study that trains nothing (``trains: false``)
    needs_convolution: bool = False    # True: at least one variant's model must have a convolution
    precompute: Callable[..., Any] | None = None  # (study) -> None: fill the analysis cache, draw nothing
    # (result) -> sentences for the post's closing section, "What this shows — and what it doesn't": what the
    # analysis measured, every number computed from ``result`` (none typed in); None: it contributes nothing
    findings: Callable[[Any], list[str]] | None = None
    # True: computed over the study's variants and its measured exercises (whose answers the post shows), e.g. the
    # live model, where a reader tries an exercise's network beside the variants'
    with_exercises: bool = False

    @property
    def template(self) -> str:
        """The partial's name in the template loader (``<name>.md.j2`` beside the module)."""
        return f"{self.name}.md.j2"


@cache
def names() -> tuple[str, ...]:
    """Every analysis name, sorted: the modules of this package, read from the folder without importing them."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if not m.name.startswith("_")))


@cache
def get(name: str) -> Analysis:
    """The analysis called ``name`` (imports its module); KeyError with the closest name for an unknown one."""
    if name not in names():
        raise KeyError(f"unknown analysis {name!r}{suggest(name, names())} (analyses: {', '.join(names())})")
    analysis = importlib.import_module(f"{__name__}.{name}").ANALYSIS
    if analysis.name != name:
        raise RuntimeError(f"reportgen/analyses/{name}.py declares ANALYSIS.name {analysis.name!r}")
    return analysis


class ByVariant:
    """For prose: ``result("curves").variant("augmented")``, one variant's part of a result whose ``variants``
    list holds items with a ``name``."""
    variants: list[Any]

    def variant(self, name: str) -> Any:
        return pick(self.variants, name, "variant")


def pick(items: list[Any], name: str, what: str) -> Any:
    """The item of ``items`` whose ``.name`` is ``name`` (for prose reading a result), else a ValueError naming
    the closest: e.g. ``no layer of 'dropout' 'relu5'; did you mean 'relu4'? (choose from relu1, ...)``."""
    for item in items:
        if item.name == name:
            return item
    names_ = [item.name for item in items]
    raise ValueError(f"no {what} {name!r}{suggest(name, names_)} (choose from {', '.join(names_)})")


def why_not(name: str, exp: StudyConfig, profile: str = "quick") -> str | None:
    """Why analysis ``name`` cannot apply to study ``exp`` (None when it can): it needs trained networks and the
    study trains none, or it needs a convolution and no variant's model has one."""
    analysis = get(name)
    if analysis.needs_training and not exp.trains:
        return f"{name} needs trained networks, and this study trains none (trains: false)"
    if analysis.needs_convolution:
        from torch import nn

        from ..models import build_config
        models = _variant_models(exp, profile)
        if not any(any(isinstance(m, nn.Conv2d) for m in build_config(spec).modules())
                   for spec in models.values()):
            return (f"{name} needs a convolution, and no variant of this study has one "
                    f"(models: {', '.join(sorted({s['name'] for s in models.values()}))})")
    return None


def _variant_models(exp: StudyConfig, profile: str) -> dict[str, dict[str, Any]]:
    seeds = exp.profile(profile).seeds
    if not exp.variants:
        return {"model": {"name": exp.model.name, "options": dict(exp.model.options)}}
    return {v.name: exp.resolve(v, seeds[0], profile)["model"] for v in exp.variants}
