"""The analysis modules filters, feature_maps, activation_stats, augmentation_gallery, shift_single, shift_grid and
shift_curve: each returns its dataclass with the fields its partial reads, writes its figures where the post links
them, fills the analysis cache in ``precompute`` where it has one, and — the migration check — gives exactly the
numbers, figures (byte for byte) and Markdown of the old functions in reportgen.analysis that it replaces."""
from __future__ import annotations

import dataclasses
import importlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import tests.test_analysis as legacy
from reportgen import analyses, analysis
from reportgen.analyses import _shift
from reportgen.config import ExperimentConfig, load_experiment
from reportgen.data import load_splits
from reportgen.figures import Figure, FigureWriter
from reportgen.loader import Normalization, to_input
from reportgen.render import _environment
from reportgen.study import Study

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("filters", "feature_maps", "activation_stats", "augmentation_gallery", "shift_single", "shift_grid",
         "shift_curve")
RESULTS = {"filters": "FiltersResult", "feature_maps": "FeatureMapsResult",
           "activation_stats": "ActivationStatsResult", "augmentation_gallery": "AugmentationGalleryResult",
           "shift_single": "ShiftSingleResult", "shift_grid": "ShiftGridResult", "shift_curve": "ShiftCurveResult"}
NO_TRAINING = {"augmentation_gallery"}
NEEDS_CONVOLUTION = {"filters"}
PRECOMPUTED = {"activation_stats", "shift_grid", "shift_curve"}

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


@pytest.fixture(scope="module")
def computed(study, tmp_path_factory):
    """Every module's compute() once, figures drawn (no figure cache) into one post folder."""
    root = tmp_path_factory.mktemp("new")
    figures = writer(root)
    return {name: module(name).compute(study, figures) for name in NAMES}, root


def _fc_only() -> ExperimentConfig:
    data = {**legacy.EXPERIMENT, "id": "flat", "model": {"name": "fcnn"}, "analyses": list(NAMES),
            "variants": [{"name": "fc", "label": "Fully connected"}]}
    return ExperimentConfig.model_validate(data)


# ---- registry and partials ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_module_is_registered_with_its_partial(name):
    a = analyses.get(name)
    mod = module(name)
    assert a.compute is mod.compute and a.title and a.summary and "\n" not in a.summary
    assert name not in analyses._LEGACY and name in analyses.names()
    old = (ROOT / "reportgen" / "templates" / "analyses" / f"{name}.md.j2").read_text()
    assert old.splitlines(keepends=True)[0] == f"{{% set a = analyses.{name} %}}\n"
    assert (analyses.HERE / a.template).read_text() == "".join(old.splitlines(keepends=True)[1:])
    assert a.needs_training == (name not in NO_TRAINING)
    assert a.needs_convolution == (name in NEEDS_CONVOLUTION)
    assert (a.precompute is not None) == (name in PRECOMPUTED)
    if a.precompute is not None:
        assert a.precompute is mod.precompute
    assert len(Path(mod.__file__).read_text().splitlines()) <= 400


def test_filters_apply_when_some_variant_has_a_convolution_and_the_rest_whenever_trained(study, workspace):
    mixed, flat = study.config, _fc_only()
    for name in NAMES:
        assert analyses.why_not(name, mixed, "smoke") is None, name
    assert "needs a convolution" in analyses.why_not("filters", flat, "smoke")
    assert "fcnn" in analyses.why_not("filters", flat, "smoke")
    for name in set(NAMES) - {"filters"}:
        assert analyses.why_not(name, flat, "smoke") is None, name
    illustration = load_experiment(ROOT / "experiments" / "convolution.yaml")
    for name in NAMES:
        reason = analyses.why_not(name, illustration)
        assert (reason is None) == (name in NO_TRAINING), name
        if reason:
            assert "trains none" in reason


def test_augmentation_gallery_works_without_training_and_uses_a_variants_settings(workspace, tmp_path):
    illustration = load_experiment(ROOT / "experiments" / "convolution.yaml")
    bare = module("augmentation_gallery").compute(Study(id=illustration.id, config=illustration, profile="smoke",
                                                        variants=[]), writer(tmp_path / "bare"))
    splits = load_splits("fashion-mnist")
    assert bare.image == {"dataset": "fashion-mnist", "title": "Fashion-MNIST", "index": 0,
                          "class": splits.classes[int(splits.test_labels[0])]}
    assert bare.affine.source == "demo" and bare.affine.params == {"rotation": 15.0, "translate": 0.1,
                                                                    "scale": [0.9, 1.1], "shear": 10.0}
    assert [t.name for t in bare.transforms] == ["rotation", "translation", "shear", "random crop", "horizontal flip",
                                                 "vertical flip", "brightness / contrast", "perspective"]
    assert sorted(p.name for p in (tmp_path / "bare").glob("*.png")) == [
        "augmentation-random-affine.png", "augmentation-torchvision.png"]
    assert bare.affine.draws == 2 * bare.draws == 12
    augmented = load_experiment(ROOT / "experiments" / "augmentation.yaml")
    result = module("augmentation_gallery").compute(Study(id=augmented.id, config=augmented, profile="quick",
                                                          variants=[]), writer(tmp_path / "aug"))
    assert result.affine.source == "LeNet + augmentation"
    assert result.affine.params == {"rotation": 10.0, "translate": 0.12, "scale": [0.9, 1.1], "shear": 8.0}
    assert result.affine.translate_px == pytest.approx(0.12 * 28) and result.affine.translate_pct == pytest.approx(12)
    # Seeded: the same figures, byte for byte, on every render.
    again = module("augmentation_gallery").compute(Study(id=augmented.id, config=augmented, profile="quick",
                                                         variants=[]), writer(tmp_path / "again"))
    assert again == result
    for png in ("augmentation-torchvision.png", "augmentation-random-affine.png"):
        assert (tmp_path / "again" / png).read_bytes() == (tmp_path / "aug" / png).read_bytes()


# ---- the migration check: same numbers, same PNG bytes, same Markdown as reportgen.analysis ---------------------
@pytest.mark.parametrize("name", NAMES)
def test_result_figures_and_markdown_equal_the_old_function(name, study, computed, tmp_path):
    results, new_dir = computed
    new = results[name]
    assert type(new).__name__ == RESULTS[name] and dataclasses.is_dataclass(new)
    old_writer = writer(tmp_path / "old")
    old = analysis.ANALYSES[name](study, old_writer)
    assert {f.name for f in dataclasses.fields(new)} == set(old)
    assert plain(dataclasses.asdict(new)) == plain(old)
    assert old_writer.written
    for path in old_writer.written:
        assert (new_dir / path.name).read_bytes() == path.read_bytes(), path.name
    env = _environment()
    context = {"exp": study.config, "study": study, "profile": study.profile}
    old_text = env.get_template(f"analyses/{name}.md.j2").render(analyses={name: old}, **context)
    new_text = env.from_string((analyses.HERE / f"{name}.md.j2").read_text()).render(a=new, **context)
    assert new_text == old_text and new_text.startswith("### ")


def _draw_inputs():
    rng = np.random.default_rng(11)
    classes = [f"class {i}" for i in range(10)]
    probs = rng.dirichlet(np.ones(10))
    points = [{"distance": d, "shifts": 4 * d or 1, "zero_pct": 90.0 - 9 * d, "wrap_pct": 90.0 - 5 * d,
               "min_zero_pct": 80.0 - 9 * d} for d in range(7)]
    return [
        ("filters", "filters", dict(tiles=rng.normal(size=(6, 5, 5)), layer="conv1", title="f", name="f")),
        ("filters", "filters", dict(tiles=rng.normal(size=(32, 28, 28)), layer="fc1", title="fc", name="fc")),
        ("filters", "filter_detail", dict(weights=rng.normal(size=(16, 6, 5, 5)), layer="conv2", title="d",
                                          name="d")),
        ("feature_maps", "feature_map", dict(maps=np.maximum(rng.normal(size=(6, 28, 28)), 0), layer="relu1",
                                             title="m", name="m")),
        ("feature_maps", "feature_map", dict(maps=rng.normal(size=(1, 24, 24)), layer="conv1", title="m1",
                                             name="m1")),
        ("feature_maps", "vector", dict(values=rng.normal(size=10), layer="fc3", title="l", name="logits",
                                        classes=classes, probs=probs)),
        ("feature_maps", "vector", dict(values=rng.normal(size=84), layer="fc2", title="v", name="short")),
        ("feature_maps", "vector", dict(values=np.maximum(rng.normal(size=400), 0), layer="flatten", title="s",
                                        name="folded", fold=25)),
        ("feature_maps", "vector", dict(values=rng.normal(size=784), layer="fc1", title="s", name="strip")),
        ("feature_maps", "feature_overview", dict(
            images=rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8),
            layers=[("conv1", rng.normal(size=(3, 6, 28, 28))), ("fc1", rng.normal(size=(3, 120)))],
            row_labels=["a", "b", "c"], title="o", name="o")),
        ("activation_stats", "zero_fractions", dict(series={"LeNet": [("relu1", 48.2), ("relu2", 61.0)],
                                                            "FC": [("relu1", 30.5)]}, title="z", name="z")),
        ("augmentation_gallery", "augmentations", dict(
            original=rng.integers(0, 256, size=(28, 28), dtype=np.uint8),
            rows=[("rotation", rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)),
                  ("shear", rng.integers(0, 256, size=(4, 28, 28), dtype=np.uint8))], title="a", name="a")),
        ("augmentation_gallery", "augmentations", dict(
            original=rng.integers(0, 256, size=(28, 28), dtype=np.uint8),
            rows=[("random_affine", rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8))], title="r",
            name="r")),
        ("shift_single", "shift_triptych", dict(images=rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8),
                                                titles=["original", "lower right", "upper left"], title="t",
                                                name="t")),
        ("shift_grid", "shift_heatmaps", dict(zero=rng.uniform(20, 90, size=(13, 13)),
                                              wrap=rng.uniform(20, 90, size=(13, 13)), radius=6, vmin=20.0,
                                              vmax=90.0, title="h", name="h")),
        ("shift_curve", "shift_curve", dict(series={"LeNet": points, "FC": points[::-1]}, title="c", name="c")),
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
    module("filters").compute(study, first)
    again = writer(tmp_path, cache=True)
    module("filters").compute(study, again)
    assert first.drawn == len(first.written) == 4  # conv1, conv2, conv2's detail, the fc templates
    assert again.drawn == 0 and again.reused == 4


# ---- precompute ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PRECOMPUTED))
def test_precompute_fills_the_cache_that_compute_reads(name, study, workspace, monkeypatch, tmp_path):
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "cache"))
    stats = module("activation_stats")
    calls = {"shift_grid": 0, "activation_stats": 0}
    real_grid, real_stats = _shift.shift_accuracy_grid, stats.activation_statistics

    def counting_grid(*args, **kwargs):
        calls["shift_grid"] += 1
        return real_grid(*args, **kwargs)

    def counting_stats(*args, **kwargs):
        calls["activation_stats"] += 1
        return real_stats(*args, **kwargs)

    monkeypatch.setattr(_shift, "shift_accuracy_grid", counting_grid)
    monkeypatch.setattr(stats, "activation_statistics", counting_stats)
    n = len(study.available)
    kind = "activation_stats" if name == "activation_stats" else "shift_grid"
    expected = {"shift_grid": 0, "activation_stats": 0, kind: n}  # one computation per variant (its first seed)
    assert analyses.get(name).precompute(study) is None
    assert calls == expected
    assert len(list((tmp_path / "cache" / "analysis").rglob(f"{kind}-*.npz"))) == n
    assert not list(tmp_path.rglob("*.png"))  # precompute draws nothing
    analyses.get(name).precompute(study)  # already cached: costs nothing
    figures = writer(tmp_path / "docs")
    module(name).compute(study, figures)
    assert calls == expected  # rendering found every number in the cache
    assert figures.written


# ---- behaviour of each module ---------------------------------------------------------------------------------
def test_filters_show_every_convolution_and_the_fc_templates(study, computed):
    result, root = computed[0]["filters"], computed[1]
    mod = module("filters")
    assert result.basis == analysis.FIRST_SEED
    lenet, fc = result.variants
    assert (lenet.name, lenet.seed, lenet.seeds, fc.name) == ("lenet", 0, [0, 1], "fc")
    layers = dict(analysis.layer_table(study.available[0].runs[0].load_model()))
    assert [layer.name for layer in lenet.layers] == ["conv1", "conv2"]
    conv1, conv2 = lenet.layers
    assert isinstance(conv1, mod.FilterLayer) and conv1.first and not conv2.first
    assert (conv1.out_channels, conv1.in_channels, conv1.kernel, conv1.shape) == (6, 1, "5×5", "6 × 1 × 5 × 5")
    assert conv1.detail_figure is None and (conv1.detail_out, conv1.detail_in) == (0, 0)
    assert (conv2.detail_out, conv2.detail_in) == (16, 6) and conv2.detail_figure.path.endswith("-conv2-detail.png")
    for layer in lenet.layers:
        w = layers[layer.name].weight.detach().numpy()
        assert (layer.min, layer.max) == (float(w.min()), float(w.max()))
        assert layer.figure.path == f"post/filters-lenet-{layer.name}.png"
        assert (root / f"filters-lenet-{layer.name}.png").stat().st_size > 1000
    assert lenet.linear is None and fc.layers == []
    assert isinstance(fc.linear, mod.LinearTemplates)
    assert (fc.linear.units, fc.linear.shown, fc.linear.side) == (32, 32, 28)
    assert (root / Path(fc.linear.figure.path).name).exists()


def test_feature_maps_one_figure_per_layer_and_the_real_outputs(study, computed):
    result, root = computed[0]["feature_maps"], computed[1]
    for row, v in zip(result.variants, study.available):
        run = v.runs[0]
        model = run.load_model().eval()
        labels, probs = run.predictions()
        assert [e["index"] for e in row.examples] == [int(np.flatnonzero(labels == c)[0])
                                                      for c in range(10) if (labels == c).any()]
        index = row.example["index"]
        assert index == row.examples[0]["index"]
        assert row.example["predicted"] == load_splits("fashion-mnist").classes[int(probs[index].argmax())]
        h = to_input(load_splits("fashion-mnist").test_images[index:index + 1],
                     Normalization(**run.metrics["normalization"]))
        names = [n for n, _ in analysis.layer_table(model)]
        assert [layer.name for layer in row.layers] == names
        with torch.no_grad():
            for layer, (_, module_) in zip(row.layers, analysis.layer_table(model)):
                h = module_(h)
                assert layer.kind == ("map" if h.dim() == 4 else "logits" if layer is row.layers[-1] else "vector")
                assert (layer.min, layer.max) == pytest.approx((float(h.min()), float(h.max())), abs=1e-5)
                assert layer.figure.path == f"post/features-{v.name}-{layer.name}.png"
                assert (root / f"features-{v.name}-{layer.name}.png").stat().st_size > 1000
        assert row.layers[-1].kind == "logits"
        assert row.overview.path == f"post/features-{v.name}-overview.png"
        passes_on = (torch.nn.Dropout, torch.nn.Identity, torch.nn.Flatten)
        assert row.overview_layers == [n for n, m in analysis.layer_table(model) if not isinstance(m, passes_on)]
        assert [layer.identity_at_test for layer in row.layers] == [isinstance(m, passes_on)
                                                                    for _, m in analysis.layer_table(model)]


def test_activation_stats_match_a_direct_pass_over_the_test_set(study, computed):
    result, root = computed[0]["activation_stats"], computed[1]
    for row, v in zip(result.variants, study.available):
        run = v.runs[0]
        model = run.load_model().eval()
        images = load_splits("fashion-mnist").test_images[:run.metrics["test_size"]]
        h = to_input(images, Normalization(**run.metrics["normalization"]))
        assert row.images == len(images) == len(run.predictions()[0]) and row.seed == 0
        assert [layer.name for layer in row.layers] == [n for n, _ in analysis.layer_table(model)]
        with torch.no_grad():
            for layer, (_, module_) in zip(row.layers, analysis.layer_table(model)):
                h = module_(h)
                assert layer.type == type(module_).__name__ and layer.is_relu == (layer.type == "ReLU")
                assert layer.zero_pct == pytest.approx(100 * int((h == 0).sum()) / h.numel(), abs=1e-9)
                assert layer.mean == pytest.approx(float(h.double().mean()), rel=1e-5, abs=1e-6)
                alive = (h != 0).flatten(2).any(2).any(0) if h.dim() == 4 else (h != 0).any(0)
                assert (layer.units, layer.dead) == (alive.numel(), int((~alive).sum()))
        assert row.relu == [layer for layer in row.layers if layer.is_relu] and row.relu
    assert result.figure.path == "post/activation-zeros.png" and (root / "activation-zeros.png").exists()
    model = study.available[0].runs[0].load_model()
    images = load_splits("fashion-mnist").test_images[:70]
    norm = Normalization(mean=0.3, std=0.3)
    small = module("activation_stats").activation_statistics(model, images, norm, batch=16)
    whole = module("activation_stats").activation_statistics(model, images, norm, batch=70)
    for key in ("count", "zeros", "units", "dead", "max", "min"):
        assert np.array_equal(small[key], whole[key]), key


def test_shift_single_predictions_are_the_models_on_the_rolled_image(study, computed):
    result, root = computed[0]["shift_single"], computed[1]
    assert [(s.name, s.dx, s.dy) for s in result.shifts] == [("original", 0, 0), ("lower right", 4, 1),
                                                              ("upper left", -4, -1)]
    assert result.seeds == 2 and result.figure.path == "post/shift-single.png" and (root / "shift-single.png").exists()
    index = result.image["index"]
    image = load_splits("fashion-mnist").test_images[index]
    classes = list(load_splits("fashion-mnist").classes)
    for row, v in zip(result.variants, study.available):
        labels, probs = v.runs[0].predictions()
        if result.image["all_correct"]:
            assert probs[index].argmax() == labels[index]
        assert [r.shift for r in row.results] == ["original", "lower right", "upper left"]
        for r, s in zip(row.results, result.shifts):
            rolled = torch.roll(image, shifts=(s.dy, s.dx), dims=(-2, -1))[None]
            with torch.no_grad():
                p = [torch.softmax(run.load_model().eval()(to_input(rolled, Normalization(
                    **run.metrics["normalization"]))), 1)[0].numpy() for run in v.runs]
            assert r.predicted == classes[int(p[0].argmax())] and r.correct == (int(p[0].argmax()) == labels[index])
            assert r.true_prob_pct == pytest.approx(100 * p[0][labels[index]], abs=1e-4)
            assert r.true_prob_mean_pct == pytest.approx(100 * np.mean([q[labels[index]] for q in p]), abs=1e-4)
            assert r.seeds_correct == sum(int(q.argmax()) == labels[index] for q in p)


def test_shift_grid_centre_is_the_test_accuracy_and_cells_are_real(study, computed):
    result, root = computed[0]["shift_grid"], computed[1]
    assert (result.radius, result.shifts, result.subset) == (6, 169, False)
    for row, v in zip(result.variants, study.available):
        run = v.runs[0]
        zero, wrap = np.array(row.zero), np.array(row.wrap)
        assert zero.shape == wrap.shape == (13, 13) and not np.array_equal(zero, wrap)
        assert row.center_pct == 100 * run.metrics["test_acc"] == row.test_acc_pct and row.center_matches
        n = len(run.predictions()[0])
        assert (row.test_size, row.full_test_size, row.device) == (n, n, "cpu") and not row.subset
        assert [(p.dx, p.zero_pct, p.wrap_pct) for p in row.axis] == [
            (dx, zero[6, dx + 6], wrap[6, dx + 6]) for dx in range(-6, 7)]
        assert (row.mean_zero_pct, row.min_wrap_pct, row.corner_zero_pct) == (zero.mean(), wrap.min(), zero[0, 0])
        images = load_splits("fashion-mnist").test_images[:n]
        labels = torch.from_numpy(run.predictions()[0])
        model, norm = run.load_model().eval(), Normalization(**run.metrics["normalization"])
        with torch.no_grad():
            for dx, dy, mode in [(3, -2, "zero"), (-5, 6, "wrap")]:
                pred = model(to_input(_shift.shift_images(images, dx, dy, mode).contiguous(), norm)).argmax(1)
                cell = (zero if mode == "zero" else wrap)[dy + 6, dx + 6]
                assert cell == pytest.approx(100 * float((pred == labels).float().mean()))
        assert row.figure.path == f"post/shift-grid-{v.name}.png" and (root / f"shift-grid-{v.name}.png").exists()


def test_shift_curve_averages_the_grid_by_distance(study, computed):
    result, root = computed[0]["shift_curve"], computed[1]
    grids = computed[0]["shift_grid"].variants
    n = len(study.available[0].runs[0].predictions()[0])
    assert (result.radius, result.subset, result.test_sizes, result.full_test_size) == (6, False, [n], n)
    dist = np.rint(np.hypot(*np.meshgrid(np.arange(-6, 7), np.arange(-6, 7)))).astype(int)
    for row, g in zip(result.variants, grids):
        zero, wrap = np.array(g.zero), np.array(g.wrap)
        assert [p.distance for p in row.points] == list(range(7))
        assert [p.shifts for p in row.points] == [int((dist == k).sum()) for k in range(7)]
        assert row.points[0].shifts == 1 and row.points[1].shifts == 8
        for p in row.points:
            assert p.zero_pct == pytest.approx(zero[dist == p.distance].mean())
            assert p.wrap_pct == pytest.approx(wrap[dist == p.distance].mean())
            assert p.min_zero_pct == pytest.approx(zero[dist == p.distance].min())
        assert row.start_pct == row.points[0].zero_pct == g.center_pct
        assert row.drop_pct == pytest.approx(row.start_pct - row.end_pct) and row.end_pct == row.points[-1].zero_pct
    assert result.figure.path == "post/shift-curve.png" and (root / "shift-curve.png").exists()
