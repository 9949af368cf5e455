"""Reading other studies' results: what a post that sums up several studies quotes with ``from_study("id")``.

A study lists the studies it reads under ``reads:`` in its YAML. Its post is in a site only when every one of them
has complete results for the profile (:func:`reportgen.pipeline.complete`); otherwise the home page lists it as not
run, with the command that runs what it reads. Nothing here is named after a study: the prose names them.

A reader gives prose the same numbers a study's own post gives its prose — accuracies and paired differences over
seeds, a variant's facts, an analysis' computed result — read from the cached results, never trained.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from markupsafe import Markup

from . import analyses
from .context import Setup, setup
from .summary import Summary, VariantRow, summary
from .store import Store
from .study import RenderError, collect

if TYPE_CHECKING:
    from .figures import FigureWriter


@dataclass
class StudyReader:
    """One other study's results for one profile, as prose reads them (``from_study("pooling").diff("gap")``)."""
    id: str
    title: str
    link: Markup
    _study: Any
    _stats: Summary
    _facts: Setup
    _figures: FigureWriter
    _results: dict[str, Any] = field(default_factory=dict)

    def _row(self, name: str) -> VariantRow:
        for row in self._stats.rows:
            if row.name == name:
                return row
        names = [r.name for r in self._stats.rows]
        raise ValueError(f"from_study({self.id!r}): no variant {name!r} with results (variants: {', '.join(names)})")

    def acc(self, name: str) -> Any:
        from .prose import Measure
        return Measure.of(self._row(name).acc, "%")

    def diff(self, name: str) -> Any:
        from .post import _measure
        row = self._row(name)
        if not row.diff:
            raise ValueError(f"from_study({self.id!r}).diff({name!r}): {name!r} is the baseline; differences are to it")
        return _measure(row.diff)

    def variant(self, name: str) -> Any:
        from .post import _variant
        facts = next((v for v in self._facts.variants if v.name == name), None)
        if facts is None:
            raise ValueError(f"from_study({self.id!r}).variant({name!r}): no such variant")
        return _variant(facts, self._row(name))

    def result(self, name: str) -> Any:
        """An analysis the study declares, computed from its cached results (figures drawn into this post's)."""
        if name not in self._study.config.analyses:
            raise ValueError(f"from_study({self.id!r}).result({name!r}): the study does not declare it "
                             f"(its analyses: {', '.join(self._study.config.analyses)})")
        if name not in self._results:
            try:
                self._results[name] = analyses.get(name).compute(self._study, self._figures)
            except analyses.AnalysisError as exc:
                raise RenderError(f"{self.id}: {exc}") from None
        return self._results[name]

    @property
    def still_learning(self) -> list[str]:
        """The labels of its variants whose networks were still learning when training stopped."""
        return [r.label for r in self._stats.rows if r.convergence.still_learning]

    @property
    def seeds(self) -> int:
        return self._stats.n_seeds


def readers(studies: dict[str, Any], profile: str, store: Store, figures: FigureWriter,
            link: Callable[[str], Markup]) -> Callable[[str], StudyReader]:
    """``from_study`` for one post: each study read once, on first use. ``studies``: id -> its StudyConfig."""
    cache: dict[str, StudyReader] = {}

    def read(exp_id: str) -> StudyReader:
        if exp_id not in cache:
            exp = studies[exp_id]
            study = collect(exp_id, exp, profile, store)
            cache[exp_id] = StudyReader(id=exp_id, title=exp.title, link=link(exp_id), _study=study,
                                        _stats=summary(study), _facts=setup(exp, study, profile), _figures=figures)
        return cache[exp_id]
    return read
