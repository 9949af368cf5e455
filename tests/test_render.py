"""Statistics, post rendering and the home page, on synthetic results (fast: no training except one smoke run).

Runs are written straight into a results store with :meth:`Store.write_run`, through the same serialiser as
training (:func:`reportgen.runs.run_files`), so the renderer reads exactly what `reportgen run` would leave.
Every post goes through the generic frame (``reportgen/templates/_post.md.j2``): a study without prose gets the
complete post, a study with prose (``experiments/<id>.md``) gets its prose and every block it did not place.
"""
from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path

import jinja2
import markdown
import numpy as np
import pytest
import torch
import yaml
from scipy import stats as scipy_stats

from reportgen import post as post_mod
from reportgen.config import discover, load_study
from reportgen.context import setup
from reportgen.home import render_home
from reportgen.loader import Normalization
from reportgen.markdown import html_text, interval, markdown_text, number, signed_number
from reportgen.models import build_model, count_parameters
from reportgen.post import render_study
from reportgen.prose import ProseError, _Unmeasured, prose_path
from reportgen.stats import DifferenceInterval, mean_ci, paired_difference, verdict
from reportgen.summary import Unavailable, summary
from reportgen.store import Store
from reportgen.study import RenderError, Study, VariantResults, collect
from reportgen.runs import run_files
from reportgen.train import RunOutput
from tests.conftest import ROOT, invoke, run_main
from tests.synthetic import stored

MINUS = "\u2212"


# ---- synthetic results ---------------------------------------------------------------------------------------
def write_experiment(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    text = textwrap.dedent(text)
    path = directory / f"{yaml.safe_load(text)['id']}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def write_run(store: Store, exp, variant: str, seed: int, profile: str, test_acc: float,
              train_acc: float | None = None, val_acc: float | None = None, epochs: int = 2) -> None:
    """One complete run with the given final numbers, written as `reportgen run` writes it."""
    v = exp.variant(variant)
    config = exp.resolve(v, seed, profile)
    torch.manual_seed(seed)
    model = build_model(config["model"]["name"], **config["model"]["options"])
    train_acc = test_acc + 0.02 if train_acc is None else train_acc
    val_acc = test_acc if val_acc is None else val_acc
    history = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": train_acc - 0.01 * (epochs - e),
                "val_loss": 1.1 / e, "val_acc": val_acc - 0.01 * (epochs - e), "seconds": 1.0}
               for e in range(1, epochs + 1)]
    n = 200
    labels = np.arange(n) % 10
    probs = np.full((n, 10), 0.01, dtype=np.float32)
    correct = int(round(test_acc * n))
    probs[np.arange(n), np.where(np.arange(n) < correct, labels, (labels + 1) % 10)] = 0.91
    out = RunOutput(history=history, best_epoch=epochs, best_state=model.state_dict(), test_loss=0.5,
                    test_acc=test_acc, test_labels=labels.astype(np.int64), test_probs=probs,
                    norm=Normalization(0.29, 0.35), parameters=count_parameters(model))
    record = {"experiment": exp.id, "variant": variant, "seed": seed, "profile": profile, "cache_key": "k",
              "dataset": config["dataset"], "dataset_sha256": "0" * 64, "device": "cpu (test)",
              "versions": {"python": "3", "torch": "2", "torchvision": "0", "numpy": "1", "reportgen": "0"},
              "git_commit": "abc123", "started": "", "finished": "", "wall_seconds": 2.5, "epoch_seconds": [1.0],
              "train_size": 55000}
    key = f"{exp.id}-{variant}-{seed}-{profile}"
    store.write_run(exp.id, variant, seed, key, run_files(config, out, record))


def fake_runs(accs: list[float], name: str = "v", dataset: str = "fashion-mnist", seeds: list[int] | None = None):
    """VariantResults whose runs only carry what the statistics read (seed, test accuracy, history)."""
    class FakeRun:
        def __init__(self, seed, acc):
            self.config = {"seed": seed}
            self.history, self.metrics, self.record = stored([{"train_acc": acc + 0.03, "val_acc": acc}],
                                                             test_acc=acc, parameters=10, best_epoch=1)

        @property
        def seed(self):
            return self.config["seed"]
    seeds = list(range(len(accs))) if seeds is None else seeds
    return VariantResults(name=name, label=name.capitalize(), description="", dataset=dataset,
                          runs=[FakeRun(s, a) for s, a in zip(seeds, accs)])


TWO_VARIANTS = """
id: {id}
title: {title}
description: {description}
date: 2026-01-02
categories: [Tests]
tags: [t]
training: {{epochs: 2}}
profiles:
  quick: {{epochs: 2, seeds: [0, 1, 2]}}
baseline: base
variants:
  - name: base
    label: {base_label}
    description: the baseline
  - name: better
    label: Better
    description: dropout p = 0.5
    model: {{options: {{dropout: 0.5}}}}
analyses: []
"""


def two_variant_study(tmp_path: Path, exp_id: str = "alpha", title: str = "Alpha study",
                      description: str = "A test study.", base_label: str = "Base",
                      base=(0.80, 0.81, 0.82), better=(0.83, 0.845, 0.85)):
    experiments = tmp_path / "experiments"
    path = write_experiment(experiments, TWO_VARIANTS.format(
        id=exp_id, title=json.dumps(title), description=json.dumps(description), base_label=json.dumps(base_label)))
    exp = load_study(path)
    store = Store(tmp_path / "results")
    for seed, (a, b) in enumerate(zip(base, better)):
        write_run(store, exp, "base", seed, "quick", a)
        write_run(store, exp, "better", seed, "quick", b)
    return exp, store


# ---- mean and confidence interval --------------------------------------------------------------------------
@pytest.mark.parametrize("values", [[1.0, 2.0, 3.0], [88.1, 89.4, 88.9, 89.0, 88.5], [0.5, 0.5001]])
def test_mean_ci_matches_scipy_t_interval(values):
    ci = mean_ci(values)
    x = np.array(values)
    low, high = scipy_stats.t.interval(0.95, df=len(x) - 1, loc=x.mean(), scale=scipy_stats.sem(x))
    assert ci.n == len(x)
    assert ci.mean == pytest.approx(x.mean())
    assert ci.std == pytest.approx(x.std(ddof=1))
    assert (ci.low, ci.high) == (pytest.approx(low), pytest.approx(high))
    assert ci.half == pytest.approx((high - low) / 2)


def test_mean_ci_known_values_and_degenerate_cases():
    ci = mean_ci([1.0, 2.0, 3.0])  # t(0.975, 2) = 4.302653; s = 1; half = 4.302653 / sqrt(3)
    assert ci.half == pytest.approx(2.484138, abs=1e-6)
    assert mean_ci([1.0, 3.0], confidence=0.90).half == pytest.approx(6.313752, abs=1e-6)  # t(0.95, 1)
    one = mean_ci([0.7])
    assert one.n == 1 and one.mean == 0.7 and all(math.isnan(getattr(one, k)) for k in ("std", "low", "high", "half"))
    none = mean_ci([])
    assert none.n == 0 and math.isnan(none.mean)
    flat = mean_ci([2.0, 2.0, 2.0])
    assert flat.std == 0 and flat.low == flat.high == 2.0


# ---- paired differences and verdicts -----------------------------------------------------------------------
def test_clear_improvement_is_paired_by_seed():
    base = fake_runs([0.80, 0.85, 0.90], "base")
    # Seed-to-seed variation (5 points) is much larger than the effect (0.5 points), but the pairs agree.
    better = fake_runs([0.805, 0.8555, 0.9045], "better")
    d = paired_difference(base, better)
    diffs = np.array([0.5, 0.55, 0.45])
    low, high = scipy_stats.t.interval(0.95, df=2, loc=diffs.mean(), scale=scipy_stats.sem(diffs))
    assert d.seeds == [0, 1, 2] and d.mean == pytest.approx(0.5)
    assert (d.low, d.high) == (pytest.approx(low), pytest.approx(high)) and d.low > 0
    # the interval is ±0.12 points: one decimal (reportgen.numbers)
    assert d.verdict == (f"Better improves test accuracy by 0.5 percentage points compared with Base "
                            f"(95% CI {d.low:.1f} to {d.high:.1f}, paired over 3 seeds).")
    # Unpaired, the same numbers would show nothing: the variant means' intervals overlap almost entirely.
    assert mean_ci(better.test_accs() * 100).low < mean_ci(base.test_accs() * 100).high


def test_clear_loss():
    d = paired_difference(fake_runs([0.90, 0.91, 0.92], "base"), fake_runs([0.88, 0.895, 0.90], "worse"))
    assert d.high < 0
    assert d.verdict.startswith("Worse lowers test accuracy by 1.8 percentage points compared with Base (95% CI ")
    assert "points lower, paired over 3 seeds)." in d.verdict
    low, high = -d.high, -d.low  # stated as the size of the drop
    assert f"95% CI {low:.1f} to {high:.1f} points lower" in d.verdict


def test_no_clear_difference():
    d = paired_difference(fake_runs([0.90, 0.91, 0.92], "base"), fake_runs([0.905, 0.905, 0.925], "other"))
    assert d.low < 0 < d.high
    assert d.verdict.startswith("No clear difference in test accuracy between Other and Base at 3 seeds: "
                                   "the mean difference is +0.2 percentage points, but its 95% CI (")
    assert d.verdict.endswith(") includes zero.")
    assert "improves" not in d.verdict and "lowers" not in d.verdict


def test_single_seed_gives_no_verdict():
    d = paired_difference(fake_runs([0.90], "base"), fake_runs([0.93], "other"))
    assert d.n == 1 and math.isnan(d.low)
    assert d.verdict.startswith("On a single seed, Other differs from Base by +3.0 percentage points")
    assert "no confidence interval and no verdict" in d.verdict
    assert "improves" not in d.verdict


def test_only_common_seeds_are_paired():
    base = fake_runs([0.80, 0.81, 0.82], "base", seeds=[0, 1, 2])
    other = fake_runs([0.91, 0.91], "other", seeds=[1, 2])
    d = paired_difference(base, other)
    assert d.seeds == [1, 2] and d.per_seed == {1: pytest.approx(10.0), 2: pytest.approx(9.0)}
    assert paired_difference(base, fake_runs([0.9], "x", seeds=[7])) is None


def test_identical_differences_and_identical_results():
    same = paired_difference(fake_runs([0.8, 0.9], "base"), fake_runs([0.8, 0.9], "same"))
    assert same.verdict == "Test accuracy is exactly the same for Same and Base on all 2 seeds."
    shifted = paired_difference(fake_runs([0.5, 0.75], "base"), fake_runs([0.625, 0.875], "up"))
    assert "by exactly 12.50 percentage points" in shifted.verdict and "zero width" in shifted.verdict


def test_across_datasets_the_verdict_does_not_claim_an_improvement():
    d = paired_difference(fake_runs([0.90, 0.905, 0.91], "fashion"),
                          fake_runs([0.99, 0.991, 0.989], "digits", dataset="mnist"))
    assert d.across_datasets and d.verdict.startswith("Digits scores higher in test accuracy by 8.")
    assert "test sets differ" in d.verdict and "improves" not in d.verdict


def test_verdict_uses_a_real_minus_sign_and_the_confidence_level():
    text = verdict("A", "B", DifferenceInterval.paired(mean_ci([-1.0, 1.0, 0.5], confidence=0.95)))
    assert f"({MINUS}" in text and "95% CI" in text


def test_summary_rows_and_comparisons_against_the_baseline():
    class Config:
        baseline = "base"
    study = Study(id="s", config=Config(), profile="quick", variants=[
        fake_runs([0.80, 0.81, 0.82], "other"), fake_runs([0.70, 0.71, 0.72], "base"),
        VariantResults(name="gone", label="Gone", description="", dataset="kmnist", unavailable="no data")])
    s = summary(study)
    assert [r.name for r in s.rows] == ["other", "base"]
    assert s.rows[0].acc.mean == pytest.approx(81.0)
    assert s.rows[0].gap.mean == pytest.approx(3.0)
    assert [c.variant for c in s.comparisons] == ["other"] and s.comparisons[0].mean == pytest.approx(10)
    assert s.rows[0].diff is s.comparisons[0] and s.rows[1].diff is None
    assert s.unavailable == [Unavailable(name="gone", label="Gone", dataset="kmnist", reason="no data")]
    assert s.n_seeds == 3 and not s.single_seed and s.baseline_label == "Base"


# ---- posts -------------------------------------------------------------------------------------------------
def test_post_states_the_numbers_of_the_results(tmp_path):
    exp, store = two_variant_study(tmp_path)
    post = render_study("alpha", exp, "quick", store, tmp_path / "docs").read_text()
    base = mean_ci([80.0, 81.0, 82.0])
    better = mean_ci([83.0, 84.5, 85.0])
    diff = mean_ci([3.0, 3.5, 3.0])
    # beside the interval over seeds, the test set's own (Wilson, on the 200 test images of these runs)
    wilson = lambda ci: scipy_stats.binomtest(round(ci.mean * 2), 200).proportion_ci(method="wilson")
    # every number with the decimals its own interval supports (reportgen.numbers): here all one
    row = lambda label, ci: (f"| {label} | {ci.mean:.1f} ({ci.low:.1f} to {ci.high:.1f}) | "
                             f"{100 * wilson(ci).low:.1f} to {100 * wilson(ci).high:.1f} |")
    assert row("Base", base) + " 61,706 | baseline |" in post
    assert row("Better", better) + f" 61,706 | +{diff.mean:.1f} (+{diff.low:.1f} to +{diff.high:.1f}) |" in post
    # the spread over seeds is in the collapsed detail table
    assert f"    | Base | {base.std:.1f} | " in post and f"    | Better | {better.std:.1f} | " in post
    assert (f"Better improves test accuracy by {diff.mean:.1f} percentage points compared with Base "
            f"(95% CI {diff.low:.1f} to {diff.high:.1f}, paired over 3 seeds)") in post
    # the reproducibility box: command, seeds, epochs, device, commit, wall time
    assert "reportgen run alpha --profile quick" in post and "| Seeds | 0, 1, 2 |" in post
    assert "| Epochs | 2 |" in post and "cpu (test)" in post and "`abc123`" in post and "15 s of training over 6 runs" in post
    # the models come from the zoo: one line per distinct model, with its parameter count
    assert "## The models" in post
    assert re.search(r"^    Base: conv 5×5, 6 ch, pad 2 → ReLU → .* — 61,706 parameters\.$", post, re.M)
    assert re.search(r"^    Better: .*dropout 0\.5.* — 61,706 parameters\.$", post, re.M)


def test_a_variant_that_trains_longer_shows_its_epochs_in_the_setup_and_on_the_home_page(tmp_path):
    """A variant's own ``epochs: {quick: 3}`` is a column of the setup table (the shared training line no longer
    states one number), the closing section names both counts, and the home table says who trains longer."""
    text = TWO_VARIANTS.format(id="alpha", title="Alpha", description="A.", base_label="Base").replace(
        "    model: {options: {dropout: 0.5}}",
        "    model: {options: {dropout: 0.5}}\n    epochs: {quick: 3}\n    intended: [epochs]\n"
        "    intended_reason: it converges more slowly")
    path = write_experiment(tmp_path / "experiments", text)
    exp = load_study(path)
    store = Store(tmp_path / "results")
    for seed, (a, b) in enumerate(zip((0.80, 0.81, 0.82), (0.83, 0.845, 0.85))):
        write_run(store, exp, "base", seed, "quick", a)
        write_run(store, exp, "better", seed, "quick", b, epochs=3)
    post = render_study("alpha", exp, "quick", store, tmp_path / "docs").read_text()
    assert "; the epochs are in the table below;" in post
    assert re.search(r"^\| Base \| the baseline \| .* \| 61,706 \| 2 \|$", post, re.M), post
    assert re.search(r"^\| Better \| dropout p = 0.5 \| .* \| 61,706 \| 3 \|$", post, re.M), post
    render_home({"alpha": (path, exp)}, "quick", store, tmp_path / "docs", {"alpha"})
    home = (tmp_path / "docs" / "index.md").read_text()
    assert "55,000 images, 2 epochs (Better: 3)" in home


def test_verdicts_in_the_post_are_exactly_the_computed_ones(tmp_path):
    exp, store = two_variant_study(tmp_path, base=(0.80, 0.81, 0.82), better=(0.805, 0.80, 0.83))
    study = collect("alpha", exp, "quick", store)
    post = render_study("alpha", exp, "quick", store, tmp_path / "docs").read_text()
    s = summary(study)
    assert s.comparisons and s.gap_comparisons
    for c in s.comparisons:
        assert markdown_text(c.verdict) in post
    assert "No clear difference in test accuracy between Better and Base at 3 seeds" in post
    # the gap table (and its verdicts) appears only where the prose places gap()
    assert not any(markdown_text(c.verdict) in post for c in s.gap_comparisons)
    prose = tmp_path / "experiments" / "alpha.md"
    prose.write_text("## The gap\n\n{{ gap() }}\n")
    post = render_study("alpha", exp, "quick", store, tmp_path / "docs", prose_file=prose).read_text()
    for c in s.comparisons + s.gap_comparisons:
        assert markdown_text(c.verdict) in post


NO_PROSE = """
id: plain
title: A study with nothing but its YAML
description: No prose, no template.
question: Does a YAML file alone make a whole post?
date: 2026-02-03
categories: [Tests]
tags: [t]
training: {epochs: 2}
profiles:
  quick: {epochs: 2, seeds: [0, 1]}
baseline: narrow
variants:
  - {name: narrow, label: Narrow, description: LeNet as it is}
  - {name: wide, label: Wide, description: wider convolutions, model: {options: {channels: [8, 24]}}}
analyses: [confusion, curves, architecture]
"""


def test_a_study_without_prose_gets_a_complete_post(tmp_path):
    """No template, no prose: the post is the frame (front matter, question, setup, models) with the results and
    every declared analysis in the order of the YAML, then the reproduce box; it builds a linkable page."""
    experiments = tmp_path / "experiments"
    path = write_experiment(experiments, NO_PROSE)
    exp = load_study(path)
    assert prose_path(path, exp) is None
    store = Store(tmp_path / "results")
    for seed in (0, 1):
        write_run(store, exp, "narrow", seed, "quick", 0.80 + 0.01 * seed)
        write_run(store, exp, "wide", seed, "quick", 0.84 + 0.01 * seed)
    result = invoke("--experiments", str(experiments), "--results", str(store.root), "--docs", str(tmp_path / "docs"),
                    "render", "plain", "--profile", "quick")
    assert result.exit_code == 0, result.output
    post = (tmp_path / "docs" / "blog" / "posts" / "plain.md").read_text()
    front = yaml.safe_load(post.split("---\n")[1])
    assert front["title"] == exp.title and front["slug"] == "plain" and str(front["date"]) == "2026-02-03"
    assert front["categories"] == ["Tests"] and front["tags"] == ["t"] and front["description"] == exp.description
    narrow = count_parameters(build_model("lenet"))
    wide = count_parameters(build_model("lenet", channels=[8, 24]))
    assert narrow != wide
    headings = ["# A study with nothing but its YAML", "## The question", "## Setup", "## The models", "## Results",
                "### Confusion matrix", "### Learning curves", "### Architecture, layer by layer",
                "## Reproduce this post"]
    at = [post.find("\n" + h + "\n") for h in headings]
    assert -1 not in at and at == sorted(at), dict(zip(headings, at))
    setup = post[at[2]:at[3]]
    assert "| Narrow | LeNet as it is |" in setup and f"| {narrow:,} |" in setup and f"| {wide:,} |" in setup
    models = post[at[3]:at[4]]
    assert re.search(rf"^    Narrow: conv 5×5, 6 ch, pad 2 → .* — {narrow:,} parameters\.$", models, re.M)
    assert re.search(rf"^    Wide: conv 5×5, 8 ch, pad 2 → .* — {wide:,} parameters\.$", models, re.M)
    assert "| Test accuracy (%) |" in post[at[4]:at[5]]
    assert "| Trained on | one machine (`--executor local`) |" in post[at[8]:]  # the stamp names the executor
    figures = re.findall(r"!\[[^\]]*\]\((plain/[^)]+)\)", post)
    assert figures and all((tmp_path / "docs" / "blog" / "posts" / f).is_file() for f in figures), figures
    assert "reportgen run plain --profile quick" in post[at[-1]:]
    assert post.count("## Results") == 1 and post.count("### Learning curves") == 1


def stub_analyses_with(monkeypatch, results: dict | None = None) -> None:
    """Every analysis renders as one marker comment (their computations and partials are tested in
    test_analyses_*); its result for prose is ``results[name]`` where given, else empty (any field the prose reads
    is empty and prints as nothing): what is under test is the frame, the prose and where each block lands."""
    from reportgen import analyses
    real_get = analyses.get
    given = results or {}

    class Result(_Unmeasured):  # prints as the analysis' name; any field the prose reads is empty
        def __init__(self, name: str):
            self.label = name

        def __str__(self) -> str:
            return self.label

    class Stub:
        template = "stub.md.j2"

        def __init__(self, name: str):
            self.name = real_get(name).name  # an unknown name still fails

        def compute(self, study, figures):
            return given.get(self.name, Result(self.name))
    monkeypatch.setattr(analyses, "get", Stub)
    real_env = post_mod.package_environment

    def environment():
        env = real_env()  # shared by every post: the stub gets an overlay, not the shared environment
        return env.overlay(loader=jinja2.ChoiceLoader([
            jinja2.DictLoader({"stub.md.j2": "<!-- analysis {{ a | code }} -->\n"}), env.loader]))
    monkeypatch.setattr(post_mod, "package_environment", environment)


@pytest.fixture
def stub_analyses(monkeypatch):
    stub_analyses_with(monkeypatch)


SHIPPED = ["data", "convolution", "tiny", "cnn-vs-fc", "pooling", "augmentation", "dropout", "batchnorm", "datasets",
           "synthesis"]


def test_every_shipped_study_renders_from_results_with_its_prose(tmp_path, stub_analyses):
    """Each shipped study, through its own prose, with synthetic runs for every variant and an unavailable optional
    variant where there is one: front matter, every declared analysis placed exactly once, the models, the
    results, links to the other posts, the reproduce box."""
    experiments = discover(ROOT / "experiments")
    assert list(experiments) == SHIPPED
    declared = {k: e.title for k, (_, e) in experiments.items()}
    store = Store(tmp_path / "results")
    for exp_id, (path, exp) in experiments.items():
        for v in exp.variants:
            if v.optional and v.dataset == "kmnist":
                (store.root / exp_id / v.name).mkdir(parents=True)
                (store.root / exp_id / v.name / "UNAVAILABLE.txt").write_text("could not provision KMNIST\n")
                continue
            for seed in exp.profile("quick").seeds:
                write_run(store, exp, v.name, seed, "quick", 0.8 + 0.01 * seed)
        prose = prose_path(path, exp)
        assert prose is not None and prose.name == f"{exp_id}.md", exp_id
        post = render_study(exp_id, exp, "quick", store, tmp_path / "docs", declared, prose,
                            others={n: experiments[n][1] for n in exp.reads}).read_text()
        front = yaml.safe_load(post.split("---")[1])
        # KMNIST is left out here (no runs), and the title says so
        left_out = " (KMNIST left out)" if any(v.optional and v.dataset == "kmnist" for v in exp.variants) else ""
        assert front["title"] == exp.title + left_out and front["slug"] == exp_id
        assert str(front["date"]) == str(exp.date)
        assert front["categories"] and front["tags"] and front["description"]
        snippet = "--8<-- \"reportgen/models.py:"  # the model's source, where the prose includes it
        assert (snippet in post) == (snippet in prose.read_text()), exp_id
        assert post.rstrip().split("\n## ")[-1].startswith("Reproduce this post"), exp_id
        for name in exp.analyses:
            assert post.count(f"<!-- analysis {name} -->") == 1, (exp_id, name)
        assert "{{" not in post and "{%" not in post, exp_id  # no Jinja left unrendered
        if exp.trains:
            assert post.count("| Test accuracy (%) |") == 1, exp_id
            facts = setup(exp, collect(exp_id, exp, "quick", store), "quick")
            for m in post_mod.models(facts):
                assert f"{markdown_text(m['text'])} — {m['parameters']:,} parameters." in post, (exp_id, m["name"])
    links = re.findall(r"\]\(([a-z0-9-]+)\.md\)", (tmp_path / "docs" / "blog" / "posts" / "convolution.md").read_text())
    assert "tiny" in links and set(links) <= set(experiments)


def test_blog_dates_follow_the_reading_order():
    """Distinct dates, newest first = the reading order (``order``), so the blog index, which lists posts newest
    first, lists the path top-down like the home page."""
    experiments = discover(ROOT / "experiments")
    dates = {exp_id: e.date for exp_id, (_, e) in experiments.items()}
    assert len(set(dates.values())) == len(dates)
    out_of_order = [f"{a} ({dates[a]}) is not newer than {b} ({dates[b]})"
                    for a, b in zip(dates, list(dates)[1:]) if dates[a] <= dates[b]]
    assert not out_of_order, "; ".join(out_of_order)


def test_baseline_lenet_is_shared_between_studies():
    """The plain LeNet of these studies must resolve to the same run (it is trained once and copied); a drift
    in one training block would silently retrain it and cost minutes per profile."""
    experiments = discover(ROOT / "experiments")
    shared = [("augmentation", "none"), ("cnn-vs-fc", "lenet"), ("datasets", "fashion-mnist"), ("batchnorm", "lenet"),
              ("pooling", "pool"), ("dropout", "no-dropout")]
    # Full trains augmentation for 40 epochs (its augmented network needs them to converge); quick uses 2,000 images
    # for the dropout study: those baselines are their own runs there, on purpose.
    own = {"full": {"augmentation"}, "quick": {"dropout"}, "smoke": {"dropout"}}
    for profile in ("smoke", "quick", "full"):
        configs = [experiments[e][1].resolve(experiments[e][1].variant(v), 0, profile) for e, v in shared
                   if e not in own[profile]]
        assert len(configs) >= 4 and all(c == configs[0] for c in configs), profile


# ---- escaping ----------------------------------------------------------------------------------------------
HOSTILE = '{{ 7*7 }} <script>alert(1)</script> *em* [link](http://x) {: onclick="alert(2)" } a|b $x$'


def to_html(text: str) -> str:
    body = text.split("---", 2)[2] if text.startswith("---") else text
    return markdown.markdown(body, extensions=["admonition", "attr_list", "md_in_html", "tables", "footnotes",
                                               "pymdownx.superfences", "pymdownx.arithmatex"],
                             extension_configs={"pymdownx.arithmatex": {"generic": True}})


def assert_literal(html: str, element: str) -> None:
    """The hostile text appears character for character as the text of ``element`` (a regex for the tag that
    holds it), and nothing in it became markup anywhere on the page."""
    shown = re.search(element + r"(.*?)</", html, re.S)
    assert shown and shown.group(1).strip() == HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert "<script" not in html and not re.search(r"<[^>]*\sonclick=", html)
    assert "<em>em</em>" not in html and 'href="http://x"' not in html


def test_hostile_text_from_experiment_files_renders_literally(tmp_path):
    exp, store = two_variant_study(tmp_path, title=HOSTILE, description=HOSTILE, base_label="<b>Base</b> | x")
    post = render_study("alpha", exp, "quick", store, tmp_path / "docs").read_text()
    front = yaml.safe_load(post.split("---")[1])
    assert front["title"] == HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    html = to_html(post)
    assert_literal(html, r"<h1>")
    assert len(re.findall(r"\{\{ 7\*7 \}\}", html)) >= 2  # the title and the description
    assert "<b>Base</b>" not in html and "&lt;b&gt;Base&lt;/b&gt; | x" in html
    # the escaped '|' keeps every row of every table (setup, results) at the header's number of cells
    tables = re.findall(r"<table>.*?</table>", html, re.S)
    assert any("Test accuracy (%)" in t for t in tables) and any("What changes" in t for t in tables)
    for table in tables:
        cells = [len(re.findall(r"<t[hd][ >]", row)) for row in re.findall(r"<tr>.*?</tr>", table, re.S)]
        assert len(set(cells)) == 1, cells

    invoke("--experiments", str(tmp_path / "experiments"), "--results", str(tmp_path / "results"),
           "--docs", str(tmp_path / "docs"), "render", "--profile", "quick")
    assert_literal(to_html((tmp_path / "docs" / "index.md").read_text()), r'<a href="blog/posts/alpha.md">')


def test_markdown_text_escapes_only_text():
    from markupsafe import Markup
    assert markdown_text("89.12") == "89.12" and markdown_text(3) == 3
    assert markdown_text(Markup("![a](b.png)")) == "![a](b.png)"
    assert markdown_text("a_b <c>") == "a\\_b &lt;c&gt;"


# ---- the home page -----------------------------------------------------------------------------------------


def test_number_filters():
    # a bare number: one decimal (reportgen.numbers); explicit digits win
    assert number(89.123) == "89.1" and number(-1.5, 2) == f"{MINUS}1.50" and number(None) == number(float("nan")) == "—"
    assert signed_number(0.5) == "+0.5" and signed_number(-0.5, 2) == f"{MINUS}0.50"
    assert signed_number(None) == "—"
    ci = mean_ci([1.0, 2.0, 3.0])  # half-width 2.5: one decimal
    assert interval(ci) == f"{ci.low:.1f} to {ci.high:.1f}".replace("-", MINUS)
    assert interval(mean_ci([-3.0, -1.0]), signed=True).startswith(MINUS) and " to +" in interval(
        mean_ci([-3.0, -1.0]), signed=True)
    assert interval(mean_ci([1.0])) == interval(None) == "—"  # one seed: no interval


def test_html_text_escapes_html_only():
    assert html_text('<a href="x">&</a> *b*') == '&lt;a href="x"&gt;&amp;&lt;/a&gt; *b*'


# ---- the home page -----------------------------------------------------------------------------------------
@pytest.fixture
def reportgen():
    """``reportgen ARGS`` through the console entry point (its error handling and exit codes): (code, output)."""
    def call(*args: str) -> tuple[int, str]:
        code, out, err = run_main(*args)
        return code, out + err
    return call


def test_home_page_lists_every_study_and_its_links_resolve(tmp_path, reportgen):
    _, store = two_variant_study(tmp_path, exp_id="alpha", title="Alpha study")
    write_experiment(tmp_path / "experiments", TWO_VARIANTS.format(
        id="beta", title='"Beta study"', description='"Never run."', base_label='"Base"'))
    delta = load_study(write_experiment(tmp_path / "experiments", TWO_VARIANTS.format(
        id="delta", title='"Delta study"', description='"Run, not rendered."', base_label='"Base"')))
    for seed in (0, 1, 2):
        write_run(store, delta, "base", seed, "quick", 0.7)
        write_run(store, delta, "better", seed, "quick", 0.75)
    write_experiment(tmp_path / "experiments", """
        id: gamma
        title: Gamma illustration
        description: Nothing to train.
        trains: false
        """)
    docs = tmp_path / "docs"
    args = ["--experiments", str(tmp_path / "experiments"), "--results", str(tmp_path / "results"), "--docs", str(docs)]
    code, output = reportgen(*args, "render", "alpha", "--profile", "quick")
    assert code == 0, output
    home = (docs / "index.md").read_text()
    rows = {title: next(line for line in home.splitlines() if title in line and line.startswith("|"))
            for title in ("Alpha study", "Beta study", "Gamma illustration", "Delta study")}
    # first the posts in reading order, each with its takeaway (or description); then the table
    assert home.index("## 1. [Alpha study](blog/posts/alpha.md)") < home.index("## 2. Beta study") \
        < home.index("## Every study at a glance")
    assert "*Not run in the `quick` profile: run `reportgen run beta --profile quick`.*" in home
    assert "[Alpha study](blog/posts/alpha.md)" in rows["Alpha study"]
    assert "**not run in the `quick` profile** — run `reportgen run beta --profile quick`" in rows["Beta study"]
    assert "](" not in rows["Beta study"] and "](" not in rows["Gamma illustration"]
    assert "nothing is trained; not in this build" in rows["Gamma illustration"]
    assert "not in this build — `reportgen build delta --profile quick` adds it" in rows["Delta study"]
    assert "](" not in rows["Delta study"]
    base = mean_ci([80.0, 81.0, 82.0])
    assert f"Base: {base.mean:.1f} ({base.low:.1f} to {base.high:.1f})" in rows["Alpha study"]
    assert "Better: +" in rows["Alpha study"] and "Base: baseline" in rows["Alpha study"]
    assert "`quick` profile (seeds\n0, 1, 2)" in home
    # rendering another subset keeps the first one and adds the new link
    assert reportgen(*args, "render", "gamma", "--profile", "quick")[0] == 0
    home = (docs / "index.md").read_text()
    assert "[Alpha study](blog/posts/alpha.md)" in home and "[Gamma illustration](blog/posts/gamma.md)" in home
    assert "nothing is trained for this post" in home
    assert "**not run in the `quick` profile** — run `reportgen run beta --profile quick`" in home
    targets = re.findall(r"\]\(([^)]+)\)", home)
    assert set(targets) >= {"blog/posts/alpha.md", "blog/posts/gamma.md"}
    for target in targets:  # relative to docs/; about.md and the blog index are the hand-written pages
        page = target.split("#")[0]  # methods.md#a-section: the page must exist (a strict build checks the anchor)
        assert (docs / page).is_file() or (ROOT / "docs" / page).is_file(), target
    # an explicit render of every study fails for the one without results: one line, the command, exit 1
    posts = {p.name: p.read_bytes() for p in (docs / "blog" / "posts").glob("*.md")}
    code, output = reportgen(*args, "render", "--profile", "quick")
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and "reportgen run beta --profile quick" in errors[0], output
    assert "Traceback" not in output
    assert {p.name: p.read_bytes() for p in (docs / "blog" / "posts").glob("*.md")} == posts


def test_collect_refuses_stale_results(tmp_path):
    exp, store = two_variant_study(tmp_path)
    other = exp.model_copy(update={"training": exp.training.model_copy(update={"lr": 0.5})})
    with pytest.raises(RenderError, match="stale"):
        collect("alpha", other, "quick", store)


def test_collect_refuses_a_partly_run_study(tmp_path):
    exp, store = two_variant_study(tmp_path)
    more_seeds = exp.model_copy(update={"profiles": {"quick": exp.profiles["quick"].model_copy(
        update={"seeds": [0, 1, 2, 3]})}})
    with pytest.raises(RenderError, match=r"base/seed-3 \(missing\), better/seed-3 \(missing\); "
                                          r"run: reportgen run alpha --profile quick"):
        collect("alpha", more_seeds, "quick", store)
    assert len(collect("alpha", exp, "quick", store).variants[0].runs) == 3


# ---- an optional dataset that cannot be provisioned --------------------------------------------------------
@pytest.mark.slow
def test_unavailable_optional_dataset_is_left_out_with_a_visible_note(project):
    """End to end: `run` cannot provision KMNIST (offline), leaves it out and says so; the post and the home page
    show it; the available variant is trained and rendered as usual."""
    (project / "experiments" / "dropout.yaml").unlink()
    write_experiment(project / "experiments", """
        id: sets
        title: Two datasets
        baseline: fashion
        variants:
          - {name: fashion, label: Fashion-MNIST, dataset: fashion-mnist, optional: true}
          - {name: kanji, label: KMNIST, dataset: kmnist, optional: true}
        analyses: []
        """)
    result = invoke("run", "--profile", "smoke")
    assert result.exit_code == 0, result.output
    assert "warning: kmnist left out" in result.output
    note = project / "results" / "sets" / "kanji" / "UNAVAILABLE.txt"
    assert "could not provision KMNIST" in note.read_text()
    result = invoke("render", "--profile", "smoke")
    assert result.exit_code == 0, result.output
    post = (project / "docs" / "blog" / "posts" / "sets.md").read_text()
    # the note says what is missing and how to add it; the build machine's paths and errors stay in its log
    assert '!!! warning "Left out of this run: KMNIST"' in post and "reportgen data fetch kmnist" in post
    # the page's description (search engines, link previews) does not promise the missing dataset either
    assert next(line for line in post.splitlines() if line.startswith("description: ")).endswith(
        '(Left out of this run: KMNIST.)"')
    assert 'title: "Two datasets (KMNIST left out)"' in post and "\n# Two datasets (KMNIST left out)\n" in post
    assert "could not provision KMNIST" not in post and str(project) not in post
    assert "| KMNIST (left out) |" in post
    acc = Store(project / "results").load("sets", "fashion", 0).metrics.test_acc * 100
    assert f"| Fashion-MNIST | {acc:.1f} |" in post
    assert "KMNIST |" not in post.split("## Results")[1].split("## Reproduce")[0]
    home = (project / "docs" / "index.md").read_text()
    assert "KMNIST: *left out: dataset unavailable*" in home


# ---- rendering is atomic ------------------------------------------------------------------------------------
def test_a_failed_render_leaves_the_previous_post_and_figures(tmp_path):
    """Figures are drawn into a hidden staging folder and swapped in only after the whole post rendered."""
    exp, store = two_variant_study(tmp_path)
    exp = exp.model_copy(update={"analyses": ["curves"]})
    docs = tmp_path / "docs"
    post = render_study("alpha", exp, "quick", store, docs)
    before = {p.relative_to(docs): p.read_bytes() for p in sorted(docs.rglob("*")) if p.is_file()}
    assert any(p.suffix == ".png" for p in before) and post.read_text()
    # new numbers (other figures) and prose that fails at render time, after the figures were drawn
    write_run(store, exp, "better", 0, "quick", 0.95)
    prose = tmp_path / "experiments" / "alpha.md"
    prose.write_text('{{ analysis("curves") }}\n\nBetter reached {{ acc("bettr") }}.\n')
    with pytest.raises(ProseError, match=r"alpha\.md:3: no variant 'bettr'; did you mean 'better'\?"):
        render_study("alpha", exp, "quick", store, docs, prose_file=prose)
    after = {p.relative_to(docs): p.read_bytes() for p in sorted(docs.rglob("*")) if p.is_file()}
    assert after == before  # same files, same bytes, no staging folder left behind
    # the same render with good prose swaps in the new figures
    prose.write_text('{{ analysis("curves") }}\n\nBetter reached {{ acc("better") }}.\n')
    render_study("alpha", exp, "quick", store, docs, prose_file=prose)
    swapped = {p.relative_to(docs): p.read_bytes() for p in sorted(docs.rglob("*")) if p.is_file()}
    assert swapped.keys() == before.keys() and all(
        swapped[k] != before[k] for k in before if k.suffix == ".png"), "the figures were not replaced"
    # what a killed render leaves (its figure folder moved aside and never replaced, a staging folder) is repaired
    # by the next render, before it draws anything: even one that fails has the figures back in place
    figures = {p.name: p.read_bytes() for p in (docs / "blog/posts/alpha").iterdir()}
    (docs / "blog/posts/alpha").rename(docs / "blog/posts/.alpha.old")
    (docs / "blog/posts/.alpha.render-killed").mkdir()
    prose.write_text('{{ acc("bettr") }}\n')
    with pytest.raises(ProseError, match="bettr"):
        render_study("alpha", exp, "quick", store, docs, prose_file=prose)
    assert {p.name: p.read_bytes() for p in (docs / "blog/posts/alpha").iterdir()} == figures
    assert not list((docs / "blog/posts").glob(".alpha*"))
    render_study("alpha", exp, "quick", store, docs)
    assert (docs / "blog/posts/alpha").is_dir() and not list((docs / "blog/posts").glob(".alpha*"))
