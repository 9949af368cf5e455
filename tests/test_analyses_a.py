"""The analysis modules report, confusion, misclassified, samples, per_class_f1, architecture, output_size and
kernels: each returns its dataclass with the fields its partial reads, writes its figures where the post links
them, and — the migration check — gives exactly the numbers, figures (byte for byte) and Markdown of the old
functions in reportgen.analysis that it replaces."""
from __future__ import annotations

import dataclasses
import importlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import classification_report, f1_score

import tests.test_analysis as legacy
from reportgen import analyses, analysis
from reportgen.config import ExperimentConfig, load_experiment
from reportgen.data import load_splits
from reportgen.figures import Figure, FigureWriter
from reportgen.models import build_model, count_parameters
from reportgen.render import _environment
from reportgen.study import Study

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("report", "confusion", "misclassified", "samples", "per_class_f1", "architecture", "output_size", "kernels")
RESULTS = {"report": "ReportResult", "confusion": "ConfusionResult", "misclassified": "MisclassifiedResult",
           "samples": "SamplesResult", "per_class_f1": "PerClassF1Result", "architecture": "ArchitectureResult",
           "output_size": "OutputSizeResult", "kernels": "KernelsResult"}
NO_TRAINING = {"samples", "architecture", "output_size", "kernels"}

# The two-variant (LeNet, fully connected), two-seed study of real one-epoch runs that tests/test_analysis.py uses.
workspace = legacy.workspace
study = legacy.study


def module(name: str):
    return importlib.import_module(f"reportgen.analyses.{name}")


def writer(directory: Path, cache: bool = False) -> FigureWriter:
    return FigureWriter(directory=directory, link_prefix="post", cache_dir=(directory / ".cache") if cache else None)


def plain(value):
    """Figures as {path, alt}, dataclasses as dicts, NaN as a marker: what asdict of a new result must equal."""
    if isinstance(value, Figure) or dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def field_names(result) -> set[str]:
    return {f.name for f in dataclasses.fields(result)}


@pytest.fixture(scope="module")
def computed(study, tmp_path_factory):
    """Every module's compute() once, figures drawn (no cache) into one post folder."""
    root = tmp_path_factory.mktemp("new")
    figures = writer(root)
    return {name: module(name).compute(study, figures) for name in NAMES}, root


# ---- registry and partials ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_module_is_registered_with_its_partial(name):
    a = analyses.get(name)
    assert a.compute is module(name).compute and a.title and a.summary and "\n" not in a.summary
    assert name not in analyses._LEGACY and name in analyses.names()
    partial = analyses.HERE / a.template
    old = (ROOT / "reportgen" / "templates" / "analyses" / f"{name}.md.j2").read_text()
    assert old.splitlines(keepends=True)[0] == f"{{% set a = analyses.{name} %}}\n"
    assert partial.read_text() == "".join(old.splitlines(keepends=True)[1:])
    assert a.needs_training == (name not in NO_TRAINING)
    assert a.needs_convolution == (name == "output_size")
    assert len(Path(module(name).__file__).read_text().splitlines()) <= 400


def test_analyses_that_need_no_training_work_on_the_convolution_study(workspace, tmp_path):
    exp = load_experiment(ROOT / "experiments" / "convolution.yaml")
    assert not exp.trains
    bare = Study(id=exp.id, config=exp, profile="smoke", variants=[])
    for name in NAMES:
        assert (analyses.why_not(name, exp) is None) == (name in NO_TRAINING), name
    figures = writer(tmp_path)
    samples = module("samples").compute(bare, figures)
    assert [d.dataset for d in samples.datasets] == ["fashion-mnist"]
    kernels = module("kernels").compute(bare, figures)
    assert kernels.image["dataset"] == "fashion-mnist" and len(kernels.kernels) == 4
    sizes = module("output_size").compute(bare, figures)
    assert [m.model for m in sizes.models] == ["lenet"] and sizes.models[0].all_match and sizes.models[0].rows
    arch = module("architecture").compute(bare, figures)
    assert arch.models[0].total == count_parameters(build_model("lenet"))
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["kernels.png", "samples-fashion-mnist.png"]


def test_output_size_needs_a_convolution_and_explains_a_model_without_one(workspace, tmp_path):
    data = {"id": "flat", "title": "Flat", "trains": False, "model": {"name": "fcnn"}, "analyses": ["output_size"]}
    exp = ExperimentConfig.model_validate(data)
    assert "needs a convolution" in analyses.why_not("output_size", exp)
    assert analyses.why_not("architecture", exp) is None and analyses.why_not("kernels", exp) is None
    result = module("output_size").compute(Study(id="flat", config=exp, profile="smoke", variants=[]),
                                           writer(tmp_path))
    assert result.models[0].rows == [] and result.models[0].all_match


# ---- the migration check: same numbers, same PNG bytes, same Markdown as reportgen.analysis ---------------------
@pytest.mark.parametrize("name", NAMES)
def test_result_figures_and_markdown_equal_the_old_function(name, study, computed, tmp_path):
    results, new_dir = computed
    new = results[name]
    assert type(new).__name__ == RESULTS[name] and dataclasses.is_dataclass(new)
    old_writer = writer(tmp_path / "old")
    old = analysis.ANALYSES[name](study, old_writer)
    assert field_names(new) == set(old)
    assert plain(dataclasses.asdict(new)) == plain(old)
    for path in old_writer.written:
        assert (new_dir / path.name).read_bytes() == path.read_bytes(), path.name
    env = _environment()
    context = {"exp": study.config, "study": study, "profile": study.profile}
    old_text = env.get_template(f"analyses/{name}.md.j2").render(analyses={name: old}, **context)
    new_text = env.from_string((analyses.HERE / f"{name}.md.j2").read_text()).render(a=new, **context)
    assert new_text == old_text and new_text.startswith("### ")


def _draw_inputs():
    rng = np.random.default_rng(7)
    classes = ["zero", "one", "two", "three"]
    counts = rng.integers(0, 30, size=(4, 4))
    shown = [{"index": i, "true": classes[i % 4], "predicted": classes[(i + 1) % 4], "confidence_pct": 90.0 - i,
              "true_prob_pct": 3.0 + i} for i in range(7)]
    f1 = [[{"name": c, "f1": 0.5 + 0.1 * i, "min": 0.45 + 0.1 * i, "max": 0.58 + 0.1 * i}
           for i, c in enumerate(classes)] for _ in range(2)]
    image = rng.random((28, 28))
    kernels = [(n, np.array(w, dtype=float), rng.normal(size=(28, 28))) for n, _, w in analysis.HAND_KERNELS]
    return [
        ("confusion", "confusion", dict(matrix=counts, classes=classes, normalised=False, title="t", name="c")),
        ("confusion", "confusion", dict(matrix=counts / counts.sum(1, keepdims=True), classes=classes,
                                        normalised=True, title="t", name="cn")),
        ("misclassified", "misclassified", dict(images=rng.integers(0, 256, size=(7, 28, 28)), shown=shown,
                                                title="m", name="m")),
        ("samples", "samples", dict(grid=rng.integers(0, 256, size=(4, 3, 28, 28), dtype=np.uint8),
                                    classes=classes, title="s", name="s")),
        ("per_class_f1", "per_class_f1", dict(variants=[("A", "mnist", f1[0]), ("B", "mnist", f1[1])],
                                              title="f", name="f")),
        ("per_class_f1", "per_class_f1", dict(variants=[("A", "mnist", f1[0]), ("B", "kmnist", f1[1])],
                                              title="f", name="f2")),
        ("kernels", "kernels", dict(image=image, kernels=kernels, title="k", name="k")),
    ]


@pytest.mark.parametrize("name,method,kwargs", [pytest.param(*case, id=f"{case[1]}-{case[2]['name']}")
                                               for case in _draw_inputs()])
def test_draw_function_png_is_byte_identical_to_the_old_figure_method(name, method, kwargs, tmp_path):
    old = getattr(writer(tmp_path / "old"), method)(**kwargs)
    new = getattr(module(name), f"draw_{method}")(writer(tmp_path / "new"), **kwargs)
    assert new == old
    png = f"{kwargs['name']}.png"
    assert (tmp_path / "new" / png).read_bytes() == (tmp_path / "old" / png).read_bytes()


def test_figures_are_cached_on_the_new_drawing_code(study, tmp_path):
    first = writer(tmp_path, cache=True)
    module("confusion").compute(study, first)
    again = writer(tmp_path, cache=True)
    module("confusion").compute(study, again)
    assert first.drawn == 4 and again.drawn == 0 and again.reused == 4


# ---- behaviour of each module ---------------------------------------------------------------------------------
def test_report_is_scikit_learns_classification_report(study, computed):
    result = computed[0]["report"]
    classes = list(load_splits("fashion-mnist").classes)
    assert result.basis == analysis.FIRST_SEED
    for row, v in zip(result.variants, study.available):
        labels, probs = v.runs[0].predictions()
        expected = classification_report(labels, probs.argmax(1), labels=list(range(10)), target_names=classes,
                                         output_dict=True, zero_division=0)
        assert row.raw == expected and row.seed == 0 and row.test_size == len(labels)
        assert [(c.name, c.f1, c.support) for c in row.classes] == [
            (c, expected[c]["f1-score"], expected[c]["support"]) for c in classes]
        assert row.macro.f1 == expected["macro avg"]["f1-score"] and row.accuracy == expected["accuracy"]
        per_seed = [f1_score(y, p.argmax(1), average="macro", labels=list(range(10)), zero_division=0)
                    for y, p in (r.predictions() for r in v.runs)]
        assert row.macro_f1_seeds["n"] == 2 and row.macro_f1_seeds["mean"] == pytest.approx(np.mean(per_seed))


def test_confusion_counts_pairs_and_both_figures(study, computed):
    result, root = computed[0]["confusion"], computed[1]
    mod = module("confusion")
    for row, v in zip(result.variants, study.available):
        labels, probs = v.runs[0].predictions()
        counts = np.array(row.counts)
        assert counts.sum() == len(labels) and list(counts.sum(1)) == row.support
        assert np.trace(counts) == len(labels) - row.errors == int((probs.argmax(1) == labels).sum())
        assert all(isinstance(p, mod.ConfusedPair) for p in row.pairs) and len(row.pairs) <= 3
        both = counts + counts.T
        off = sorted((int(both[i, j]) for i in range(10) for j in range(i + 1, 10) if both[i, j]), reverse=True)
        assert [p.total for p in row.pairs] == off[:3]
        assert row.figure.path == f"post/confusion-{v.name}.png"
        assert row.figure_normalised.path == f"post/confusion-{v.name}-normalised.png"
        assert (root / f"confusion-{v.name}.png").stat().st_size > 1000
    counts = np.array([[5, 2, 0], [4, 6, 1], [0, 1, 3]])
    assert [(p.a, p.b, p.a_as_b, p.b_as_a, p.total) for p in mod.most_confused_pairs(counts, list("abc"))] == [
        ("a", "b", 2, 4, 6), ("b", "c", 1, 1, 2)]


def test_misclassified_shows_the_most_confident_mistakes(study, computed):
    result, root = computed[0]["misclassified"], computed[1]
    assert any(row.errors for row in result.variants)  # the figure branch is exercised
    for row, v in zip(result.variants, study.available):
        labels, probs = v.runs[0].predictions()
        assert row.errors == int((probs.argmax(1) != labels).sum()) and len(row.shown) == min(18, row.errors)
        assert all(s.true != s.predicted for s in row.shown)
        confidences = [s.confidence_pct for s in row.shown]
        assert confidences == sorted(confidences, reverse=True)
        if row.errors:
            assert row.figure.path == f"post/misclassified-{v.name}.png"
            assert (root / f"misclassified-{v.name}.png").exists()
        else:  # a perfect run has no mistakes to draw
            assert row.figure is None and not (root / f"misclassified-{v.name}.png").exists()


def test_samples_one_grid_per_dataset(computed):
    result, root = computed[0]["samples"], computed[1]
    (d,) = result.datasets
    splits = load_splits("fashion-mnist")
    assert d.dataset == "fashion-mnist" and d.classes == list(splits.classes) and d.size == 28
    assert sum(d.train_counts) == d.train_size == len(splits.train_labels)
    assert d.figure.path == "post/samples-fashion-mnist.png" and (root / "samples-fashion-mnist.png").exists()


def test_per_class_f1_is_the_mean_over_seeds(study, computed):
    result, root = computed[0]["per_class_f1"], computed[1]
    for row, v in zip(result.variants, study.available):
        per_seed = np.array([f1_score(y, p.argmax(1), labels=list(range(10)), average=None, zero_division=0)
                             for y, p in (r.predictions() for r in v.runs)])
        assert [c.f1 for c in row.classes] == pytest.approx(list(per_seed.mean(0)))
        assert [c.max for c in row.classes] == pytest.approx(list(per_seed.max(0)))
        assert row.worst.f1 == min(c.f1 for c in row.classes) and row.best.f1 == max(c.f1 for c in row.classes)
    assert result.figure.path == "post/per-class-f1.png" and (root / "per-class-f1.png").exists()


def test_architecture_and_output_size_of_each_model(study, computed):
    arch, sizes = computed[0]["architecture"], computed[0]["output_size"]
    assert [m.variants for m in arch.models] == [["LeNet"], ["Fully connected"]]
    for m in arch.models:
        assert m.total == m.trainable == sum(r.parameters for r in m.rows)
        assert all(isinstance(r, module("architecture").LayerRow) for r in m.rows)
    lenet, fc = sizes.models
    assert [(r.name, r.n, r.k, r.p, r.s, r.out, r.actual) for r in lenet.rows] == [
        ("conv1", 28, 5, 2, 1, 28, 28), ("pool1", 28, 2, 0, 2, 14, 14), ("conv2", 14, 5, 0, 1, 10, 10),
        ("pool2", 10, 2, 0, 2, 5, 5)]
    assert lenet.all_match and lenet.input == 28 and fc.rows == []


def test_kernels_are_real_convolutions_of_a_test_image(computed):
    result, root = computed[0]["kernels"], computed[1]
    splits = load_splits("fashion-mnist")
    assert result.image["class"] == splits.classes[int(splits.test_labels[0])]
    image = splits.test_images[result.image["index"]].numpy().astype(np.float64) / 255
    padded = np.pad(image, 1)
    for k in result.kernels:
        w = np.array(k.weights)
        out = np.array([[np.sum(padded[i:i + 3, j:j + 3] * w) for j in range(28)] for i in range(28)])
        assert (k.out_min, k.out_max) == pytest.approx((out.min(), out.max()), abs=1e-5)
    assert module("kernels").apply_kernels(torch.ones(5, 5), [[[1.0] * 3] * 3]).shape == (1, 5, 5)
    assert str(result.kernels[0].tex).startswith(r"\(\begin{bmatrix} \tfrac{1}{9}")
    assert result.output_size == result.size == 28
    assert result.figure.path == "post/kernels.png" and (root / "kernels.png").exists()
