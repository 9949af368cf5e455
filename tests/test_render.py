"""Statistics, post rendering and the home page, on synthetic results (fast: no training except one smoke run).

Runs are written straight into a results store with :meth:`Store.write_run`, through the same serialiser as
training (:func:`reportgen.train.run_files`), so the renderer reads exactly what `reportgen run` would leave.
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
from markupsafe import Markup
from scipy import stats as scipy_stats

from reportgen import post as post_mod
from reportgen.config import discover, load_experiment
from reportgen.loader import Normalization
from reportgen.markdown import html_text, interval, markdown_text, number, signed_number
from reportgen.models import build_model, count_parameters
from reportgen.post import render_study
from reportgen.prose import ProseError, prose_path
from reportgen.stats import mean_ci, paired_difference, summary, verdict
from reportgen.store import Store
from reportgen.study import RenderError, Study, VariantResults, collect
from reportgen.train import RunOutput, run_files
from tests.conftest import ROOT, invoke

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
            self.metrics = {"test_acc": acc, "parameters": 10, "best_epoch": 1}
            self.history = {"epochs": [{"train_acc": acc + 0.03, "val_acc": acc}]}
            self.record = {"wall_seconds": 1.0}

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
    exp = load_experiment(path)
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
    assert ci["n"] == len(x)
    assert ci["mean"] == pytest.approx(x.mean())
    assert ci["std"] == pytest.approx(x.std(ddof=1))
    assert (ci["low"], ci["high"]) == (pytest.approx(low), pytest.approx(high))
    assert ci["half"] == pytest.approx((high - low) / 2)


def test_mean_ci_known_values_and_degenerate_cases():
    ci = mean_ci([1.0, 2.0, 3.0])  # t(0.975, 2) = 4.302653; s = 1; half = 4.302653 / sqrt(3)
    assert ci["half"] == pytest.approx(2.484138, abs=1e-6)
    assert mean_ci([1.0, 3.0], confidence=0.90)["half"] == pytest.approx(6.313752, abs=1e-6)  # t(0.95, 1)
    one = mean_ci([0.7])
    assert one["n"] == 1 and one["mean"] == 0.7 and all(math.isnan(one[k]) for k in ("std", "low", "high", "half"))
    none = mean_ci([])
    assert none["n"] == 0 and math.isnan(none["mean"])
    flat = mean_ci([2.0, 2.0, 2.0])
    assert flat["std"] == 0 and flat["low"] == flat["high"] == 2.0


# ---- paired differences and verdicts -----------------------------------------------------------------------
def test_clear_improvement_is_paired_by_seed():
    base = fake_runs([0.80, 0.85, 0.90], "base")
    # Seed-to-seed variation (5 points) is much larger than the effect (0.5 points), but the pairs agree.
    better = fake_runs([0.805, 0.8555, 0.9045], "better")
    d = paired_difference(base, better)
    diffs = np.array([0.5, 0.55, 0.45])
    low, high = scipy_stats.t.interval(0.95, df=2, loc=diffs.mean(), scale=scipy_stats.sem(diffs))
    assert d["seeds"] == [0, 1, 2] and d["mean"] == pytest.approx(0.5)
    assert (d["low"], d["high"]) == (pytest.approx(low), pytest.approx(high)) and d["low"] > 0
    assert d["verdict"] == (f"Better improves test accuracy by 0.50 percentage points compared with Base "
                            f"(95% CI {d['low']:.2f} to {d['high']:.2f}, paired over 3 seeds).")
    # Unpaired, the same numbers would show nothing: the variant means' intervals overlap almost entirely.
    assert mean_ci(better.test_accs() * 100)["low"] < mean_ci(base.test_accs() * 100)["high"]


def test_clear_loss():
    d = paired_difference(fake_runs([0.90, 0.91, 0.92], "base"), fake_runs([0.88, 0.895, 0.90], "worse"))
    assert d["high"] < 0
    assert d["verdict"].startswith("Worse lowers test accuracy by 1.83 percentage points compared with Base (95% CI ")
    assert "points lower, paired over 3 seeds)." in d["verdict"]
    low, high = -d["high"], -d["low"]  # stated as the size of the drop
    assert f"95% CI {low:.2f} to {high:.2f} points lower" in d["verdict"]


def test_no_clear_difference():
    d = paired_difference(fake_runs([0.90, 0.91, 0.92], "base"), fake_runs([0.905, 0.905, 0.925], "other"))
    assert d["low"] < 0 < d["high"]
    assert d["verdict"].startswith("No clear difference in test accuracy between Other and Base at 3 seeds: "
                                   "the mean difference is +0.17 percentage points, but its 95% CI (")
    assert d["verdict"].endswith(") includes zero.")
    assert "improves" not in d["verdict"] and "lowers" not in d["verdict"]


def test_single_seed_gives_no_verdict():
    d = paired_difference(fake_runs([0.90], "base"), fake_runs([0.93], "other"))
    assert d["n"] == 1 and math.isnan(d["low"])
    assert d["verdict"].startswith("On a single seed, Other differs from Base by +3.00 percentage points")
    assert "no confidence interval and no verdict" in d["verdict"]
    assert "improves" not in d["verdict"]


def test_only_common_seeds_are_paired():
    base = fake_runs([0.80, 0.81, 0.82], "base", seeds=[0, 1, 2])
    other = fake_runs([0.91, 0.91], "other", seeds=[1, 2])
    d = paired_difference(base, other)
    assert d["seeds"] == [1, 2] and d["per_seed"] == {1: pytest.approx(10.0), 2: pytest.approx(9.0)}
    assert paired_difference(base, fake_runs([0.9], "x", seeds=[7])) is None


def test_identical_differences_and_identical_results():
    same = paired_difference(fake_runs([0.8, 0.9], "base"), fake_runs([0.8, 0.9], "same"))
    assert same["verdict"] == "Test accuracy is exactly the same for Same and Base on all 2 seeds."
    shifted = paired_difference(fake_runs([0.5, 0.75], "base"), fake_runs([0.625, 0.875], "up"))
    assert "by exactly 12.50 percentage points" in shifted["verdict"] and "zero width" in shifted["verdict"]


def test_across_datasets_the_verdict_does_not_claim_an_improvement():
    d = paired_difference(fake_runs([0.90, 0.905, 0.91], "fashion"),
                          fake_runs([0.99, 0.991, 0.989], "digits", dataset="mnist"))
    assert d["across_datasets"] and d["verdict"].startswith("Digits scores higher in test accuracy by 8.")
    assert "test sets differ" in d["verdict"] and "improves" not in d["verdict"]


def test_verdict_uses_a_real_minus_sign_and_the_confidence_level():
    text = verdict("A", "B", {**mean_ci([-1.0, 1.0, 0.5]), "confidence": 0.95})
    assert f"({MINUS}" in text and "95% CI" in text


def test_summary_rows_and_comparisons_against_the_baseline():
    class Config:
        baseline = "base"
    study = Study(id="s", config=Config(), profile="quick", variants=[
        fake_runs([0.80, 0.81, 0.82], "other"), fake_runs([0.70, 0.71, 0.72], "base"),
        VariantResults(name="gone", label="Gone", description="", dataset="kmnist", unavailable="no data")])
    s = summary(study)
    assert [r["name"] for r in s["rows"]] == ["other", "base"]
    assert s["rows"][0]["acc"]["mean"] == pytest.approx(81.0)
    assert s["rows"][0]["gap"]["mean"] == pytest.approx(3.0)
    assert [c["variant"] for c in s["comparisons"]] == ["other"] and s["comparisons"][0]["mean"] == pytest.approx(10)
    assert s["rows"][0]["diff"] is s["comparisons"][0] and s["rows"][1]["diff"] is None
    assert s["unavailable"] == [{"name": "gone", "label": "Gone", "dataset": "kmnist", "reason": "no data"}]
    assert s["n_seeds"] == 3 and not s["single_seed"] and s["baseline_label"] == "Base"


# ---- posts -------------------------------------------------------------------------------------------------
def test_post_states_the_numbers_of_the_results(tmp_path):
    exp, store = two_variant_study(tmp_path)
    post = render_study("alpha", exp, "quick", store, tmp_path / "docs").read_text()
    base = mean_ci([80.0, 81.0, 82.0])
    better = mean_ci([83.0, 84.5, 85.0])
    diff = mean_ci([3.0, 3.5, 3.0])
    row = lambda label, ci: f"| {label} | {ci['mean']:.2f} | {ci['low']:.2f} to {ci['high']:.2f} | {ci['std']:.2f} |"
    assert row("Base", base) + " 61,706 | baseline | |" in post
    assert row("Better", better) + f" 61,706 | +{diff['mean']:.2f} | +{diff['low']:.2f} to +{diff['high']:.2f} |" in post
    assert (f"Better improves test accuracy by {diff['mean']:.2f} percentage points compared with Base "
            f"(95% CI {diff['low']:.2f} to {diff['high']:.2f}, paired over 3 seeds).") in post
    # the reproducibility box: command, seeds, epochs, device, commit, wall time
    assert "reportgen run alpha --profile quick" in post and "| Seeds | 0, 1, 2 |" in post
    assert "| Epochs | 2 |" in post and "cpu (test)" in post and "`abc123`" in post and "15 s of training over 6 runs" in post
    assert '--8<-- "reportgen/models.py:lenet"' in post and "$$" in post


def test_verdicts_in_the_post_are_exactly_the_computed_ones(tmp_path):
    exp, store = two_variant_study(tmp_path, base=(0.80, 0.81, 0.82), better=(0.805, 0.80, 0.83))
    study = collect("alpha", exp, "quick", store)
    post = render_study("alpha", exp, "quick", store, tmp_path / "docs").read_text()
    s = summary(study)
    assert s["comparisons"] and s["gap_comparisons"]
    for c in s["comparisons"] + s["gap_comparisons"]:
        assert markdown_text(c["verdict"]) in post
    assert "No clear difference in test accuracy between Better and Base at 3 seeds" in post


def test_every_shipped_template_renders_from_results(tmp_path):
    """Each shipped study's own template, with synthetic runs for every variant (analyses left out: they are
    tested with their partials elsewhere) and an unavailable optional variant where there is one."""
    experiments = discover(ROOT / "experiments")
    assert list(experiments) == ["convolution", "tiny", "dropout", "pooling", "augmentation", "cnn-vs-fc", "datasets"]
    store = Store(tmp_path / "results")
    for exp_id, (_, exp) in experiments.items():
        exp = exp.model_copy(update={"analyses": []})
        for v in exp.variants:
            if v.optional and v.dataset == "kmnist":
                (store.root / exp_id / v.name).mkdir(parents=True)
                (store.root / exp_id / v.name / "UNAVAILABLE.txt").write_text("could not provision KMNIST\n")
                continue
            for seed in exp.profile("quick")["seeds"]:
                write_run(store, exp, v.name, seed, "quick", 0.8 + 0.01 * seed)
        post = render_study(exp_id, exp, "quick", store, tmp_path / "docs",
                            {k: e.title for k, (_, e) in experiments.items()}).read_text()
        front = yaml.safe_load(post.split("---")[1])
        assert front["title"] == exp.title and front["slug"] == exp_id and str(front["date"]) == str(exp.date)
        assert front["categories"] and front["tags"] and front["description"]
        assert "--8<-- \"reportgen/models.py:" in post and "## Reproduce this post" in post
        if exp.trains:
            assert "| Test accuracy (%) |" in post
    # distinct dates, newest first = the reading order, so the blog index lists the path top-down
    dates = [e.date for _, e in experiments.values()]
    assert len(set(dates)) == len(dates) and dates == sorted(dates, reverse=True)


def test_baseline_lenet_is_shared_between_studies():
    """The plain LeNet of these studies must resolve to the same run (it is trained once and copied); a drift
    in one training block would silently retrain it and cost minutes per profile."""
    experiments = discover(ROOT / "experiments")
    shared = [("augmentation", "none"), ("cnn-vs-fc", "lenet"), ("datasets", "fashion-mnist")]
    for profile in ("smoke", "quick", "full"):
        configs = [experiments[e][1].resolve(experiments[e][1].variant(v), 0, profile) for e, v in shared]
        assert all(c == configs[0] for c in configs), profile


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
    # the escaped '|' keeps every row of the results table at the header's number of cells
    table = next(t for t in re.findall(r"<table>.*?</table>", html, re.S) if "Test accuracy (%)" in t)
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
def test_home_page_lists_every_study_and_its_links_resolve(tmp_path):
    exp, store = two_variant_study(tmp_path, exp_id="alpha", title="Alpha study")
    write_experiment(tmp_path / "experiments", TWO_VARIANTS.format(
        id="beta", title='"Beta study"', description='"Never run."', base_label='"Base"'))
    write_experiment(tmp_path / "experiments", """
        id: gamma
        title: Gamma illustration
        description: Nothing to train.
        template: convolution
        trains: false
        """)
    docs = tmp_path / "docs"
    args = ["--experiments", str(tmp_path / "experiments"), "--results", str(tmp_path / "results"), "--docs", str(docs)]
    result = invoke(*args, "render", "alpha", "--profile", "quick")
    assert result.exit_code == 0, result.output
    home = (docs / "index.md").read_text()
    for title in ("Alpha study", "Beta study", "Gamma illustration"):
        assert title in home
    assert "[Alpha study](blog/posts/alpha.md)" in home
    assert "Beta study (post not rendered yet)" in home and "run `reportgen run beta --profile quick`" in home
    assert "Gamma illustration (post not rendered yet)" in home and "an illustration: nothing is trained" in home
    base = mean_ci([80.0, 81.0, 82.0])
    assert f"Base: {base['mean']:.2f} ({base['low']:.2f} to {base['high']:.2f})" in home
    assert "Better: +" in home
    # rendering another subset keeps the first one and adds the new link
    assert invoke(*args, "render", "gamma", "--profile", "quick").exit_code == 0
    home = (docs / "index.md").read_text()
    assert "[Alpha study](blog/posts/alpha.md)" in home and "[Gamma illustration](blog/posts/gamma.md)" in home
    assert "Beta study (post not rendered yet)" in home
    targets = re.findall(r"\]\(([^)]+)\)", home)
    assert set(targets) >= {"blog/posts/alpha.md", "blog/posts/gamma.md"}
    for target in targets:  # relative to docs/; about.md and the blog index are the hand-written pages
        assert (docs / target).is_file() or (ROOT / "docs" / target).is_file(), target
    # a full render fails for the study without results, and names the command that makes them
    result = invoke(*args, "render", "--profile", "quick")
    assert result.exit_code == 1 and "reportgen run beta --profile quick" in result.output


def test_collect_refuses_stale_results(tmp_path):
    exp, store = two_variant_study(tmp_path)
    other = exp.model_copy(update={"training": exp.training.model_copy(update={"lr": 0.5})})
    with pytest.raises(RenderError, match="stale"):
        collect("alpha", other, "quick", store)


# ---- an optional dataset that cannot be provisioned --------------------------------------------------------
def test_unavailable_optional_dataset_is_left_out_with_a_visible_note(project):
    """End to end: `run` cannot provision KMNIST (offline), leaves it out and says so; the post and the home page
    show it; the available variant is trained and rendered as usual."""
    (project / "experiments" / "dropout.yaml").unlink()
    write_experiment(project / "experiments", """
        id: sets
        title: Two datasets
        template: datasets
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
    assert '!!! warning "Left out of this run: KMNIST"' in post and "could not provision KMNIST" in post
    assert "| KMNIST (left out) |" in post
    acc = Store(project / "results").load("sets", "fashion", 0).metrics["test_acc"] * 100
    assert f"| Fashion-MNIST | {acc:.2f} |" in post
    assert "KMNIST |" not in post.split("## Results")[1].split("## Reproduce")[0]
    home = (project / "docs" / "index.md").read_text()
    assert "KMNIST: *left out: dataset unavailable*" in home


def test_a_failed_render_leaves_the_previous_post_and_figures(tmp_path):
    """Figures are drawn into a hidden staging folder and swapped in only after the template rendered."""
    exp, store = two_variant_study(tmp_path)
    exp = exp.model_copy(update={"analyses": ["curves"]})
    docs = tmp_path / "docs"
    post = render_study("alpha", exp, "quick", store, docs)
    before = {p.relative_to(docs): p.read_bytes() for p in sorted(docs.rglob("*")) if p.is_file()}
    assert any(p.suffix == ".png" for p in before) and post.read_text()
    # new numbers (other figures) and a template that cannot be found: the render fails after drawing
    write_run(store, exp, "better", 0, "quick", 0.95)
    broken = exp.model_copy(update={"template": "no-such-template"})
    with pytest.raises(Exception, match="no-such-template"):
        render_study("alpha", broken, "quick", store, docs)
    after = {p.relative_to(docs): p.read_bytes() for p in sorted(docs.rglob("*")) if p.is_file()}
    assert after == before  # same files, same bytes, no staging folder left behind
    # an interrupted swap (figure folder moved aside, never replaced) is repaired by the next render
    (docs / "blog/posts/alpha").rename(docs / "blog/posts/.alpha.old")
    render_study("alpha", exp, "quick", store, docs)
    assert (docs / "blog/posts/alpha").is_dir() and not (docs / "blog/posts/.alpha.old").exists()
    assert not list((docs / "blog/posts").glob(".alpha*"))
