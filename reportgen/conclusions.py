"""A post's closing section, "What this shows — and what it doesn't": a :class:`Closing` for ``templates/_shows.md.j2``.

It gathers what the rest of the post has already computed — nothing here measures anything new:

- the verdicts of :func:`reportgen.summary.summary` (test accuracy, and the train − validation gap when the post shows
  the gap table), as printed above them, with their caveat when a variant was still learning;
- what the declared analyses found (:attr:`reportgen.analyses.Analysis.findings`, e.g. how much accuracy each
  variant keeps under shifts), each sentence once;
- the convergence diagnosis of every variant;
- the confounds check (:mod:`reportgen.confounds`): every difference from the baseline besides the declared factor,
  undeclared ones as limits, declared ones with their reason;
- the limits every study shares: its datasets, its number of seeds, its test set and its training budget.

The study's own prose adds its sentences around ``shows()`` (:mod:`reportgen.prose`); the template holds the words.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import i18n
from .confounds import Difference
from .markdown import signed_number
from .measures import gains_in_words
from .schema import StudyConfig
from .summary import Summary, Unavailable, VariantRow

if TYPE_CHECKING:  # the setup describes models: it imports torch
    from .context import Setup


@dataclass(frozen=True)
class Stated:
    """A difference from the baseline besides the declared factor, as the section states it: ``what`` differs
    ("parameter count"), both values, the variant's reason when it declares the difference (a sentence without
    its full stop), and for declared ones every difference of that variant (``parts``)."""
    label: str
    baseline_label: str
    what: str
    variant_value: str
    baseline_value: str
    reason: str
    parts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Note:
    """One variant's caveat: still learning (``text``: its gain in words), or ``runs`` of ``n`` runs whose
    validation loss disagrees with the checkpoint."""
    label: str
    text: str = ""
    runs: int = 0
    n: int = 0


@dataclass(frozen=True)
class Closing:
    """What ``_shows.md.j2`` reads as ``c``; an illustration (a study that trains nothing) has only its question."""
    question: str
    illustration: bool = False
    reads: bool = False                 # an illustration that reads other studies' results (a closing post)
    varies: str = ""
    verdicts: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    single_variant: bool = False
    rows: list[VariantRow] = field(default_factory=list)
    learning: list[Note] = field(default_factory=list)
    learning_labels: str = ""           # the still-learning variants, as a list in words
    learning_why: str = ""              # their gains in one phrase (measures.gains_in_words)
    not_measured: list[str] = field(default_factory=list)
    all_converged: bool = False
    confounds: list[Stated] = field(default_factory=list)
    declared: list[Stated] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    n_seeds: int = 0
    single_seed: bool = False
    test_sizes: list[int] = field(default_factory=list)
    train_limit: int | None = None
    train_total: int | None = None
    test_set_half: float | None = None  # the widest half-interval of the test set's own sampling error
    loss_disagrees: list[Note] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    eval_limit: int | None = None
    unavailable: list[Unavailable] = field(default_factory=list)
    baseline_missing: bool = False
    baseline_label: str | None = None


def closing(exp: StudyConfig, stats: Summary, facts: Setup, differences: list[Difference],
            findings: list[str], placed: list[str]) -> Closing:
    """The closing section of a post. ``placed``: the blocks the post shows (prose names, e.g. "gap"), so the
    section repeats only verdicts the reader has seen with their tables."""
    rows = stats.rows
    shown = {row.name for row in rows}
    verdicts = [c.verdict for c in stats.comparisons]
    if "gap" in placed:
        for c in stats.gap_comparisons:
            verdicts.append(c.verdict)
            verdicts.append(i18n._("Where that change in the gap comes from: %(label)s's training accuracy differs by "
                                   "%(train)s and its validation accuracy by %(val)s from %(baseline)s's (means over "
                                   "seeds).") % {"label": c.label, "train": _points(c.train_change),
                                                 "val": _points(c.val_change), "baseline": c.baseline_label})
    compared = [d for d in differences if d.variant in shown and d.baseline in shown]
    learning = [r for r in rows if r.convergence.still_learning]
    return Closing(
        question=exp.question, varies=exp.varies.strip().rstrip("."),
        verdicts=verdicts, findings=list(dict.fromkeys(findings)),
        single_variant=len(rows) == 1, rows=rows,
        learning=[Note(r.label, text=r.convergence.text) for r in learning],
        learning_labels=i18n.and_list([r.label for r in learning]),
        learning_why=gains_in_words([r.convergence for r in learning]) if learning else "",
        not_measured=[r.label for r in rows if r.convergence.window == 0],
        all_converged=bool(rows) and all(r.convergence.verdict == "converged" for r in rows),
        confounds=[_stated(d) for d in compared if not d.intended],
        declared=_declared([d for d in compared if d.intended]),
        datasets=list(dict.fromkeys(row.dataset_name for row in rows)),
        n_seeds=stats.n_seeds, single_seed=stats.single_seed,
        test_sizes=facts.test_sizes, train_limit=facts.train_limit, train_total=facts.train_total,
        test_set_half=max((r.test_set.half for r in rows if r.test_set), default=None),
        loss_disagrees=[Note(r.label, runs=r.checkpoint.disagree, n=r.checkpoint.n)
                        for r in rows if r.checkpoint.disagree],
        epochs=sorted({r.epochs for r in rows}), eval_limit=facts.eval_limit,
        unavailable=stats.unavailable, baseline_missing=stats.baseline_missing,
        baseline_label=stats.baseline_label)


def _declared(found: list[Difference]) -> list[Stated]:
    """The intended differences, one entry per variant (its reason covers all of them), with ``parts``
    ("parameter count, 15,626 (−75%) against 61,706")."""
    by_variant: dict[str, Stated] = {}
    for d in found:
        entry = by_variant.setdefault(d.variant, _stated(d))
        entry.parts.append(i18n._("%(what)s, %(value)s against %(base_value)s") % {
            "what": d.what, "value": d.variant_value, "base_value": d.baseline_value})
    return list(by_variant.values())


def _points(value: float) -> str:
    return i18n._("%(n)s points") % {"n": signed_number(value)}


def _stated(d: Difference) -> Stated:
    # the reason is a sentence of its own in the template, which ends it
    reason = " ".join(d.reason.split()).rstrip(".")
    return Stated(label=d.label, baseline_label=d.baseline_label, what=d.what, variant_value=d.variant_value,
                  baseline_value=d.baseline_value, reason=reason[:1].upper() + reason[1:])
