"""The answers to a study's exercises, measured: what the post's "Exercises" section shows
(``templates/_exercises.md.j2``).

An exercise's runs are found in the store like a variant's (:func:`reportgen.study.collect`, with the exercise as the
only variant), so a run kept from another profile counts and a stale one does not. Once every seed of the profile
ran, the answer gives the exercise's test accuracy with its interval, the difference to the baseline — paired or
unpaired as :func:`reportgen.stats.difference` decides — with the study's verdict sentence, whether the networks
converged, whether the author's prediction held, and a figure of its curves against the baseline's. Before that,
the section says "not run yet" and gives the command.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from . import i18n
from .exercises import Exercise
from .measures import Convergence, convergence
from .stats import Comparison, Interval, difference, learning_caveat, mean_ci, test_accuracy
from .store import Store
from .study import RenderError, Study, VariantResults, collect

if TYPE_CHECKING:  # matplotlib: only when a figure is drawn
    from .figures import Figure, FigureWriter
    from .schema import StudyConfig


@dataclass
class PredictionCheck:
    """The author's prediction against the measurement: ``measured`` is what the interval shows (higher, lower,
    same — an interval that includes zero — or None: one seed, no interval), ``confirmed`` whether it matches
    (None when nothing can be said)."""
    expected: str                # higher / lower / same
    because: str
    measured: str | None
    confirmed: bool | None


@dataclass
class ExerciseAnswer:
    name: str
    label: str
    question: str
    hint: str
    command: str                               # the exact command that trains it
    baseline_label: str = ""                   # the variant it is compared with (``against``, else the baseline)
    prediction: PredictionCheck | None = None  # None: the study predicts nothing, or the exercise has not run
    expected: str | None = None                # the prediction, before it is checked (shown with the question)
    measured: bool = False
    seeds: list[int] = field(default_factory=list)
    dataset: str = ""
    parameters: int = 0
    epochs: int = 0
    acc: Interval | None = None                # test accuracy in %: mean, std, t-interval over seeds
    baseline_acc: Interval | None = None
    diff: Comparison | None = None             # exercise − baseline, in points, with its verdict
    convergence: Convergence | None = None
    figure: Figure | None = None               # its curves against the baseline's
    # how else its runs differ from the baseline's besides what it tries: (what, its value, the baseline's, why)
    differences: list[tuple[str, str, str, str]] = field(default_factory=list)


@dataclass
class ExercisesSection:
    """Everything the post's "Exercises" section shows."""
    exercises: list[ExerciseAnswer]
    answers: bool                  # False: questions only (``--no-answers`` or ``hide_answers: true``)
    profile: str
    render_command: str
    results: list[VariantResults] = field(default_factory=list)  # the measured exercises' runs (answers shown)

    @property
    def measured(self) -> int:
        return sum(e.measured for e in self.exercises)

    def study_with(self, study: Study) -> Study:
        """``study`` with the measured exercises as extra variants (for analyses marked ``with_exercises``)."""
        return Study(id=study.id, config=study.config, profile=study.profile, variants=[*study.variants,
                                                                                        *self.results])


def command(study_id: str, profile: str, name: str) -> str:
    return f"reportgen run {study_id} --profile {profile} --exercise {name}"


def exercise_results(study_id: str, exp: StudyConfig, exercise: Exercise, profile: str,
                     store: Store) -> VariantResults | None:
    """The exercise's complete runs under ``profile`` (every seed), or None when any seed has not run."""
    view = exp.model_copy(update={"variants": [exercise.as_variant()]})
    try:
        return collect(study_id, view, profile, store).variants[0]
    except RenderError:
        return None


def check_prediction(exercise: Exercise, diff: Comparison | None) -> PredictionCheck | None:
    """Whether the measured difference to the baseline bears out the exercise's prediction (see
    :class:`PredictionCheck`); "same" holds when the interval includes zero, which shows no clear difference at
    this number of seeds, not that there is none."""
    if exercise.prediction is None:
        return None
    measured = None
    if diff is not None and diff.n >= 2 and diff.low == diff.low:
        mean = diff.mean
        if diff.low > 0 or (diff.high == diff.low and mean > 0):
            measured = "higher"
        elif diff.high < 0 or (diff.high == diff.low and mean < 0):
            measured = "lower"
        else:
            measured = "same"
    confirmed = None if measured is None else measured == exercise.prediction.accuracy
    return PredictionCheck(expected=exercise.prediction.accuracy, because=exercise.prediction.because,
                           measured=measured, confirmed=confirmed)


def answer(study: Study, exercise: Exercise, store: Store, figures: FigureWriter | None,
           found: list[VariantResults] | None = None) -> ExerciseAnswer:
    """One exercise: its question and command, and once it ran, its measured answer (its runs are appended to
    ``found``)."""
    out = question(study, exercise)
    against = compared_with(study, exercise)
    base = next((v for v in study.available if v.name == against), None)
    result = exercise_results(study.id, study.config, exercise, study.profile, store)
    if result is None or not result.runs or base is None:
        return out
    if found is not None:
        found.append(result)
    out.measured, out.seeds, out.dataset = True, result.seeds, result.dataset
    out.parameters = result.runs[0].metrics.parameters
    out.epochs = len(result.runs[0].history.epochs)
    out.acc = mean_ci([test_accuracy(r) for r in result.runs])
    out.baseline_acc = mean_ci([test_accuracy(r) for r in base.runs])
    out.convergence = convergence(result.runs)
    out.diff = difference(base, result)
    if out.diff is not None and convergence(base.runs).still_learning:
        # the baseline's caveat; the exercise's own is the sentence after the verdict, with its numbers
        out.diff = replace(out.diff, verdict=learning_caveat(out.diff.verdict, [base.label]))
    out.prediction = check_prediction(exercise, out.diff)
    out.differences = differences(study, exercise, against)
    if figures is not None and out.epochs > 1:
        out.figure = _curves(figures, study, base, result)
    return out


def compared_with(study: Study, exercise: Exercise) -> str | None:
    """The variant the exercise's answer compares with: its ``against``, else the post's baseline (the first variant
    that ran when the study names none, where :meth:`Exercise.compared_with` takes the first declared)."""
    return exercise.against or study.baseline


def question(study: Study, exercise: Exercise) -> ExerciseAnswer:
    """The exercise before any answer: its question, hint, command, prediction and what it is compared with."""
    against = compared_with(study, exercise)
    label = next((v.label for v in study.config.variants if v.name == against), against or "")
    return ExerciseAnswer(name=exercise.name, label=exercise.title, question=exercise.question, hint=exercise.hint,
                          command=command(study.id, study.profile, exercise.name), baseline_label=label,
                          expected=exercise.prediction.accuracy if exercise.prediction else None)


def differences(study: Study, exercise: Exercise, against: str) -> list[tuple[str, str, str, str]]:
    """The confounds check's differences between the exercise's runs and those of the variant it is compared with
    (``against``) that the exercise declares with ``intended`` (what, the exercise's value, the other's, its
    ``intended_reason``)."""
    from .confounds import WHAT, compare, parameter_count
    exp, seed = study.config, study.config.profile(study.profile).seeds[0]
    base = exp.resolve(exp.variant(against), seed, study.profile)
    mine = exp.resolve(exercise.as_variant(), seed, study.profile)
    found = compare(base, mine, parameter_count(base["model"]), parameter_count(mine["model"]))
    return [(i18n._(WHAT[kind]), value, base_value, exercise.intended_reason)
            for kind, (value, base_value) in found.items() if kind in exercise.intended]


def _curves(figures: FigureWriter, study: Study, base: VariantResults, result: VariantResults) -> Figure:
    """The exercise's training curves against the baseline's (the study's learning-curves figure, two lines)."""
    from .analyses.curves import draw_curves
    series = {v.label: {key: np.array([[getattr(row, key) for row in r.history.epochs] for r in v.runs])
                        for key in ("train_loss", "val_loss", "train_acc", "val_acc")} for v in (base, result)}
    return draw_curves(figures, series, title=f"Exercise: {result.label} against {base.label}",
                       name=f"exercise-{result.name}")


def section(study: Study, store: Store, figures: FigureWriter | None, answers: bool = True) -> ExercisesSection | None:
    """The post's "Exercises" section (None for a study without exercises). With ``answers`` false, or when the
    study sets ``hide_answers``, nothing is measured or drawn: the section gives the questions and commands."""
    exp = study.config
    if not exp.exercises:
        return None
    show = answers and not exp.hide_answers
    found: list[VariantResults] = []
    items = [answer(study, e, store, figures, found) if show else question(study, e) for e in exp.exercises]
    return ExercisesSection(exercises=items, answers=show, profile=study.profile,
                            render_command=f"reportgen render {study.id} --profile {study.profile}", results=found)
