"""Converged or still learning: the diagnosis computed from each run's per-epoch validation accuracy (so runs
stored before it existed get it too), the rule and its thresholds (reportgen.settings), the caveat it adds to a
verdict, the list in every post, the † on the home page, and the Methods page's numbers."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from reportgen.config import discover
from reportgen.home import render_home
from reportgen.loader import Normalization
from reportgen.markdown import package_environment
from reportgen.models import build_model, count_parameters
from reportgen.settings import CONVERGED_GAIN_POINTS as T, CONVERGENCE_WINDOW as W
from reportgen.measures import convergence, gains_in_words, run_convergence
from reportgen.stats import paired_difference
from reportgen.summary import summary
from reportgen.store import Store
from reportgen.study import Study, VariantResults
from reportgen.runs import run_files
from reportgen.train import RunOutput
from tests.synthetic import stored

CAVEAT = "still learning, so longer training may change this."


def flat(final: float = 0.88, epochs: int = 6) -> list[float]:
    """Validation accuracy that rose, then stayed exactly level for the last epochs."""
    return [final - 0.1, final - 0.03] + [final] * (epochs - 2)


def rising(final: float = 0.88, per_epoch: float = 0.01, epochs: int = 6) -> list[float]:
    return [final - per_epoch * (epochs - e) for e in range(1, epochs + 1)]


def with_gain(points: float, best_is_last: bool, epochs: int = 6) -> list[float]:
    """Gain of ``points`` over the last W epochs; the best epoch is the last one, or an early spike above it."""
    start = 0.80
    val = [0.70] * (epochs - W - 1) + [start] + [start + points / 100 * (i / W) for i in range(1, W + 1)]
    if not best_is_last:
        val[0] = 0.99
    return val


def history(val_accs: list[float]) -> dict:
    return {"epochs": [{"epoch": e, "train_loss": 1 - v, "train_acc": v + 0.02, "val_acc": v}
                       for e, v in enumerate(val_accs, 1)]}


def typed_epochs(val_accs: list[float]):
    return stored(history(val_accs)["epochs"])[0].epochs


class FakeRun:
    """What the statistics read of a stored run (a run stored before convergence was measured has no more)."""
    def __init__(self, seed: int, test_acc: float, val_accs: list[float]):
        self.config = {"seed": seed}
        self.history, self.metrics, self.record = stored(history(val_accs)["epochs"], test_acc=test_acc,
                                                         parameters=10, best_epoch=len(val_accs))

    @property
    def seed(self) -> int:
        return self.config["seed"]


def variant(name: str, accs: list[float], curves: list[list[float]]) -> VariantResults:
    return VariantResults(name=name, label=name.capitalize(), description="", dataset="fashion-mnist",
                          runs=[FakeRun(s, a, c) for s, (a, c) in enumerate(zip(accs, curves))])


def study(*variants: VariantResults) -> Study:
    class Config:
        baseline = variants[0].name
    return Study(id="s", config=Config(), profile="quick", variants=list(variants))


# ---- one run -------------------------------------------------------------------------------------------------
def test_a_flat_history_has_no_gain_and_its_best_epoch_is_not_the_last():
    c = run_convergence(typed_epochs(flat()))
    assert c.gain == pytest.approx(0.0) and c.window == W
    assert c.best_epoch == 3 and not c.best_is_last  # ties keep the earlier epoch, as training does


def test_a_rising_history_gains_over_the_last_window():
    c = run_convergence(typed_epochs(rising(per_epoch=0.004)))
    assert c.gain == pytest.approx(W * 0.4) and c.best_is_last and c.best_epoch == 6


def test_the_best_epoch_is_the_last_even_when_the_gain_is_tiny():
    c = run_convergence(typed_epochs([0.88, 0.879, 0.878, 0.8801]))
    assert c.best_is_last and c.gain == pytest.approx(0.01)


@pytest.mark.parametrize("epochs,window", [(2, 1), (3, 2), (4, 3), (10, 3)])
def test_a_short_run_measures_over_all_its_epochs_after_the_first(epochs, window):
    c = run_convergence(typed_epochs(rising(per_epoch=0.01, epochs=epochs)))
    assert c.window == min(W, epochs - 1) == window and c.gain == pytest.approx(window * 1.0)


# ---- the rule for a variant --------------------------------------------------------------------------------------
def test_flat_networks_converged_and_rising_ones_are_still_learning():
    converged = convergence(variant("a", [0.9] * 3, [flat()] * 3).runs)
    assert converged.verdict == "converged" and not converged.still_learning
    assert converged.text == f"0.00 points over the last {W} epochs" and converged.best_is_last == 0
    still = convergence(variant("b", [0.9] * 3, [rising(per_epoch=0.003)] * 3).runs)
    assert still.verdict == "still learning" and still.still_learning and still.best_is_last == 3
    assert still.gain == pytest.approx(W * 0.3) and still.text == f"+{W * 0.3:.2f} points over the last {W} epochs"


def test_several_variants_gains_are_one_phrase_in_the_edition_s_language_when_their_windows_agree():
    from reportgen import i18n
    a, b, c = (convergence(variant(n, [0.9] * 3, [rising(per_epoch=g)] * 3).runs) for n, g in
               (("a", 0.003), ("b", 0.004), ("c", 0.005)))
    assert gains_in_words([a, b, c]) == f"+0.90, +1.20 and +1.50 points over the last {W} epochs"
    with i18n.active("pt"):
        assert gains_in_words([a, b]) == f"+0,90 e +1,20 pontos nas últimas {W} épocas"
    short = convergence(variant("d", [0.9] * 3, [rising(per_epoch=0.003, epochs=2)] * 3).runs)
    assert gains_in_words([a, short]) == f"+0.90 points over the last {W} epochs; +0.30 points over the last epoch"


@pytest.mark.parametrize("gain,best_last_seeds,verdict", [
    (T * 1.2, 0, "still learning"),   # above the threshold: still learning wherever the best epoch is
    (T * 0.8, 0, "converged"),        # below it, with the best epoch earlier on every seed
    (T * 0.8, 1, "converged"),        # ... or the last one on only one seed of three
    (T * 0.8, 2, "still learning"),   # between half the threshold and it, best epoch the last on most seeds
    (T * 0.4, 3, "converged"),        # below half the threshold: converged even with the best epoch last
])
def test_the_rule_weighs_the_gain_and_where_the_best_epoch_is(gain, best_last_seeds, verdict):
    curves = [with_gain(gain, best_is_last=s < best_last_seeds) for s in range(3)]
    c = convergence(variant("v", [0.9] * 3, curves).runs)
    assert c.gain == pytest.approx(gain) and c.best_is_last == best_last_seeds
    assert c.verdict == verdict and c.still_learning == (verdict == "still learning")


def test_one_epoch_is_not_measured():
    c = convergence(variant("v", [0.9], [[0.85]]).runs)
    assert c.verdict == "not measured" and not c.still_learning and c.text == "one epoch: no gain to measure"


# ---- summary and verdicts ------------------------------------------------------------------------------------
def test_summary_gives_every_row_its_convergence_from_the_stored_history():
    s = summary(study(variant("base", [0.80, 0.81, 0.82], [flat()] * 3),
                      variant("better", [0.83, 0.845, 0.85], [rising()] * 3)))
    base, better = (row.convergence for row in s.rows)
    assert base.verdict == "converged" and better.verdict == "still learning"
    assert better.gain == pytest.approx(W * 1.0) and better.best_is_last == 3 and better.n == 3
    assert s.still_learning == ["Better"]


def test_a_verdict_about_a_variant_still_learning_gains_the_caveat():
    base = variant("base", [0.80, 0.81, 0.82], [flat()] * 3)
    better = variant("better", [0.83, 0.845, 0.85], [rising()] * 3)
    plain = paired_difference(base, better).verdict
    s = summary(study(base, better))
    assert plain.endswith(").") and CAVEAT not in plain
    assert s.comparisons[0].verdict == plain[:-1] + "; Better was " + CAVEAT
    assert s.gap_comparisons[0].verdict.endswith("; Better was " + CAVEAT)


def test_the_caveat_names_the_baseline_too_and_is_absent_when_both_converged():
    both = summary(study(variant("base", [0.80, 0.81, 0.82], [rising()] * 3),
                         variant("better", [0.83, 0.845, 0.85], [rising()] * 3)))
    assert both.comparisons[0].verdict.endswith("; Base and Better were " + CAVEAT)
    neither = summary(study(variant("base", [0.80, 0.81, 0.82], [flat()] * 3),
                            variant("better", [0.83, 0.845, 0.85], [flat()] * 3)))
    assert not any("still learning" in c.verdict for c in neither.comparisons + neither.gap_comparisons)


def test_every_post_states_per_variant_whether_it_converged():
    s = summary(study(variant("base", [0.80, 0.81, 0.82], [flat()] * 3),
                      variant("better", [0.83, 0.845, 0.85], [rising()] * 3)))
    text = package_environment().get_template("_results.md.j2").render(summary=s)
    # in the collapsed detail table under the results; the caveat itself is said once, with the answer it threatens
    assert f" | converged: 0.00 points over the last {W} epochs; best epoch the last one on 0 of 3 seeds |" in text
    assert (f" | still learning: +{W:.2f} points over the last {W} epochs; best epoch the last one on "
            "3 of 3 seeds |") in text
    assert "(../../methods.md#converged-or-still-learning)" in text  # the rule itself is on Methods
    assert "Base and Better" not in text


# ---- the home page -------------------------------------------------------------------------------------------
STUDY = """\
id: {id}
title: {title}
model: {{name: tiny}}
training: {{epochs: 6}}
profiles:
  quick: {{epochs: 6, seeds: [0, 1]}}
variants:
  - {{name: base, label: Base}}
  - {{name: wider, label: Wider, training: {{lr: 0.002}}}}
analyses: []
"""


def write_run(store: Store, exp, name: str, seed: int, test_acc: float, val_accs: list[float]) -> None:
    """One complete run as `reportgen run` writes it (its metrics hold no convergence field)."""
    config = exp.resolve(exp.variant(name), seed, "quick")
    model = build_model("tiny")
    labels = np.arange(20) % 10
    probs = np.eye(10, dtype=np.float32)[labels]
    out = RunOutput(history=history(val_accs)["epochs"], best_epoch=1 + int(np.argmax(val_accs)),
                    best_state=model.state_dict(), test_loss=0.5, test_acc=test_acc, test_labels=labels.astype(np.int64),
                    test_probs=probs, norm=Normalization(0.3, 0.3), parameters=count_parameters(model))
    record = {"experiment": exp.id, "variant": name, "seed": seed, "profile": "quick", "cache_key": "k",
              "dataset": config["dataset"], "wall_seconds": 1.0}
    store.write_run(exp.id, name, seed, f"{exp.id}-{name}-{seed}", run_files(config, out, record))


def test_the_home_page_marks_a_variant_still_learning(tmp_path):
    directory = tmp_path / "experiments"
    directory.mkdir()
    for exp_id, title in (("alpha", "Alpha study"), ("beta", "Beta study")):
        (directory / f"{exp_id}.yaml").write_text(STUDY.format(id=exp_id, title=title))
    experiments = discover(directory)
    store = Store(tmp_path / "results")
    torch.manual_seed(0)
    for seed in (0, 1):
        write_run(store, experiments["alpha"][1], "base", seed, 0.80 + 0.01 * seed, flat())
        write_run(store, experiments["alpha"][1], "wider", seed, 0.83 + 0.01 * seed, rising())
        write_run(store, experiments["beta"][1], "base", seed, 0.80 + 0.01 * seed, flat())
        write_run(store, experiments["beta"][1], "wider", seed, 0.83 + 0.01 * seed, flat())
    docs = tmp_path / "docs"
    docs.mkdir()
    home = render_home(experiments, "quick", store, docs, built={"alpha", "beta"}).read_text()
    alpha = next(line for line in home.splitlines() if "Alpha study" in line and line.startswith("|"))
    beta = next(line for line in home.splitlines() if "Beta study" in line and line.startswith("|"))
    assert re.search(r"Wider: 83\.5 \([^)]*\)†", alpha) and re.search(r"Base: 80\.5 \([^)]*\)(?!†)", alpha)
    assert "†" not in beta
    assert "† Still learning:" in home and "[Methods](methods.md#converged-or-still-learning)" in home
    # nothing still learning: no mark, no footnote
    home = render_home(experiments, "quick", store, docs, built={"beta"}).read_text()
    assert "†" not in home


# ---- the Methods page states the rule with the numbers of reportgen.settings -----------------------------------
def test_the_methods_page_states_the_settings_thresholds():
    from reportgen.methods import methods_markdown
    section = methods_markdown().split("## Converged or still learning?")[1].split("\n## ")[0]
    stated = re.findall(r"\*\*([\d.]+) (epochs|percentage points|points)\*\*", section)
    assert stated == [(f"{W:g}", "epochs"), (f"{T:g}", "percentage points"), (f"{T / 2:g}", "points")], stated
    assert f"Why {T:g} points over {W:g} epochs" in section
    assert f"still gaining {T / W:g} points per epoch" in section
