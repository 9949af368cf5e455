"""The numbers every post states about its study, computed once: :func:`summary` gives per variant the test
accuracy with its intervals, the checkpoint, the train − validation gap and convergence, and every variant's
comparison with the baseline (:mod:`reportgen.stats` computes each interval, difference and verdict)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable

from .i18n import N_
from .measures import (Checkpoints, Convergence, TestSetInterval, binomial_interval, checkpoint, checkpoint_gap,
                       checkpoints, convergence, eval_train_accuracy)
from .settings import (CONFIDENCE, CONVERGED_GAIN_POINTS, CONVERGENCE_WINDOW, DATASET_TITLES as DATASET_NAMES,
                       TRAIN_EVAL_IMAGES, VAL_LOSS_EPOCH_TOLERANCE, VAL_LOSS_RISE_FRACTION)
from .stats import (GAP_WORDS, PAIRED, UNPAIRED, Comparison, Interval, difference, learning_caveat, mean_ci,
                    test_accuracy)
from .store import Run
from .study import Study, VariantResults

if TYPE_CHECKING:
    from .analyses._train_eval import TrainAccuracy


@dataclass
class VariantRow:
    """One variant's numbers in a post (see :func:`summary`), in percent or points; ``diff`` and ``gap_diff`` are
    its comparisons with the baseline (None for the baseline itself)."""
    name: str
    label: str
    dataset: str
    dataset_name: str
    seeds: list[int]
    n: int
    acc: Interval
    test_set: TestSetInterval | None
    parameters: int
    train_acc: Interval
    train_acc_running: Interval
    train_acc_eval: Interval | None
    train_eval_images: int | None
    val_acc: Interval
    gap: Interval
    gap_running: Interval
    best_epoch: Interval
    checkpoint: Checkpoints
    epochs: int
    wall_seconds: float
    convergence: Convergence
    diff: Comparison | None = None
    gap_diff: Comparison | None = None


@dataclass(frozen=True)
class Unavailable:
    """A variant left out of a post, and why (e.g. its dataset could not be provisioned)."""
    name: str
    label: str
    dataset: str
    reason: str


@dataclass(frozen=True)
class Summary:
    """The numbers every post states (see :func:`summary`), with the settings its sentences quote."""
    rows: list[VariantRow]
    baseline: str | None
    baseline_label: str | None
    baseline_missing: bool
    comparisons: list[Comparison]
    gap_comparisons: list[Comparison]
    unavailable: list[Unavailable]
    gap_basis: str                 # "eval": the gap's training side measured in eval mode; "running": as counted
    gap_eval_missing: str | None   # why the eval-mode training accuracy could not be measured
    train_eval_n: int | None       # the fewest training images it was measured on (None: not measured)
    confidence: float = CONFIDENCE
    converged_gain_points: float = CONVERGED_GAIN_POINTS
    convergence_window: int = CONVERGENCE_WINDOW
    train_eval_images: int = TRAIN_EVAL_IMAGES  # the most; fewer (train_eval_n) where runs trained on fewer
    val_loss_epoch_tolerance: int = VAL_LOSS_EPOCH_TOLERANCE
    val_loss_rise_pct: int = round(100 * VAL_LOSS_RISE_FRACTION)

    @property
    def confidence_pct(self) -> int:
        return round(100 * self.confidence)

    @property
    def paired(self) -> list[str]:
        return [c.label for c in self.comparisons if c.pairing == PAIRED]

    @property
    def unpaired(self) -> list[str]:
        return [c.label for c in self.comparisons if c.pairing == UNPAIRED]

    @property
    def n_seeds(self) -> int:
        return max((row.n for row in self.rows), default=0)

    @property
    def single_seed(self) -> bool:
        return self.n_seeds == 1

    @property
    def still_learning(self) -> list[str]:
        return [row.label for row in self.rows if row.convergence.still_learning]

    @property
    def runs(self) -> int:
        return sum(row.n for row in self.rows)

    @property
    def common_seeds(self) -> list[int] | None:
        rows = self.rows
        return rows[0].seeds if rows and all(row.seeds == rows[0].seeds for row in rows) else None

    @property
    def loss_disagree_runs(self) -> int:
        return sum(row.checkpoint.disagree for row in self.rows)

    @property
    def loss_disagrees(self) -> bool:
        return any(row.checkpoint.disagree for row in self.rows)

    @property
    def test_sizes(self) -> list[int]:
        return sorted({row.test_set.n for row in self.rows if row.test_set})


def _row(v: VariantResults, eval_train: dict[int, TrainAccuracy], gap: Callable[[Run], float]) -> VariantRow:
    """One variant's numbers (see :func:`summary`); ``gap`` is the gap the verdicts use."""
    marks = [checkpoint(r) for r in v.runs]
    running = [100 * c.train_acc for c in marks]
    measured = [100 * eval_train[id(r)].acc for r in v.runs] if eval_train else None
    acc = mean_ci([test_accuracy(r) for r in v.runs])
    return VariantRow(
        name=v.name, label=v.label, dataset=v.dataset, dataset_name=DATASET_NAMES.get(v.dataset, v.dataset),
        seeds=v.seeds, n=len(v.runs), acc=acc, test_set=binomial_interval(acc.mean, v.runs[0].metrics.test_size),
        parameters=v.runs[0].metrics.parameters,
        train_acc=mean_ci(running if measured is None else measured), train_acc_running=mean_ci(running),
        train_acc_eval=mean_ci(measured) if measured is not None else None,
        train_eval_images=min(eval_train[id(r)].n for r in v.runs) if eval_train else None,
        val_acc=mean_ci([100 * c.val_acc for c in marks]),
        gap=mean_ci([gap(r) for r in v.runs]), gap_running=mean_ci([checkpoint_gap(r) for r in v.runs]),
        best_epoch=mean_ci([c.epoch for c in marks]), checkpoint=checkpoints(v.runs),
        epochs=len(v.runs[0].history.epochs), wall_seconds=sum(r.record.wall_seconds for r in v.runs),
        convergence=convergence(v.runs))


def _compare(base: VariantResults, base_row: VariantRow, v: VariantResults, row: VariantRow,
             gap: Callable[[Run], float], eval_train: bool) -> None:
    """``row``'s comparisons with the baseline, in test accuracy (``row.diff``) and in the gap (``row.gap_diff``)."""
    # a verdict about a network that was still learning may not survive longer training: it says so
    learning = [r.label for r in (base_row, row) if r.convergence.still_learning]
    diff = difference(base, v)
    if diff is not None:
        row.diff = replace(diff, verdict=learning_caveat(diff.verdict, learning))
    gap_diff = difference(base, v, value=gap, metric=N_("the train − validation gap"), words=GAP_WORDS)
    if gap_diff is not None:
        # where the change comes from: the training side or the validation side of the gap (means)
        train = (lambda r: r.train_acc_eval) if eval_train else (lambda r: r.train_acc_running)
        row.gap_diff = replace(gap_diff, verdict=learning_caveat(gap_diff.verdict, learning),
                               train_change=train(row).mean - train(base_row).mean,
                               val_change=row.val_acc.mean - base_row.val_acc.mean)


def summary(study: Study) -> Summary:
    """The numbers every post states, in percent / percentage points: per variant the test accuracy (mean, std,
    t-interval over seeds) with the test set's own binomial interval (``test_set``), parameters, and at each run's
    checkpoint (the epoch of its highest validation accuracy: ``checkpoint``, with whether validation loss agrees)
    the training accuracy — measured on the stored weights in eval mode (``train_acc_eval``, the one the gap
    uses) beside the running figure counted during training (``train_acc_running``) — the validation accuracy and
    their gap, and whether its networks converged (``convergence``, from the stored histories); and the difference
    of every variant to the study's ``baseline`` (default: the first variant) in test accuracy (``comparisons``)
    and in the train − validation gap (``gap_comparisons``), each paired or unpaired as :func:`pairing` decides,
    with its interval and verdict — a verdict about a variant that was still learning says so. When the eval-mode
    training accuracy cannot be measured here, ``gap_basis`` is "running" and ``gap_eval_missing`` says why.
    Variants left out (``unavailable``) are listed with the reason."""
    eval_train, eval_missing = eval_train_accuracy(study)

    def gap(run: Run) -> float:  # eval-mode training accuracy when measured for every run, else the running one
        return checkpoint_gap(run, eval_train[id(run)].acc if eval_train else None)

    rows = [_row(v, eval_train, gap) for v in study.available]
    baseline_name = study.baseline
    base = next((v for v in study.available if v.name == baseline_name), None)
    if base is not None:
        base_row = rows[study.available.index(base)]
        for v, row in zip(study.available, rows):
            if v.name != baseline_name:
                _compare(base, base_row, v, row, gap, bool(eval_train))
    return Summary(
        rows=rows, baseline=baseline_name,
        baseline_label=next((v.label for v in study.variants if v.name == baseline_name), baseline_name),
        baseline_missing=baseline_name is not None and base is None and bool(study.variants),
        comparisons=[row.diff for row in rows if row.diff is not None],
        gap_comparisons=[row.gap_diff for row in rows if row.gap_diff is not None],
        unavailable=[Unavailable(name=v.name, label=v.label, dataset=v.dataset, reason=v.unavailable)
                     for v in study.variants if v.unavailable],
        gap_basis="eval" if eval_train else "running", gap_eval_missing=eval_missing,
        train_eval_n=min((row.train_eval_images for row in rows), default=None) if eval_train else None)
