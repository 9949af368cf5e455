"""What a verdict rests on: the gap's training accuracy measured on the stored checkpoint in eval mode (beside the
running figure), the checkpoint stated and validation loss shown where it disagrees with it, paired intervals only
where the variants share their data (Welch's unpaired interval elsewhere), and the test set's own binomial interval.
Synthetic data only: four one-epoch runs on a few hundred images, the rest from hand-made histories."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from reportgen import numbers
from reportgen.analyses._train_eval import train_accuracy_eval, train_eval_images
from reportgen.config import StudyConfig
from reportgen.data import load_splits
from reportgen.provision import provision
from reportgen.loader import Normalization
from reportgen.markdown import package_environment
from reportgen.measures import binomial_interval, loss_agreement
from reportgen.pipeline import precompute
from reportgen.settings import VAL_LOSS_EPOCH_TOLERANCE as TOL, VAL_LOSS_RISE_FRACTION as RISE
from reportgen.stats import PAIRED, UNPAIRED, difference, pairing
from reportgen.summary import summary
from reportgen.store import Store
from reportgen.study import Study, VariantResults, collect
from reportgen.runs import execute, plan_runs
from reportgen.train import evaluate
from tests.synthetic import stored, write_idx_dataset

STUDY = {
    "id": "measured", "title": "Measured", "dataset": "fashion-mnist", "model": {"name": "lenet"},
    "training": {"epochs": 1, "batch_size": 32, "lr": 0.003},
    "profiles": {"smoke": {"seeds": [0, 1], "train_limit": 300, "eval_limit": 100}},
    "baseline": "plain",
    "variants": [{"name": "plain", "label": "Plain"},
                 {"name": "dropout", "label": "Dropout", "model": {"options": {"dropout": 0.5}}}],
    "analyses": [],
}


def render(template: str, s: dict) -> str:
    return package_environment().get_template(template).render(summary=s, results_chart=None)


# ---- real runs: the eval-mode training accuracy --------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The study above trained for one epoch per run on synthetic images (provisioned as fashion-mnist) and read
    back as `render` reads it; the environment points at this module's data, results and cache."""
    root = tmp_path_factory.mktemp("measured")
    mp = pytest.MonkeyPatch()
    for name, value in (("REPORTGEN_DATA", root / "data"), ("REPORTGEN_CACHE", root / "cache"),
                        ("REPORTGEN_SKIP_CHECKSUM", "1"), ("REPORTGEN_OFFLINE", "1")):
        mp.setenv(name, str(value))
    write_idx_dataset(root / "idx", n_train=600, n_test=200)
    provision("fashion-mnist", root / "data", from_dir=root / "idx", skip_checksum=True, allow_download=False,
              allow_install=False, log=lambda *_: None)
    exp = StudyConfig.model_validate(STUDY)
    splits = load_splits("fashion-mnist")
    store = Store(root / "results")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # as `reportgen run` trains and stores them
        for run in plan_runs({exp.id: (None, exp)}, [exp.id], "smoke", store, {"fashion-mnist": splits.checksum}):
            execute(run, splits, torch.device("cpu"), store, "smoke", log=lambda *_: None, force=True)
        yield exp, store, collect(exp.id, exp, "smoke", store), root
    finally:
        torch.set_num_threads(threads)
        mp.undo()


@pytest.mark.slow
def test_eval_mode_training_accuracy_is_the_stored_weights_on_the_training_images(trained):
    _, _, study, _ = trained
    splits = load_splits("fashion-mnist")
    for v in study.available:
        for run in v.runs:
            measured = train_accuracy_eval(run)
            # the training images the run trained on: train_limit (300) respected, fewer than TRAIN_EVAL_IMAGES
            images, labels = train_eval_images(run)
            assert measured.n == len(labels) == 300
            assert torch.equal(images, splits.train_images[:300]) and torch.equal(labels, splits.train_labels[:300])
            model = run.load_model()
            norm = Normalization(**run.metrics.normalization.model_dump())
            _, direct, _ = evaluate(model, images, labels, norm, torch.device("cpu"))
            assert measured.acc == direct
            assert train_accuracy_eval(run, limit=50).n == 50
    # with dropout, the running figure (dropout on, weights moving) is not what the stored weights score
    dropout_run = study.variant("dropout").runs[0]
    running = dropout_run.history.epochs[dropout_run.metrics.best_epoch - 1].train_acc
    assert train_accuracy_eval(dropout_run).acc != running


@pytest.mark.slow
def test_the_gap_and_its_verdict_use_the_eval_mode_accuracy(trained):
    _, _, study, _ = trained
    s = summary(study)
    assert s.gap_basis == "eval" and s.gap_eval_missing is None and s.train_eval_n == 300
    gaps = {}
    for v, row in zip(study.available, s.rows):
        for run in v.runs:
            val = run.history.epochs[run.metrics.best_epoch - 1].val_acc
            gaps[(v.name, run.seed)] = 100 * (train_accuracy_eval(run).acc - val)
        assert row.gap.mean == pytest.approx(np.mean([gaps[(v.name, r.seed)] for r in v.runs]))
        assert row.train_acc_eval.mean == pytest.approx(
            np.mean([100 * train_accuracy_eval(r).acc for r in v.runs]))
    comparison = s.gap_comparisons[0]
    for seed, value in comparison.per_seed.items():
        assert value == pytest.approx(gaps[("dropout", seed)] - gaps[("plain", seed)])
    text = render("_gap.md.j2", s)
    flat = " ".join(text.split())
    assert "| Train (%) |" in text and "| Train, running (%) |" in text  # eval mode in the table, running folded
    assert "on all 300 of the training images" in flat and "never used for a verdict" in flat
    row = s.rows[1]
    fix = lambda ci: numbers.fixed(ci.mean, numbers.decimals(numbers.half_width(ci)))
    assert f"| Dropout | {fix(row.train_acc_eval)} | {fix(row.val_acc)} | {fix(row.gap)} (" in text
    assert f"| Dropout | {fix(row.train_acc_running)} | " in text


@pytest.mark.slow
def test_without_the_training_images_the_gap_says_it_uses_the_running_figure(trained, tmp_path, monkeypatch):
    _, _, study, _ = trained
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "other-cache"))
    monkeypatch.setenv("REPORTGEN_DATA", str(tmp_path / "empty"))
    s = summary(study)
    assert s.gap_basis == "running" and "fashion-mnist" in s.gap_eval_missing
    assert s.rows[0].gap.mean == pytest.approx(s.rows[0].gap_running.mean)
    text = render("_gap.md.j2", s)
    assert "could not be measured in eval mode here" in text and "Train, eval mode" not in text


@pytest.mark.slow
def test_precompute_caches_every_runs_training_accuracy(trained, tmp_path, monkeypatch):
    exp, store, study, _ = trained
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "cache"))
    messages = []
    precompute({exp.id: (None, exp)}, [exp.id], "smoke", store, messages.append)
    assert not any(m.startswith("warning") for m in messages), messages
    cached = list((tmp_path / "cache" / "analysis").rglob("train_eval-*.npz"))
    assert len(cached) == sum(len(v.runs) for v in study.available) == 4


# ---- hand-made histories: the checkpoint, pairing, the test set ------------------------------------------------
class FakeRun:
    """What the statistics read of a stored run."""
    def __init__(self, seed: int, test_acc: float, val_acc: list[float], val_loss: list[float] | None = None,
                 train_limit: int | None = None, test_size: int = 10_000):
        epochs = [{"epoch": e, "train_acc": a + 0.02, "val_acc": a} for e, a in enumerate(val_acc, 1)]
        for e, loss in zip(epochs, val_loss or []):
            e["val_loss"] = loss
        self.config = {"seed": seed, "train_limit": train_limit}
        self.history, self.metrics, self.record = stored(
            epochs, test_acc=test_acc, parameters=10, best_epoch=val_acc.index(max(val_acc)) + 1, test_size=test_size)

    @property
    def seed(self) -> int:
        return self.config["seed"]


RISING_ACC = [0.70, 0.76, 0.80, 0.81, 0.82, 0.83, 0.835, 0.84]        # checkpoint: the last epoch (8)
FALLING_LOSS = [1.0, 0.8, 0.7, 0.65, 0.62, 0.60, 0.59, 0.585]          # lowest at the checkpoint
OVERCONFIDENT = [1.0, 0.6, 0.5, 0.55, 0.6, 0.66, 0.7, 0.76]            # lowest at epoch 3, +52% at the checkpoint


def variant(name: str, accs: list[float], dataset: str = "fashion-mnist", val_loss: list[float] | None = None,
            train_limit: int | None = None, seeds: list[int] | None = None) -> VariantResults:
    seeds = list(range(len(accs))) if seeds is None else seeds
    runs = [FakeRun(s, a, RISING_ACC, val_loss, train_limit) for s, a in zip(seeds, accs)]
    return VariantResults(name=name, label=name.capitalize(), description="", dataset=dataset, runs=runs)


def study(*variants: VariantResults) -> Study:
    class Config:
        baseline = variants[0].name
    return Study(id="s", config=Config(), profile="quick", variants=list(variants))


def test_the_checkpoint_sentence_names_each_seeds_epoch():
    base = variant("base", [0.80, 0.81, 0.82], val_loss=FALLING_LOSS)
    base.runs[1].history.epochs[4].val_acc = 0.9     # seed 1's best validation accuracy: epoch 5
    base.runs[1].metrics.best_epoch = 5
    s = summary(study(base))
    assert s.rows[0].checkpoint.epochs == [8, 5, 8]
    text = render("_results.md.j2", s)
    assert "| Base | 1.0 | " in text and "| 8, 5, 8 of 8 |" in text  # each seed's epoch, in the detail table
    assert "([the checkpoint](../../methods.md#the-checkpoint))" in text  # the rule, ties included, is there


def test_the_disagreement_table_appears_only_when_validation_loss_rises_after_its_minimum():
    agree = summary(study(variant("base", [0.80, 0.81, 0.82], val_loss=FALLING_LOSS),
                          variant("other", [0.83, 0.84, 0.85], val_loss=FALLING_LOSS)))
    assert not agree.loss_disagrees and "disagrees" not in render("_results.md.j2", agree)
    rises = summary(study(variant("base", [0.80, 0.81, 0.82], val_loss=FALLING_LOSS),
                          variant("other", [0.83, 0.84, 0.85], val_loss=OVERCONFIDENT)))
    assert rises.loss_disagrees and rises.loss_disagree_runs == 3 and rises.runs == 6
    text = render("_results.md.j2", rises)
    flat = " ".join(text.split())
    assert "**Validation loss disagrees with the checkpoint** on 3 of 6 runs" in flat
    assert f"more than {TOL} epochs away" in flat and f"more than {round(100 * RISE)}% higher" in flat
    assert "| Other | 0.500 (3, 3, 3) | 8, 8, 8 | 0.760 | +52% | 3 of 3 |" in text
    assert "| Base | 0.585 (8, 8, 8) | 8, 8, 8 | 0.585 | 0% | 0 of 3 |" in text


@pytest.mark.parametrize("losses,disagree", [
    (OVERCONFIDENT, True),                                        # far from the checkpoint and well above it
    ([1.0, 0.6, 0.5, 0.5, 0.5, 0.5, 0.5, 0.505], False),          # far, but a flat plateau: +1%
    ([1.0, 0.8, 0.7, 0.65, 0.62, 0.60, 0.5, 0.6], False),         # 20% up, but one epoch from the checkpoint
])
def test_loss_and_accuracy_disagree_only_when_far_apart_and_clearly_higher(losses, disagree):
    epochs = stored([{"val_loss": v} for v in losses])[0].epochs
    assert loss_agreement(epochs, checkpoint=8).disagree is disagree
    assert loss_agreement(stored([{"val_acc": 0.5}])[0].epochs, checkpoint=1) is None


def test_variants_on_other_data_get_welchs_unpaired_interval_and_say_so():
    fashion = variant("fashion", [0.900, 0.905, 0.910])
    digits = variant("digits", [0.990, 0.991, 0.985], dataset="mnist")
    same = variant("same", [0.905, 0.912, 0.913])
    assert pairing(fashion, digits) == UNPAIRED and pairing(fashion, same) == PAIRED
    assert pairing(fashion, variant("fewer", [0.9, 0.9, 0.9], train_limit=2000)) == UNPAIRED
    d = difference(fashion, digits)
    welch = scipy_stats.ttest_ind([99.0, 99.1, 98.5], [90.0, 90.5, 91.0], equal_var=False).confidence_interval(0.95)
    assert d.pairing == UNPAIRED and d.per_seed == {}
    assert (d.low, d.high) == (pytest.approx(welch.low), pytest.approx(welch.high))
    assert "(95% CI" in d.verdict and "unpaired, 3 and 3 seeds)" in d.verdict and "paired over" not in d.verdict
    p = difference(fashion, same)
    assert p.pairing == PAIRED and "paired over 3 seeds" in p.verdict
    assert p.per_seed == {0: pytest.approx(0.5), 1: pytest.approx(0.7), 2: pytest.approx(0.3)}

    flat = lambda text: " ".join(text.split())
    unpaired = flat(render("_results.md.j2", summary(study(fashion, digits))))
    assert "unpaired (Welch), since the variants use different images" in unpaired and "paired seed" not in unpaired
    paired = flat(render("_results.md.j2", summary(study(fashion, same))))
    assert "paired seed against seed" in paired and "Welch" not in paired
    mixed = flat(render("_results.md.j2", summary(study(fashion, same, digits))))
    assert "paired for Same, unpaired for Digits" in mixed


def test_an_unpaired_difference_with_one_seed_a_side_has_no_interval():
    d = difference(variant("a", [0.90]), variant("b", [0.95], dataset="mnist"))
    assert d.pairing == UNPAIRED and math.isnan(d.low)
    assert d.verdict.startswith("On a single seed, B differs from A by +5.0 percentage points")


def test_the_binomial_interval_is_wilsons_from_scipy():
    ci = binomial_interval(85.0, 10_000)
    library = scipy_stats.binomtest(8_500, 10_000).proportion_ci(confidence_level=0.95, method="wilson")
    assert ci.correct == 8_500 and ci.n == 10_000
    assert (ci.low, ci.high) == (pytest.approx(100 * library.low), pytest.approx(100 * library.high))
    # Wilson's score interval written out: (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n)
    p, n, z = 0.85, 10_000, scipy_stats.norm.ppf(0.975)
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert ci.low == pytest.approx(100 * (centre - half)) and ci.high == pytest.approx(100 * (centre + half))
    assert binomial_interval(85.0, None) is None


def test_the_results_table_shows_the_binomial_interval_beside_the_seed_interval():
    s = summary(study(variant("base", [0.80, 0.81, 0.82]), variant("other", [0.83, 0.84, 0.85])))
    text = render("_results.md.j2", s)
    row = s.rows[0]
    assert "| Variant | Test accuracy (%) | CI of the test set | Parameters | Δ vs Base (points) (CI) |" in text
    assert (f"| Base | 81.0 ({row.acc.low:.1f} to {row.acc.high:.1f}) | "
            f"{row.test_set.low:.1f} to {row.test_set.high:.1f} | 10 | baseline |") in text
    assert "| Base | 1.0 | " in text  # the spread over seeds, in the collapsed detail table
    assert "(../../how-to-read.md#the-results-table)" in text  # where the two intervals are explained
