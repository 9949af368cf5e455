"""The calibration analysis: ECE and reliability bins against hand-computed examples, per-seed ECE with its interval
and the paired difference on crafted predictions, and compute() + partial on the trained synthetic study of
tests/test_analysis.py. The registry entry and why_not are tested with every other analysis there."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from reportgen import numbers
from reportgen.analyses import calibration
from reportgen.analyses.calibration import bin_index, expected_calibration_error, reliability_bins
from reportgen.figures import FigureWriter
from reportgen.markdown import package_environment
from reportgen.study import Study, VariantResults
from tests.conftest import EXPERIMENT

# The two-variant (LeNet, fully connected), two-seed study of real one-epoch runs, and each analysis computed once
# on it (figures into docs/<study id>/): the fixtures workspace, study and rendered of tests/conftest.py.
POST = EXPERIMENT["id"]


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


# ---- compute() on crafted predictions: exact per-seed numbers -------------------------------------------------------
class FakeRun:
    def __init__(self, seed: int, labels: np.ndarray, probs: np.ndarray):
        self.seed, self.path, self._pred = seed, Path(f"/fake/{id(self)}/seed-{seed}"), (labels, probs)
        self.config = {"seed": seed}  # what stats.pairing reads: no train_limit etc., so every variant shares data

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
    assert b.ece.mean == pytest.approx(15.0) and b.ece.std == pytest.approx(np.sqrt(50))
    assert b.ece.half == pytest.approx(12.7062047 * 5.0)  # t(0.975, 1) · s / √2
    assert b.confidence_pct == pytest.approx(90.0) and b.accuracy_pct == pytest.approx(75.0)
    assert b.overconfidence_pct == pytest.approx(15.0)
    assert (b.images, b.confident, b.confident_wrong) == (40, 0, 0)
    assert result.baseline_label == "Baseline" and len(result.comparisons) == 1
    diff = d.comparison
    assert diff is result.comparisons[0] and b.comparison is None
    assert diff.per_seed == pytest.approx({0: -5.0, 1: -10.0}) and diff.mean == pytest.approx(-7.5)
    assert "expected calibration error" in diff.verdict and "test accuracy" not in diff.verdict
    assert [p.name for p in writer.written] == ["calibration.png"]


def test_a_clear_ece_difference_is_worded_for_calibration(tmp_path):
    base = VariantResults("base", "Baseline", "", "fashion-mnist", runs=_runs([18, 18, 18]))  # ECE 0
    aug = VariantResults("aug", "Augmented", "", "fashion-mnist", runs=_runs([14, 15, 14]))  # ECE 20, 15, 20
    result = calibration.compute(_study(aug, base, baseline="base"),
                                 FigureWriter(directory=tmp_path, link_prefix="c", cache_dir=None))
    verdict = result.comparisons[0].verdict
    assert verdict.startswith("Augmented raises expected calibration error by 18.3 percentage points compared "
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
    assert "| V | " in text and "(—)" not in text and "3 of 5 (60.0%) | 2 |" in text
    assert "Would dropout or data augmentation change" in text and "!!! abstract" not in text


# ---- compute() on trained runs ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_compute_on_trained_runs_matches_their_stored_predictions_and_metrics(study, rendered):
    result = rendered["calibration"]
    assert [p.name for p in rendered.figures["calibration"]] == ["calibration.png"]
    assert rendered.figures["calibration"][0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.figure.path == f"{POST}/calibration.png" and result.seeds == 2
    assert [row.label for row in result.variants] == [v.label for v in study.available]
    for v, row in zip(study.available, result.variants):
        eces = [100 * expected_calibration_error(*r.predictions()) for r in v.runs]
        assert row.ece_per_seed == pytest.approx(eces) and row.ece.n == 2
        assert row.ece.low <= row.ece.mean <= row.ece.high
        assert row.accuracy_pct == pytest.approx(100 * np.mean([r.metrics.test_acc for r in v.runs]))
        assert row.images == sum(r.metrics.test_size for r in v.runs)
        assert 0 <= row.confident_wrong <= row.confident <= row.images
    assert [c.label for c in result.comparisons] == ["Fully connected"]
    assert result.comparisons[0].seeds == [0, 1]


def _render(result, exp=None) -> str:
    return package_environment().get_template("calibration.md.j2").render(
        a=result, exp=exp, profile="smoke", setup={}, summary=None, post=lambda *a: "")


@pytest.mark.slow
def test_partial_renders_the_numbers_and_the_verdicts(study, rendered):
    result = rendered["calibration"]
    text = _render(result, study.config)
    assert text.startswith("### ")
    assert f"]({POST}/calibration.png)" in text
    assert r"\sum_{m=1}^{15}" in text
    first = result.variants[0]
    d = numbers.decimals(numbers.half_width(first.ece))  # the decimals the interval supports
    row = f"| {first.label} | {first.ece.mean:.{d}f} ({first.ece.low:.{d}f} to {first.ece.high:.{d}f}) |"
    assert row.replace("-", "\u2212") in text
    assert result.comparisons[0].verdict in text


def test_label_smoothing_caps_the_confidence_training_asks_for():
    run = SimpleNamespace(config={"training": {"label_smoothing": 0.1}})
    probs = np.array([[0.95, 0.05] + [0.0] * 8, [0.5, 0.5] + [0.0] * 8, [0.905, 0.095] + [0.0] * 8])
    cap = calibration.smoothing_cap(run, probs)
    assert cap["label_smoothing"] == 0.1 and cap["target_pct"] == pytest.approx(91.0)  # 1 − 0.1 + 0.1/10
    assert cap["above_target_pct"] == pytest.approx(100 / 3)  # only 0.95 is above 0.91
    assert calibration.smoothing_cap(SimpleNamespace(config={}), probs)["target_pct"] == 100.0
