"""The calibration analysis: ECE and reliability bins against hand-computed examples, per-seed ECE with its interval
and the paired difference on crafted predictions, and compute() + partial on a trained synthetic study."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import jinja2
import numpy as np
import pytest
import torch

from reportgen import analyses
from reportgen.analyses import calibration
from reportgen.analyses.calibration import bin_index, expected_calibration_error, reliability_bins
from reportgen.config import ExperimentConfig
from reportgen.data import load_splits, provision
from reportgen.figures import FigureWriter
from reportgen.render import _environment
from reportgen.store import Store, cache_key
from reportgen.study import Study, VariantResults, collect
from reportgen.train import run_files, train_run, versions
from tests.synthetic import write_idx_dataset


def predictions(confidence: list[float], correct: list[bool], classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities where image i predicts class 0 with ``confidence[i]`` (the rest spread evenly) and
    its label is 0 when ``correct[i]``, else 1."""
    conf = np.asarray(confidence, dtype=np.float64)
    probs = np.repeat(((1 - conf) / (classes - 1))[:, None], classes, axis=1)
    probs[:, 0] = conf
    return np.where(correct, 0, 1), probs


# ---- ECE and bins -----------------------------------------------------------------------------------------------
def test_perfectly_calibrated_predictions_have_zero_ece():
    # bin (0.867, 0.933]: 10 at 90% confidence, 9 right; bin (0.533, 0.6]: 5 at 60%, 3 right
    labels, probs = predictions([0.9] * 10 + [0.6] * 5, [True] * 9 + [False] + [True] * 3 + [False] * 2)
    assert expected_calibration_error(labels, probs) == pytest.approx(0.0, abs=1e-12)


def test_certain_and_half_wrong_gives_ece_one_half():
    labels, probs = predictions([1.0] * 8, [True, False] * 4)
    assert expected_calibration_error(labels, probs) == pytest.approx(0.5)


def test_ece_of_a_hand_computed_two_bin_example():
    # 4 images at 90% with 2 right: |0.5 − 0.9| = 0.4, weight 4/10; 6 at 60% with 3 right: |0.5 − 0.6| = 0.1, weight
    # 6/10. ECE = 0.4·0.4 + 0.6·0.1 = 0.22
    labels, probs = predictions([0.9] * 4 + [0.6] * 6, [True, True, False, False] + [True] * 3 + [False] * 3)
    assert expected_calibration_error(labels, probs) == pytest.approx(0.22)
    bins = reliability_bins(labels, probs)
    assert bins["count"].sum() == 10 and len(bins["count"]) == 15
    assert np.flatnonzero(bins["count"]).tolist() == [8, 13]  # 0.6 in (8/15, 9/15], 0.9 in (13/15, 14/15]
    assert bins["count"][[8, 13]].tolist() == [6, 4]
    assert bins["accuracy"][[8, 13]] == pytest.approx([0.5, 0.5])
    assert bins["confidence"][[8, 13]] == pytest.approx([0.6, 0.9])
    assert np.isnan(bins["accuracy"][0]) and np.isnan(bins["confidence"][0])


def test_bins_are_right_closed():
    edges = np.linspace(0, 1, 16)
    assert bin_index(edges[[1, 2, 14, 15]]).tolist() == [0, 1, 13, 14]  # m/15 belongs to bin m − 1
    assert bin_index(np.array([0.0, 1e-9, 0.0667, 0.99999])).tolist() == [0, 0, 1, 14]


def test_ece_counts_every_bin_with_its_weight():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10) * 0.3, size=500)
    labels = rng.integers(0, 10, size=500)
    bins = reliability_bins(labels, probs)
    filled = bins["count"] > 0
    by_hand = sum(n * abs(a - c) for n, a, c in zip(bins["count"][filled], bins["accuracy"][filled],
                                                     bins["confidence"][filled])) / 500
    assert expected_calibration_error(labels, probs) == pytest.approx(by_hand)
    assert expected_calibration_error(labels, probs, n_bins=1) == pytest.approx(
        abs((probs.argmax(1) == labels).mean() - probs.max(1).mean()))


# ---- registry ---------------------------------------------------------------------------------------------------
def test_calibration_is_registered_with_its_partial():
    assert {"calibration", "saliency"} <= set(analyses.names())
    a = analyses.get("calibration")
    assert a.name == "calibration" and a.needs_training and not a.needs_convolution
    assert (analyses.HERE / a.template).is_file()
    assert analyses.why_not("calibration", SimpleNamespace(trains=False)) is not None


# ---- compute() on crafted predictions: exact per-seed numbers -------------------------------------------------------
class FakeRun:
    def __init__(self, seed: int, labels: np.ndarray, probs: np.ndarray):
        self.seed, self.path, self._pred = seed, Path(f"/fake/{id(self)}/seed-{seed}"), (labels, probs)

    def predictions(self):
        return self._pred


def _runs(right_per_seed: list[int]) -> list[FakeRun]:
    """20 images per seed at 90% confidence; ECE = |right/20 − 0.9|."""
    return [FakeRun(seed, *predictions([0.9] * 20, [True] * right + [False] * (20 - right)))
            for seed, right in enumerate(right_per_seed)]


def _study(*variants: VariantResults, baseline: str | None = None) -> Study:
    config = SimpleNamespace(title="Crafted", baseline=baseline)
    return Study(id="crafted", config=config, profile="smoke", variants=list(variants))


def test_ece_per_seed_interval_and_paired_difference(tmp_path):
    base = VariantResults("base", "Baseline", "", "fashion-mnist", runs=_runs([16, 14]))     # ECE 10, 20 points
    drop = VariantResults("drop", "Dropout", "", "fashion-mnist", runs=_runs([17, 16]))      # ECE 5, 10 points
    writer = FigureWriter(directory=tmp_path, link_prefix="crafted", cache_dir=None)
    result = calibration.compute(_study(base, drop), writer)
    b, d = result.variants
    assert b.ece_per_seed == pytest.approx([10.0, 20.0]) and d.ece_per_seed == pytest.approx([5.0, 10.0])
    assert b.ece["mean"] == pytest.approx(15.0) and b.ece["std"] == pytest.approx(np.sqrt(50))
    assert b.ece["half"] == pytest.approx(12.7062047 * 5.0)  # t(0.975, 1) · s / √2
    assert b.confidence_pct == pytest.approx(90.0) and b.accuracy_pct == pytest.approx(75.0)
    assert b.overconfidence_pct == pytest.approx(15.0)
    assert (b.images, b.confident, b.confident_wrong) == (40, 0, 0)
    assert result.baseline_label == "Baseline" and len(result.comparisons) == 1
    diff = d.comparison
    assert diff is result.comparisons[0] and b.comparison is None
    assert diff["per_seed"] == pytest.approx({0: -5.0, 1: -10.0}) and diff["mean"] == pytest.approx(-7.5)
    assert "expected calibration error" in diff["verdict"] and "test accuracy" not in diff["verdict"]
    assert [p.name for p in writer.written] == ["calibration.png"]


def test_a_clear_ece_difference_is_worded_for_calibration(tmp_path):
    base = VariantResults("base", "Baseline", "", "fashion-mnist", runs=_runs([18, 18, 18]))  # ECE 0
    aug = VariantResults("aug", "Augmented", "", "fashion-mnist", runs=_runs([14, 15, 14]))  # ECE 20, 15, 20
    result = calibration.compute(_study(aug, base, baseline="base"),
                                 FigureWriter(directory=tmp_path, link_prefix="c", cache_dir=None))
    verdict = result.comparisons[0]["verdict"]
    assert verdict.startswith("Augmented raises expected calibration error by 18.33 percentage points compared "
                              "with Baseline")


def test_confident_predictions_and_their_mistakes_are_counted(tmp_path):
    labels, probs = predictions([1.0, 0.9995, 0.999, 0.9989, 0.5], [True, False, False, False, True])
    v = VariantResults("v", "V", "", "fashion-mnist", runs=[FakeRun(0, labels, probs)])
    result = calibration.compute(_study(v), FigureWriter(directory=tmp_path, link_prefix="c", cache_dir=None))
    row = result.variants[0]
    assert (row.images, row.confident, row.confident_wrong) == (5, 3, 2)  # ≥ 0.999: 1.0, 0.9995, 0.999
    assert row.confident_pct == pytest.approx(60.0)
    assert result.comparisons == [] and result.baseline_label is None
    text = _render(result)  # one seed, one variant: no interval, no comparison, the question still asked
    assert "| V | " in text and "| — |" in text and "3 of 5 (60.00%) | 2 |" in text
    assert "Would dropout or data augmentation change" in text and "!!! abstract" not in text


# ---- compute() on trained runs ----------------------------------------------------------------------------------
EXPERIMENT = {
    "id": "calib", "title": "Calibration check", "dataset": "fashion-mnist",
    "model": {"name": "tiny"}, "training": {"epochs": 1, "batch_size": 64, "lr": 0.003},
    "profiles": {"smoke": {"seeds": [0, 1], "train_limit": 300, "eval_limit": 60}},
    "variants": [{"name": "tiny", "label": "Tiny"},
                 {"name": "fc", "label": "Fully connected", "model": {"name": "fcnn", "options": {"hidden": [32]}}}],
    "analyses": ["calibration"],
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two variants × two seeds, one epoch on 300 synthetic images, read back by collect."""
    root = tmp_path_factory.mktemp("calibration")
    mp = pytest.MonkeyPatch()
    write_idx_dataset(root / "idx", n_train=600, n_test=200)
    for name, value in (("REPORTGEN_DATA", root / "data"), ("REPORTGEN_SKIP_CHECKSUM", "1"),
                        ("REPORTGEN_OFFLINE", "1"), ("REPORTGEN_CACHE", root / "cache")):
        mp.setenv(name, str(value))
    provision("fashion-mnist", root / "data", from_dir=root / "idx", skip_checksum=True, allow_download=False,
              allow_install=False, log=lambda *_: None)
    exp = ExperimentConfig.model_validate(EXPERIMENT)
    splits = load_splits("fashion-mnist")
    store = Store(root / "results")
    for variant in exp.variants:
        for seed in exp.profile("smoke")["seeds"]:
            config = exp.resolve(variant, seed, "smoke")
            out = train_run(config, splits, torch.device("cpu"))
            key = cache_key(config, splits.checksum)
            record = {"experiment": exp.id, "variant": variant.name, "seed": seed, "profile": "smoke",
                      "cache_key": key, "dataset": "fashion-mnist", "dataset_sha256": splits.checksum,
                      "device": "cpu (test)", "versions": versions(), "git_commit": None, "started": "",
                      "finished": "", "wall_seconds": 1.0, "epoch_seconds": out.epoch_seconds,
                      "train_size": config["train_limit"]}
            store.write_run(exp.id, variant.name, seed, key, run_files(config, out, record))
    study = collect(exp.id, exp, "smoke", store)
    writer = FigureWriter(directory=root / "docs" / exp.id, link_prefix=exp.id)
    yield study, calibration.compute(study, writer), writer
    mp.undo()


def test_compute_on_trained_runs_matches_their_stored_predictions_and_metrics(trained):
    study, result, writer = trained
    assert [p.name for p in writer.written] == ["calibration.png"]
    assert writer.written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.figure.path == "calib/calibration.png" and result.seeds == 2
    for v, row in zip(study.available, result.variants):
        eces = [100 * expected_calibration_error(*r.predictions()) for r in v.runs]
        assert row.ece_per_seed == pytest.approx(eces) and row.ece["n"] == 2
        assert row.ece["low"] <= row.ece["mean"] <= row.ece["high"]
        assert row.accuracy_pct == pytest.approx(100 * np.mean([r.metrics["test_acc"] for r in v.runs]))
        assert row.images == sum(r.metrics["test_size"] for r in v.runs)
        assert 0 <= row.confident_wrong <= row.confident <= row.images
    assert [c["label"] for c in result.comparisons] == ["Fully connected"]
    assert result.comparisons[0]["seeds"] == [0, 1]


def _render(result, exp=None) -> str:
    env = _environment()
    env.loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(analyses.HERE)), env.loader])
    return env.get_template("calibration.md.j2").render(a=result, exp=exp, profile="smoke", setup={}, summary=None,
                                                        post=lambda *a: "")


def test_partial_renders_the_numbers_and_the_verdicts(trained):
    study, result, _ = trained
    text = _render(result, study.config)
    assert text.startswith("### ")
    assert "](calib/calibration.png)" in text
    assert r"\sum_{m=1}^{15}" in text
    tiny = result.variants[0]
    assert f"| Tiny | {tiny.ece['mean']:.2f} | {tiny.ece['low']:.2f} to {tiny.ece['high']:.2f} |".replace("-", "\u2212") in text
    assert result.comparisons[0]["verdict"] in text
