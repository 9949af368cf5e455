"""Every training post ends with "What this shows — and what it doesn't": the verdicts (with their caveat when a
network was still learning), what the analyses found (the shift analyses: the share of accuracy kept at 1, 2 and
4 pixels), every difference besides the declared factor, and the limits every study shares. The prose may place
it with ``shows()``; otherwise the frame appends it before the reproduce box. Synthetic results only."""
from __future__ import annotations

import dataclasses
import re
from types import SimpleNamespace

import jinja2
import pytest

from reportgen import analyses, numbers, prose
from reportgen import post as post_mod
from reportgen.analyses import shift_curve, shift_grid
from reportgen.analyses._shift_findings import SeedKept
from reportgen.markdown import interval
from reportgen.stats import mean_ci
from reportgen.config import discover, load_study
from reportgen.markdown import markdown_text, signed_number
from reportgen.post import render_study
from reportgen.summary import summary
from reportgen.store import Store
from reportgen.study import collect
from tests.conftest import ROOT
from tests.test_render import stub_analyses, stub_analyses_with, write_experiment, write_run  # noqa: F401

HEADING = "## What this shows — and what it doesn't"
RADIUS = 6

STUDY = """
id: shows
title: Closing section
question: Does the section answer the question?
varies: "{varies}"
training: {{epochs: 2}}
profiles:
  quick: {{epochs: 2, seeds: [0, 1, 2]}}
baseline: base
variants:
  - {{name: base, label: Base, description: the baseline}}
  - name: other
    label: Other
{other}
analyses: [{analyses}]
"""


def study(tmp_path, other="    model: {options: {dropout: 0.5}}", varies="dropout", analyses_="", runs=True):
    path = write_experiment(tmp_path / "experiments", STUDY.format(varies=varies, other=other, analyses=analyses_))
    exp = load_study(path)
    store = Store(tmp_path / "results")
    if runs:
        for seed, (a, b) in enumerate([(0.80, 0.83), (0.81, 0.845), (0.82, 0.85)]):
            write_run(store, exp, "base", seed, "quick", a)
            write_run(store, exp, "other", seed, "quick", b)
    return exp, store


def render(tmp_path, exp, store, prose_text: str | None = None) -> str:
    prose_file = None
    if prose_text is not None:
        prose_file = tmp_path / "experiments" / f"{exp.id}.md"
        prose_file.write_text(prose_text)
    return render_study(exp.id, exp, "quick", store, tmp_path / "docs", prose_file=prose_file).read_text()


def section(post: str) -> str:
    start = post.index(HEADING)
    return post[start:post.index("\n## Reproduce this post", start)]


# ---- where the section goes ----------------------------------------------------------------------------------
def test_every_shipped_training_post_ends_with_the_section(tmp_path, stub_analyses):  # noqa: F811
    experiments = discover(ROOT / "experiments")
    store = Store(tmp_path / "results")
    for exp_id, (path, exp) in experiments.items():
        for v in exp.variants:
            for seed in exp.profile("quick").seeds if exp.trains else []:
                write_run(store, exp, v.name, seed, "quick", 0.8 + 0.01 * seed)
        post = render_study(exp_id, exp, "quick", store, tmp_path / "docs", None, path.with_suffix(".md"),
                            others={n: experiments[n][1] for n in exp.reads}).read_text()
        headings = re.findall(r"^## .*$", post, re.M)
        # every post answers its question in its prose's own words, first in the closing section; an
        # illustration has nothing else there (no verdicts, nothing random)
        assert headings[-2:] == [HEADING, "## Reproduce this post"] and headings.count(HEADING) == 1, exp_id
        closing = section(post)
        assert re.search(r"^\*\*The question:\*\* .+\n\n\*\*The answer:\*\* .{40,}$", closing, re.M), exp_id
        # every bold lead starts a paragraph of its own, never glued to the line before it
        assert not re.search(r"[^\n]\n(\*\*(The|What|Also)|Nothing here)", closing), (exp_id, closing)
        if not exp.trains:
            assert "What the measurements show: every verdict" not in closing, exp_id
            continue
        assert f"**What the variants vary:** {markdown_text(exp.varies)}" in closing, exp_id
        for c in summary(collect(exp_id, exp, "quick", store)).comparisons:
            assert markdown_text(c.verdict) in closing, exp_id


def test_the_prose_may_place_the_section_with_its_own_words(tmp_path):
    exp, store = study(tmp_path)
    post = render(tmp_path, exp, store, "{{ results() }}\n\n## In the end\n\nOur own words first.\n\n"
                                        "{{ shows(heading=False) }}\n\nOur own last word.\n")
    assert HEADING not in post and post.count("What the measurements show: every verdict") == 1
    order = [post.index(s) for s in ("## In the end", "Our own words first.", "What the measurements show: every verdict",
                                     "Our own last word.", "## Reproduce this post")]
    assert order == sorted(order), order
    post = render(tmp_path, exp, store, "{{ results() }}\n\n{{ shows() }}\n\nOur own last word.\n")
    assert post.count(HEADING) == 1 and post.count("What the measurements show: every verdict") == 1
    assert post.index(HEADING) < post.index("Our own last word.") < post.index("## Reproduce this post")


def test_the_answer_comes_first_under_the_question_with_measured_numbers(tmp_path):
    exp, store = study(tmp_path)
    post = render(tmp_path, exp, store, "{{ results() }}\n\n{% call answer() %}Yes: Other scores\n"
                                        "{{ acc('other') }}, {{ diff('other') }} above Base.{% endcall %}\n")
    closing = section(post)
    acc = summary(collect(exp.id, exp, "quick", store)).rows[1].acc
    first = closing.split("**What the variants vary:**")[0]
    assert f"**The question:** Does the section answer the question?\n\n**The answer:** Yes: Other scores " \
           f"{numbers.measured(acc)}," in first, first
    assert post.count("**The answer:**") == 1 and "Yes: Other" not in post.split(HEADING)[0]
    assert re.search(r"above Base\.( \*.*\*)?\n\n\*\*What the variants vary", closing), closing  # a paragraph


@pytest.mark.parametrize("text, fragment", [
    ("{% call answer() %}One.{% endcall %}{% call answer() %}Two.{% endcall %}", "answer() is given twice"),
    ("{{ answer() }}", "answer() takes its sentences as a call block"),
])
def test_a_misused_answer_is_one_line(tmp_path, text, fragment):
    exp, _ = study(tmp_path, runs=False)
    path = tmp_path / "experiments" / "shows.md"
    path.write_text(text + "\n")
    with pytest.raises(prose.ProseError) as err:
        prose.check(path, exp, {}, "quick")
    assert str(path) in str(err.value) and fragment in str(err.value) and "\n" not in str(err.value)


def test_no_block_may_follow_the_section(tmp_path):
    exp, _ = study(tmp_path, analyses_="curves", runs=False)
    path = tmp_path / "experiments" / "shows.md"
    for text, fragment in (("{{ shows() }}\n{{ results() }}\n{{ analysis('curves') }}\n",
                            "results() is placed after shows()"),
                           ("{{ results() }}\n{{ shows() }}\n", 'analysis("curves") is not placed and would follow')):
        path.write_text(text)
        with pytest.raises(prose.ProseError) as err:
            prose.check(path, exp, {}, "quick")
        assert str(path) in str(err.value) and fragment in str(err.value) and "\n" not in str(err.value)


# ---- what it says ----------------------------------------------------------------------------------------------
def test_an_answer_resting_on_networks_still_learning_says_so(tmp_path):
    exp, store = study(tmp_path)  # the synthetic histories gain a point in the last epoch: still learning
    closing = section(render(tmp_path, exp, store, "{% call answer() %}Yes, clearly.{% endcall %}\n"))
    assert ("**The answer:** Yes, clearly. *Both variants were still learning when training stopped (") in closing
    assert "so this answer may change with longer training.*" in closing and "profile" not in closing
    assert "**Other was still learning**" not in closing  # said once, with the answer it threatens


def test_a_verdict_about_a_network_still_learning_says_longer_training_may_change_it(tmp_path):
    exp, store = study(tmp_path)  # the synthetic histories gain a point in the last epoch: still learning
    closing = section(render(tmp_path, exp, store))
    stats = summary(collect("shows", exp, "quick", store))
    assert stats.still_learning == ["Base", "Other"]
    verdict = stats.comparisons[0].verdict
    assert verdict.endswith("so longer training may change this.") and markdown_text(verdict) in closing
    assert "**Other was still learning**" in closing and "Every variant had converged" not in closing


def test_gap_verdicts_are_repeated_only_where_the_post_shows_the_gap(tmp_path):
    exp, store = study(tmp_path)
    gap = summary(collect("shows", exp, "quick", store)).gap_comparisons[0].verdict
    assert markdown_text(gap) not in section(render(tmp_path, exp, store))
    assert markdown_text(gap) in section(render(tmp_path, exp, store, "{{ gap() }}\n"))


def test_differences_besides_the_factor_are_stated_declared_or_not(tmp_path):
    exp, store = study(tmp_path, other="    training: {lr: 0.01}")
    closing = section(render(tmp_path, exp, store))
    assert ("**Not only the declared factor:** Other also differs from Base in training recipe, lr: 0.01 against "
            "lr: 0.001, and the study does not declare that difference") in closing
    exp, store = study(tmp_path / "declared", other="    training: {lr: 0.01}\n    intended: [recipe]\n"
                                                    "    intended_reason: the learning rate is the factor.")
    closing = section(render(tmp_path / "declared", exp, store))
    assert "Not only the declared factor" not in closing
    # stated with what the variants vary, not among the limits
    # in a folded note of its own: a design statement, not a threat to the answer
    assert ("??? info \"Also different, on purpose\"\n    - Other and Base differ in training recipe, lr: 0.01 against "
            "lr: 0.001. The learning rate is the factor.") in closing
    assert "The learning rate is the factor.\n\n??? abstract \"What the measurements show: every verdict" in closing  # a list of its own


def test_a_variant_s_declared_differences_are_one_sentence_with_its_reason_once(tmp_path):
    exp, store = study(tmp_path, other="    model: {options: {channels: [16, 32]}}\n    epochs: {quick: 3}\n"
                                       "    intended: [parameters, epochs]\n    intended_reason: bigger and longer")
    closing = section(render(tmp_path, exp, store))
    line = next(x.strip() for x in closing.splitlines() if x.startswith("    - Other and Base differ in"))
    assert line.startswith("- Other and Base differ in parameter count, ") and "; and in number of epochs, 3 against 2." in line
    assert line.endswith(" Bigger and longer.") and closing.count("Bigger and longer") == 1


# ---- the shift analyses' findings ----------------------------------------------------------------------------
# per seed: accuracy (%) unshifted (0) and at 1, 2 and 4 pixels
LENET = {0: {0: 90.0, 1: 80.0, 2: 70.0, 4: 50.0}, 1: {0: 91.0, 1: 81.0, 2: 71.0, 4: 52.0},
         2: {0: 89.0, 1: 79.0, 2: 69.0, 4: 48.0}}
GAP = {0: {0: 80.0, 1: 78.0, 2: 76.0, 4: 72.0}, 1: {0: 81.0, 1: 79.0, 2: 77.0, 4: 73.0},
       2: {0: 79.0, 1: 77.0, 2: 75.0, 4: 74.0}}
KEPT = [SeedKept("LeNet", LENET), SeedKept("LeNet + GAP", GAP)]


def fake_results() -> dict[str, SimpleNamespace]:
    """What compute() of shift_curve and shift_grid return, as far as their findings read it."""
    curve = SimpleNamespace(seed_kept=KEPT, baseline="LeNet", test_sizes=[2000], full_test_size=10000)
    grid = SimpleNamespace(seed_kept=KEPT, baseline="LeNet", variants=[
        SimpleNamespace(test_size=2000, full_test_size=10000) for _ in KEPT])
    return {"shift_curve": curve, "shift_grid": grid}


def ci_text(values, signed=False):
    ci = mean_ci(values)
    d = numbers.decimals(numbers.half_width(ci))
    return (numbers.fixed(ci.mean, d, signed) + ("" if signed else "%")) + f" ({interval(ci, signed=signed)})"


EXPECTED = [
    (f"LeNet, zero-filled, mean of 3 seeds (95% CI): unshifted 90.0%; moved by 1 pixel {ci_text([80, 81, 79])}; "
     f"2 pixels {ci_text([70, 71, 69])}; 4 pixels {ci_text([50, 52, 48])}."),
    (f"LeNet + GAP, zero-filled, mean of 3 seeds (95% CI): unshifted 80.0%; moved by 1 pixel "
     f"{ci_text([78, 79, 77])}; 2 pixels {ci_text([76, 77, 75])}; 4 pixels {ci_text([72, 73, 74])}."),
    (f"LeNet + GAP against LeNet on shifted images, in points, paired over 3 seeds (95% CI): moved by 1 pixel "
     f"{ci_text([-2, -2, -2], True)}; 2 pixels {ci_text([6, 6, 6], True)}; 4 pixels {ci_text([22, 21, 26], True)}."),
]


def test_shift_curve_and_shift_grid_find_the_same_accuracies_over_seeds():
    results = fake_results()
    curve, grid = shift_curve.findings(results["shift_curve"]), shift_grid.findings(results["shift_grid"])
    assert curve == grid
    assert curve[:-1] == EXPECTED
    assert "the first 2,000 of the 10,000 test images" in curve[-1]


def test_the_distance_accuracies_are_the_shift_grids_cells_at_those_distances():
    """Every seed's numbers at 1, 2 and 4 pixels (computed alone, cheaply) are exactly the shift grid's cells
    there, summed the same way."""
    import torch
    from reportgen.analyses._shift import distance_accuracy, shift_accuracy_grid
    from reportgen.analyses._shift_findings import distance_bins
    from reportgen.loader import Normalization
    from reportgen.models import build_model
    torch.manual_seed(0)
    model = build_model("lenet")
    images = torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (64,))
    norm = Normalization(0.29, 0.35)
    grid = shift_accuracy_grid(model, images, labels, norm, radius=RADIUS)
    alone = distance_accuracy(model, images, labels, norm, [0, 1, 2, 4], radius=RADIUS)
    bins = distance_bins(RADIUS)
    for k, d in enumerate([0, 1, 2, 4]):
        assert alone["shifts"][k] == (bins == d).sum()
        assert alone["correct"][k] == grid["zero"][bins == d].sum(), d


def test_the_closing_section_states_the_shift_findings_once(tmp_path, monkeypatch):
    """A study that declares both shift analyses: their findings reach the section, each sentence once."""
    results, real_get = fake_results(), analyses.get
    monkeypatch.setattr(analyses, "get", lambda name: dataclasses.replace(
        real_get(name), compute=lambda study, figures: results[name]))
    real_env = post_mod.package_environment

    def environment():  # their partials are tested with their real results elsewhere
        env = real_env()  # shared by every post: the stubs go in an overlay
        return env.overlay(loader=jinja2.ChoiceLoader([
            jinja2.DictLoader({f"{n}.md.j2": f"<!-- {n} -->\n" for n in results}), env.loader]))
    monkeypatch.setattr(post_mod, "package_environment", environment)
    exp, store = study(tmp_path, other="    model: {options: {global_pool: true}}\n    intended: [parameters]",
                       analyses_="shift_grid, shift_curve")
    closing = section(render(tmp_path, exp, store))
    for sentence in EXPECTED:
        assert closing.count(markdown_text(sentence)) == 1, sentence
    assert closing.index(markdown_text(EXPECTED[0])) < closing.index("**What they do not show**")


# ---- the learning curves' finding ------------------------------------------------------------------------------
def test_the_first_epoch_finding_is_paired_over_seeds_and_only_between_comparable_runs():
    from reportgen.analyses import curves
    from reportgen.stats import mean_ci

    def curve(label, firsts, dataset="fashion-mnist", epochs=10):
        return curves.VariantCurves(name=label.lower(), label=label, dataset=dataset, seeds=list(firsts),
                                    epochs=epochs, final_train_acc_pct=0, final_val_acc_pct=0, best_val_acc_pct=0,
                                    first_val_by_seed=firsts)
    base, bn = curve("Base", {0: 76.0, 1: 77.0, 2: 76.5}), curve("BN", {0: 82.0, 1: 82.5, 2: 83.0})
    ci = mean_ci([6.0, 5.5, 6.5])
    [text] = curves.findings(curves.CurvesResult(figure=None, seeds=3, variants=[base, bn]))
    assert text == (f"Validation accuracy after the first epoch (mean over seeds), how fast each network starts, "
                    f"against Base: Base 76.5%; BN 82.5% (+6.0 points, 95% CI +{ci.low:.1f} to "
                    f"+{ci.high:.1f}, paired over 3 seeds).")
    for other in (curve("Digits", {0: 93.0, 1: 93.0, 2: 93.0}, dataset="mnist"),
                  curve("Longer", {0: 60.0, 1: 61.0, 2: 62.0}, epochs=20)):
        assert curves.findings(curves.CurvesResult(figure=None, seeds=3, variants=[base, other])) == []


# ---- result(): the wording follows what an analysis measured ---------------------------------------------------
def _layer(name: str, dead: list[int], mean: list[float]):
    """A ReLU layer measured in three seeds' networks: units never active and mean output per seed."""
    from reportgen.analyses.activation_stats import LayerActivity
    from reportgen.stats import mean_ci
    return LayerActivity(name=name, type="ReLU", is_relu=True, zero_pct=50.0, mean=mean[0], min=0.0, max=4.0,
                         units=84, dead=dead[0], seeds=[0, 1, 2], dead_per_seed=dead, dead_over_seeds=mean_ci(dead),
                         mean_over_seeds=mean_ci(mean), per_seed={"mean": mean, "zero_pct": [50.0] * 3,
                                                                  "max": [4.0] * 3})


def _activations(off: tuple[list[int], list[float]], on: tuple[list[int], list[float]]):
    from reportgen.analyses.activation_stats import ActivationStatsResult, VariantActivations
    return ActivationStatsResult(basis="first seed", variants=[
        VariantActivations(name=name, label=name, dataset="fashion-mnist", seeds=[0, 1, 2], seed=0, images=100,
                           layers=[_layer("relu3", [0, 0, 0], [0.5, 0.5, 0.5]), _layer("relu4", dead, mean)], relu=[])
        for name, (dead, mean) in (("no-dropout", off), ("dropout", on))])


@pytest.mark.parametrize("off, on, says, verdict", [
    (([18, 16, 17], [0.35, 0.36, 0.34]), ([0, 1, 2], [0.24, 0.25, 0.23]),
     "dropout leaves\n1.0 of 84 units dead on average, against 17.0\nwithout it (paired difference −16.0, 95% CI",
     "at `relu4`\nthese networks agree with it, though they show what dropout leaves behind, not why"),
    (([3, 0, 6], [0.35, 0.36, 0.34]), ([3, 5, 1], [0.24, 0.25, 0.23]),
     "dropout leaves\n3.0 of 84 units dead on average, against 3.0\nwithout it (paired difference 0.0, 95% CI",
     "at `relu4` these networks do not clearly show both."),
])
def test_the_shipped_dropout_prose_says_what_its_activation_statistics_measured(tmp_path, monkeypatch, off, on,
                                                                                 says, verdict):
    """The dropout post reads its dead units and activation sizes over every seed's network, paired seed against
    seed, and agrees with the usual account only when both intervals say so."""
    post = render_shipped(tmp_path, monkeypatch, "dropout", {"activation_stats": _activations(off, on)})
    assert "acts on: over all 3 seeds' networks" in post and says in post and verdict in post
    assert "the mean `relu4` output is 0.24 with dropout against 0.35" in post
    assert "one network of each kind" not in post


def render_shipped(tmp_path, monkeypatch, study_id: str, results: dict, left_out: tuple[str, ...] = ()) -> str:
    """A shipped study's post through its own prose, from synthetic runs of every variant but ``left_out`` (their
    datasets could not be provisioned), with the analyses in ``results`` giving those results."""
    stub_analyses_with(monkeypatch, results)
    path, exp = discover(ROOT / "experiments")[study_id]
    store = Store(tmp_path / "results")
    for v in exp.variants:
        if v.name in left_out:
            (store.root / study_id / v.name).mkdir(parents=True)
            (store.root / study_id / v.name / "UNAVAILABLE.txt").write_text("could not provision it\n")
            continue
        for seed in exp.profile("quick").seeds:
            write_run(store, exp, v.name, seed, "quick", 0.8 + 0.01 * seed)
    return render_study(study_id, exp, "quick", store, tmp_path / "docs", None, path.with_suffix(".md")).read_text()


def test_result_of_an_undeclared_analysis_is_one_line_with_the_closest(tmp_path):
    exp, _ = study(tmp_path, analyses_="activation_stats", runs=False)
    path = tmp_path / "experiments" / "shows.md"
    path.write_text('{% if result("activation_stat").layer("base", "relu4").dead > 0 %}x{% endif %}\n')
    with pytest.raises(prose.ProseError) as err:
        prose.check(path, exp, {}, "quick")
    message = str(err.value)
    assert f"{path}:1:" in message and "result('activation_stat'): the study does not declare it" in message
    assert "did you mean 'activation_stats'" in message and "\n" not in message
    # declared: before training every field is empty and every comparison false, so the check passes
    path.write_text('{% set s = result("activation_stats").layer("base", "relu4") %}'
                    '{% if s.dead > 0 %}dead {{ s.dead }}{% elif s.dead == 0 %}none{% endif %}|{{ s.mean|pct }}|\n')
    prose.check(path, exp, {}, "quick")


def test_a_result_field_that_does_not_exist_names_the_closest(tmp_path):
    with pytest.raises(ValueError, match=r"no layer of 'dropout' 'relu5'; did you mean 'relu4'\? \(choose from "
                                         r"relu3, relu4\)"):
        _activations(([1, 1, 1], [0.3] * 3), ([0, 0, 0], [0.2] * 3)).layer("dropout", "relu5")
    with pytest.raises(ValueError, match=r"no variant 'dropot'; did you mean 'dropout'\?"):
        _activations(([1, 1, 1], [0.3] * 3), ([0, 0, 0], [0.2] * 3)).layer("dropot", "relu4")


def _filters(total: float, flat_black: float, orientation: str):
    from reportgen.analyses.filters import FilterLayer, FilterReading, FiltersResult, VariantFilters
    reading = FilterReading(index=0, sum=total, balance=0.3, near_zero_sum=False, flat_black=flat_black,
                            orientation=orientation, coherence=0.7)
    layer = FilterLayer(name="conv1", shape="1 × 1 × 5 × 5", out_channels=1, in_channels=1, kernel="5×5", first=True,
                        min=-1.0, max=1.0, figure=None, detail_figure=None, detail_out=0, detail_in=0,
                        readings=[reading], relu_next=True)
    return FiltersResult(basis="first seed", variants=[
        VariantFilters(name="tiny", label="Tiny", dataset="fashion-mnist", seeds=[0], seed=0, layers=[layer])])


@pytest.mark.parametrize("total, flat_black, orientation, says", [
    (-1.2, 0.8, "vertical", "the garment dark (set to zero) on a lit background, with one side of its vertical "
                            "outline picked out"),
    (1.2, -0.8, "horizontal", "the garment lit on a dark background (set to zero), with one side of its horizontal "
                              "outline picked out"),
    (0.3, 0.2, "none", "coarse silhouette: the garment's outline."),
])
def test_the_shipped_tiny_prose_reads_its_own_filter(tmp_path, monkeypatch, total, flat_black, orientation, says):
    """What the tiny post says the network sees follows its learned filter's sum and orientation."""
    post = render_shipped(tmp_path, monkeypatch, "tiny", {"filters": _filters(total, flat_black, orientation)})
    assert says in post, post[post.index("silhouette") - 200:][:600]
    with pytest.raises(ValueError, match=r"reading\('tiny', 3\): 'tiny' has 1 first-layer filters"):
        _filters(total, flat_black, orientation).reading("tiny", 3)


def test_gap_diff_and_still_learning_are_the_summary_numbers(tmp_path):
    exp, store = study(tmp_path)  # the synthetic histories gain a point in the last epoch: still learning
    post = render(tmp_path, exp, store, "{{ results() }}\n\nGAP {{ gap_diff('other') }} / "
                                        "{{ gap_diff('other').train_change|signed }} / "
                                        "{{ gap_diff('other').val_change|signed }} / "
                                        "{{ 'learning' if variant('other').still_learning else 'done' }} / "
                                        "{{ variant('other').train_acc_running|pct }}\n")
    row = summary(collect(exp.id, exp, "quick", store)).rows[1]
    g = row.gap_diff
    assert row.convergence.still_learning
    assert (f"GAP {markdown_text(str(prose.Measure.of(g, ' points')))} / "
            f"{markdown_text(signed_number(g.train_change))} / {markdown_text(signed_number(g.val_change))} "
            f"/ learning / {row.train_acc_running.mean:.1f}") in post
    with pytest.raises(Exception, match=r"gap_diff\('base'\): 'base' is the baseline"):
        render(tmp_path, exp, store, "{{ gap_diff('base') }}\n")


def test_shift_results_give_accuracy_and_paired_differences_by_variant_name():
    from reportgen.analyses.shift_curve import ShiftCurveResult
    kept = [SeedKept(label="LeNet", name="pool", by_seed={0: {0: 90.0, 4: 50.0}, 1: {0: 92.0, 4: 54.0}}),
            SeedKept(label="GAP", name="gap", by_seed={0: {0: 88.0, 4: 60.0}, 1: {0: 87.0, 4: 70.0}})]
    result = ShiftCurveResult(basis="first seed", radius=6, seed_kept=kept, baseline="LeNet")
    at = result.at("pool", 4)
    assert (at.mean, at.n, at.unit) == (52.0, 2, "%")
    d = result.diff_at("gap", 4)
    ci = mean_ci([10.0, 16.0])  # paired seed against seed: 60 − 50 and 70 − 54
    assert (d.mean, d.low, d.high, d.unit) == (13.0, ci.low, ci.high, " points")
    with pytest.raises(ValueError, match="differences are to the baseline"):
        result.diff_at("pool", 4)
    with pytest.raises(ValueError, match=r"no variant 'gpa'; did you mean 'gap'\?"):
        result.at("gpa", 4)
    # any two variants, paired: what pooling adds over the other at 4 pixels (50 − 60 and 54 − 70)
    between = result.between("pool", "gap", 4)
    assert (between.mean, between.unit) == (-13.0, " points")
    # the relative drop: the share of its unshifted accuracy each keeps (50/90, 54/92; 60/88, 70/87), and the
    # paired difference of those shares
    kept, kept_gap = result.kept("pool", 4), result.kept("gap", 4)
    assert kept.unit == "%" and kept.mean == pytest.approx((100 * 50 / 90 + 100 * 54 / 92) / 2)
    assert result.kept("gap", 4, "pool").mean == pytest.approx(kept_gap.mean - kept.mean)
    assert result.kept("gap", 4, "pool").unit == " points"


@pytest.mark.parametrize("missing", ["fashion-mnist", "mnist"])
def test_the_shipped_datasets_prose_renders_with_an_optional_dataset_left_out(tmp_path, monkeypatch, missing):
    """Every dataset of that study is optional: its prose reads the confusion result only for datasets that ran."""
    from reportgen.analyses.confusion import ConfusedPair, ConfusionResult, VariantConfusion
    exp = discover(ROOT / "experiments")["datasets"][1]
    shown = [v.name for v in exp.variants if v.name not in (missing, "kmnist")]
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
    counts = [[90 if i == j else (3 if {i, j} <= {0, 2, 4, 6} else 0) for j in range(10)] for i in range(10)]
    errors = sum(counts[i][j] for i in range(10) for j in range(10) if i != j)
    result = ConfusionResult(basis="first seed", variants=[VariantConfusion(
        name=name, label=name, dataset=name, seeds=[0], seed=0, classes=classes, counts=counts, normalised=[],
        support=[], recall_pct=[], errors=errors, test_size=1000, figure=None, figure_normalised=None,
        pairs=[ConfusedPair(a="T-shirt/top", b="Shirt", a_as_b=3, b_as_a=3, total=6, share_pct=0.0)])
        for name in shown])
    post = render_shipped(tmp_path, monkeypatch, "datasets", {"confusion": result}, left_out=(missing, "kmnist"))
    # 36 errors, all among the four upper-body garments; the top pair holds 6 of them
    assert ("most of the network's mistakes (100.0% of the first seed's)" in post) == (missing != "fashion-mnist")
    assert ("confused pair\nholds only 16.7% of them" in post) == (missing != "mnist")
