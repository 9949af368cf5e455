"""The analysis modules report, confusion, misclassified, samples, per_class_f1, architecture, output_size and
kernels: each result's numbers checked against independent computations (scikit-learn, the stored predictions,
direct convolutions, real tensor shapes), its figures written where the post links them, the analyses that need no
training on a study that trains nothing, and every draw function's PNG the same whether drawn or cached."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import classification_report, f1_score

import tests.test_analysis as shared
from tests.conftest import EXPERIMENT
from reportgen import analyses
from reportgen.config import StudyConfig, load_study
from reportgen.data import load_splits
from reportgen.models import build_model, count_parameters
from reportgen.settings import FIRST_SEED
from reportgen.study import Study

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"

# The two-variant (LeNet, fully connected), two-seed study of real one-epoch runs, and each analysis computed once
# on it (figures into docs/<study id>/): the fixtures workspace, study and rendered of tests/conftest.py.
POST = EXPERIMENT["id"]  # how the post links the figures: "<study id>/<name>.png"


module, writer = shared.module, shared.writer


# ---- analyses that need no training ---------------------------------------------------------------------------
def test_analyses_that_need_no_training_work_on_the_convolution_study(workspace, tmp_path):
    exp = load_study(ROOT / "experiments" / "convolution.yaml")
    assert not exp.trains
    bare = Study(id=exp.id, config=exp, profile="smoke", variants=[])
    figures = writer(tmp_path)
    samples = module("samples").compute(bare, figures)
    assert [d.dataset for d in samples.datasets] == ["fashion-mnist"]
    kernels = module("kernels").compute(bare, figures)
    assert kernels.image["dataset"] == "fashion-mnist" and len(kernels.kernels) == 5
    sizes = module("output_size").compute(bare, figures)
    assert [m.model for m in sizes.models] == ["lenet"] and sizes.models[0].all_match and sizes.models[0].rows
    arch = module("architecture").compute(bare, figures)
    assert arch.models[0].total == count_parameters(build_model("lenet"))
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["kernels.png", "samples-fashion-mnist.png"]


def test_output_size_needs_a_convolution_and_explains_a_model_without_one(workspace, tmp_path):
    data = {"id": "flat", "title": "Flat", "trains": False, "model": {"name": "fcnn"}, "analyses": ["output_size"]}
    exp = StudyConfig.model_validate(data)
    assert "needs a convolution" in analyses.why_not("output_size", exp)
    assert analyses.why_not("architecture", exp) is None and analyses.why_not("kernels", exp) is None
    result = module("output_size").compute(Study(id="flat", config=exp, profile="smoke", variants=[]),
                                           writer(tmp_path))
    assert result.models[0].rows == [] and result.models[0].all_match


# ---- draw functions: the same PNG drawn or cached -------------------------------------------------------------------
def _draw_inputs():
    rng = np.random.default_rng(7)
    classes = ["zero", "one", "two", "three"]
    counts = rng.integers(0, 30, size=(4, 4))
    shown = [{"index": i, "true": classes[i % 4], "predicted": classes[(i + 1) % 4], "confidence_pct": 90.0 - i,
              "true_prob_pct": 3.0 + i} for i in range(7)]
    f1 = [[{"name": c, "f1": 0.5 + 0.1 * i, "min": 0.45 + 0.1 * i, "max": 0.58 + 0.1 * i}
           for i, c in enumerate(classes)] for _ in range(2)]
    image = rng.random((28, 28))
    kernels = [(n, np.array(w, dtype=float), rng.normal(size=(28, 28))) for n, _, w in module("kernels").HAND_KERNELS]
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
def test_draw_function_writes_the_same_png_drawn_or_cached(name, method, kwargs, tmp_path):
    shared.check_draw_function(name, method, kwargs, tmp_path)


# ---- behaviour of each module ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_report_is_scikit_learns_classification_report(study, rendered):
    result = rendered["report"]
    classes = list(load_splits("fashion-mnist").classes)
    assert result.basis == FIRST_SEED
    assert [row.name for row in result.variants] == [v.name for v in study.available]
    for row, v in zip(result.variants, study.available):
        labels, probs = v.runs[0].predictions()
        expected = classification_report(labels, probs.argmax(1), labels=list(range(10)), target_names=classes,
                                         output_dict=True, zero_division=0)
        assert row.raw == expected and row.seed == v.runs[0].seed == 0 and row.test_size == len(labels)
        assert [(c.name, c.precision, c.recall, c.f1, c.support) for c in row.classes] == [
            (c, expected[c]["precision"], expected[c]["recall"], expected[c]["f1-score"], expected[c]["support"])
            for c in classes]
        assert row.accuracy == expected["accuracy"] == pytest.approx(v.runs[0].metrics.test_acc)
        assert row.macro.f1 == expected["macro avg"]["f1-score"]
        assert row.weighted.precision == expected["weighted avg"]["precision"]
        per_seed = [f1_score(y, p.argmax(1), average="macro", labels=list(range(10)), zero_division=0)
                    for y, p in (r.predictions() for r in v.runs)]
        assert row.macro_f1_seeds.n == 2 and row.macro_f1_seeds.mean == pytest.approx(np.mean(per_seed))


@pytest.mark.slow
def test_confusion_counts_pairs_and_both_figures(study, rendered):
    result, root = rendered["confusion"], rendered.directory
    mod = module("confusion")
    for row, v in zip(result.variants, study.available):
        labels, probs = v.runs[0].predictions()
        counts = np.array(row.counts)
        assert counts.sum() == len(labels)
        assert list(counts.sum(1)) == list(np.bincount(labels, minlength=10)) == row.support
        assert np.trace(counts) == len(labels) - row.errors == int((probs.argmax(1) == labels).sum())
        normalised = np.array(row.normalised)
        for i in range(10):
            if row.support[i]:
                assert normalised[i].sum() == pytest.approx(1.0)
        assert all(isinstance(p, mod.ConfusedPair) for p in row.pairs) and len(row.pairs) <= 3
        both = counts + counts.T
        off = sorted((int(both[i, j]) for i in range(10) for j in range(i + 1, 10) if both[i, j]), reverse=True)
        assert [p.total for p in row.pairs] == off[:3]
        for p in row.pairs:
            i, j = row.classes.index(p.a), row.classes.index(p.b)
            assert (p.a_as_b, p.b_as_a) == (counts[i, j], counts[j, i])
        assert row.figure.path == f"{POST}/confusion-{v.name}.png"
        assert row.figure_normalised.path == f"{POST}/confusion-{v.name}-normalised.png"
        assert (root / f"confusion-{v.name}.png").stat().st_size > 1000
        assert (root / f"confusion-{v.name}-normalised.png").stat().st_size > 1000
    counts = np.array([[5, 2, 0], [4, 6, 1], [0, 1, 3]])
    assert [(p.a, p.b, p.a_as_b, p.b_as_a, p.total) for p in mod.most_confused_pairs(counts, list("abc"))] == [
        ("a", "b", 2, 4, 6), ("b", "c", 1, 1, 2)]


@pytest.mark.slow
def test_misclassified_shows_the_most_confident_mistakes(study, rendered):
    result, root = rendered["misclassified"], rendered.directory
    assert any(row.errors for row in result.variants)  # the figure branch is exercised
    for row, v in zip(result.variants, study.available):
        labels, probs = v.runs[0].predictions()
        assert row.errors == int((probs.argmax(1) != labels).sum()) and len(row.shown) == min(18, row.errors)
        for s in row.shown:
            assert s.true != s.predicted
            assert s.confidence_pct == pytest.approx(100 * probs[s.index].max())
        confidences = [s.confidence_pct for s in row.shown]
        assert confidences == sorted(confidences, reverse=True)
        if row.errors:
            assert row.figure.path == f"{POST}/misclassified-{v.name}.png"
            assert (root / f"misclassified-{v.name}.png").exists()
        else:  # a perfect run has no mistakes to draw
            assert row.figure is None and not (root / f"misclassified-{v.name}.png").exists()


@pytest.mark.slow
def test_samples_one_grid_per_dataset(rendered):
    result, root = rendered["samples"], rendered.directory
    (d,) = result.datasets
    splits = load_splits("fashion-mnist")
    assert d.dataset == "fashion-mnist" and d.classes == list(splits.classes) and d.size == 28
    assert sum(d.train_counts) == d.train_size == len(splits.train_labels)
    assert d.figure.path == f"{POST}/samples-fashion-mnist.png" and (root / "samples-fashion-mnist.png").exists()


@pytest.mark.slow
def test_per_class_f1_is_the_mean_over_seeds(study, rendered):
    result, root = rendered["per_class_f1"], rendered.directory
    for row, v in zip(result.variants, study.available):
        per_seed = np.array([f1_score(y, p.argmax(1), labels=list(range(10)), average=None, zero_division=0)
                             for y, p in (r.predictions() for r in v.runs)])
        assert [c.f1 for c in row.classes] == pytest.approx(list(per_seed.mean(0)))
        assert [c.min for c in row.classes] == pytest.approx(list(per_seed.min(0)))
        assert [c.max for c in row.classes] == pytest.approx(list(per_seed.max(0)))
        assert row.worst.f1 == min(c.f1 for c in row.classes) and row.best.f1 == max(c.f1 for c in row.classes)
    assert result.figure.path == f"{POST}/per-class-f1.png" and (root / "per-class-f1.png").exists()


@pytest.mark.slow
def test_architecture_and_output_size_of_each_model(study, rendered):
    arch, sizes = rendered["architecture"], rendered["output_size"]
    assert [m.variants for m in arch.models] == [["LeNet"], ["Fully connected"]]
    for m in arch.models:
        assert m.total == m.trainable == sum(r.parameters for r in m.rows)
        assert all(isinstance(r, module("architecture").LayerRow) for r in m.rows)
    lenet, fc = sizes.models
    assert [(r.name, r.n, r.k, r.p, r.s, r.out, r.actual) for r in lenet.rows] == [
        ("conv1", 28, 5, 2, 1, 28, 28), ("pool1", 28, 2, 0, 2, 14, 14), ("conv2", 14, 5, 0, 1, 10, 10),
        ("pool2", 10, 2, 0, 2, 5, 5)]
    assert r"\left\lfloor \frac{28 + 2 \cdot 2 - 5}{1} \right\rfloor + 1" in str(lenet.rows[0].math)
    assert lenet.all_match and lenet.input == 28 and fc.rows == []


@pytest.mark.slow
def test_kernels_are_real_convolutions_of_a_test_image(rendered):
    result, root = rendered["kernels"], rendered.directory
    splits = load_splits("fashion-mnist")
    assert [k.name for k in result.kernels] == ["box blur", "outline", "vertical edges (Sobel)", "horizontal lines",
                                                 "vertical lines"]
    assert result.image["class"] == splits.classes[int(splits.test_labels[0])]
    image = splits.test_images[result.image["index"]].numpy().astype(np.float64) / 255
    padded = np.pad(image, 1)
    for k in result.kernels:
        w = np.array(k.weights)
        out = np.array([[np.sum(padded[i:i + 3, j:j + 3] * w) for j in range(28)] for i in range(28)])
        assert (k.out_min, k.out_max) == pytest.approx((out.min(), out.max()), abs=1e-5)
    assert module("kernels").apply_kernels(torch.ones(5, 5), [[[1.0] * 3] * 3]).shape == (1, 5, 5)
    # the signs the descriptions state: Sobel is positive where it gets brighter to the right, the outline kernel
    # where the centre is brighter than its neighbours; both are zero on a flat area
    step, dot = torch.zeros(5, 5), torch.zeros(5, 5)
    step[:, 3:], dot[2, 2] = 1.0, 1.0
    sobel, outline = ([w for n, _, w in module("kernels").HAND_KERNELS if n == name][0]
                      for name in ("vertical edges (Sobel)", "outline"))
    edge = module("kernels").apply_kernels(step, [sobel, [[-r for r in row] for row in sobel]], padding=0)
    assert edge[0, :, 1].min() > 0 and edge[1, :, 1].max() < 0 and edge[0, :, 0].abs().max() == 0
    assert module("kernels").apply_kernels(dot, [outline], padding=0)[0, 1, 1] == 8
    assert str(result.kernels[0].tex).startswith(r"\(\begin{bmatrix} \tfrac{1}{9}")
    assert result.output_size == result.size == 28
    assert result.figure.path == f"{POST}/kernels.png" and (root / "kernels.png").exists()


class _Capture:
    """A figure writer that keeps the drawn matplotlib figure instead of saving it."""

    def emit(self, name, alt, payload, draw):
        self.figure, self.alt = draw(), alt
        return None


def test_the_kernels_figure_draws_all_kernels_and_all_outputs_on_one_symmetric_scale():
    import matplotlib.pyplot as plt
    kernels_module = module("kernels")
    image = np.random.default_rng(3).random((28, 28))
    kernels = [(name, np.array(w, dtype=float),
                kernels_module.apply_kernels(torch.tensor(image, dtype=torch.float32), [w])[0].numpy())
               for name, _, w in kernels_module.HAND_KERNELS]
    capture = _Capture()
    kernels_module.draw_kernels(capture, image, kernels, title="t", name="k")
    k = len(kernels)
    axes = capture.figure.axes[:2 * (k + 1)]  # the 2 × (k + 1) grid, row by row; the colour bars come after it
    weight_limit = max(float(np.abs(w).max()) for _, w, _ in kernels)
    output_limit = max(float(np.abs(o).max()) for _, _, o in kernels)
    assert [ax.images[0].get_clim() for ax in axes[1:k + 1]] == [(-weight_limit, weight_limit)] * k
    assert [ax.images[0].get_clim() for ax in axes[k + 2:]] == [(-output_limit, output_limit)] * k
    assert weight_limit == 8 and "share one colour scale" in capture.alt
    plt.close(capture.figure)
    text = (analyses.HERE / "kernels.md.j2").read_text()
    assert "All the kernels are drawn on one colour\nscale" in text
    outline = next(d for n, d, _ in kernels_module.HAND_KERNELS if n == "outline")
    assert outline.startswith("8 × the centre minus the sum of its eight neighbours")


def _no_training(study_file: str) -> Study:
    exp = load_study(ROOT / "experiments" / study_file)
    return Study(id=exp.id, config=exp, profile="quick", variants=[])


def test_architecture_compares_each_models_size_with_the_baselines(tmp_path):
    from reportgen.markdown import package_environment
    result = module("architecture").compute(_no_training("cnn-vs-fc.yaml"), writer(tmp_path))
    sizes = {m.variants[0]: (m.trainable, m.ratio) for m in result.models}
    lenet = count_parameters(build_model("lenet"))
    large = count_parameters(build_model("fcnn", hidden=[512, 256]))
    assert result.models[result.reference].variants == ["LeNet"] and sizes["LeNet"] == (lenet, 1.0)
    assert sizes["FC (large)"] == (large, large / lenet) and f"{large / lenet:.1f}" == "8.7"
    assert "BatchNorm2d" not in result.layer_types and {"Conv2d", "Linear"} <= set(result.layer_types)
    text = package_environment().get_template("architecture.md.j2").render(a=result)
    assert f"| FC (large) | {large:,} | 8.7× |" in text and "| Relative to LeNet |" in text
    # the formula is explained once, on the How to read page, which the table links to
    assert "(../../how-to-read.md#layer-tables)" in text
    assert r"c_\text{out} \cdot c_\text{in} \cdot k \cdot k + c_\text{out}" in (ROOT / "docs" / "how-to-read.md").read_text()
    assert "Batch normalisation" not in text and "no bias" not in text
    bn = module("architecture").compute(_no_training("batchnorm.yaml"), writer(tmp_path))
    bn_text = package_environment().get_template("architecture.md.j2").render(a=bn)
    if "BatchNorm2d" in bn.layer_types:
        how_to_read = " ".join((ROOT / "docs" / "how-to-read.md").read_text().split())
        assert "(../../how-to-read.md#layer-tables)" in bn_text and "Batch normalisation learns" in how_to_read


def test_output_size_explains_a_global_pool_that_the_formula_does_not_describe(tmp_path):
    from reportgen.markdown import package_environment
    result = module("output_size").compute(_no_training("pooling.yaml"), writer(tmp_path))
    adaptive = {m.variants[0]: [(g.name, g.n, g.out, g.channels) for g in m.adaptive] for m in result.models}
    assert adaptive == {"LeNet": [], "LeNet, strided": [], "LeNet + global average pooling": [("gap", 5, 1, 16)]}
    text = package_environment().get_template("output_size.md.j2").render(a=result)
    assert "here 5 × 5 → 1 × 1, one number per map: the average of all its 25 pixels" in text
