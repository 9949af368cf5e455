"""The analysis modules filters, feature_maps, activation_stats, augmentation_gallery, shift_single, shift_grid and
shift_curve: each result's numbers checked against direct forward passes of the run's model, its figures written
where the post links them, ``precompute`` filling the analysis cache that ``compute`` reads, every draw function's
PNG the same whether drawn or cached, and each figure cached on the code of its module."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import tests.test_analysis as shared
from tests.conftest import EXPERIMENT
from reportgen import analyses
from reportgen.analyses import _shift
from reportgen.analyses._common import layer_table, load_model
from reportgen.config import load_study
from reportgen.data import load_splits
from reportgen.figures import FigureWriter
from reportgen.loader import Normalization, to_input
from reportgen.models import build_model
from reportgen.settings import FIRST_SEED
from reportgen.study import Study

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"

# The two-variant (LeNet, fully connected), two-seed study of real one-epoch runs, and each analysis computed once
# on it (figures into docs/<study id>/): the fixtures workspace, study and rendered of tests/conftest.py.
POST = EXPERIMENT["id"]  # how the post links the figures: "<study id>/<name>.png"


module, writer = shared.module, shared.writer


# ---- draw functions: the same PNG drawn or cached; the cache key is the drawing code ------------------------------
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
        ("feature_maps", "vector", dict(values=np.maximum(rng.normal(size=144), 0), layer="flatten", title="s",
                                        name="rows", fold=12, by_row=True)),
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
def test_draw_function_writes_the_same_png_drawn_or_cached(name, method, kwargs, tmp_path):
    shared.check_draw_function(name, method, kwargs, tmp_path)


def test_a_flattened_single_channel_map_is_drawn_as_the_map_s_rows_not_as_channels(tmp_path):
    """A 1 × 12 × 12 map flattened to 144 values: its figure folds the vector back into the map's 12 rows, and says
    so; "one row per channel" would invent eleven channels (a lecturer's read of the tiny CNN post)."""
    fm = module("feature_maps")
    values = np.arange(144, dtype=float)
    figures = FigureWriter(directory=tmp_path, link_prefix="p", cache_dir=None)
    rows = fm.draw_vector(figures, values, layer="flatten", title="t", name="rows", fold=12, by_row=True)
    channels = fm.draw_vector(figures, np.arange(400, dtype=float), layer="flatten", title="t", name="ch", fold=25)
    assert rows.alt.endswith("one row per row of the map, 12 values each") and "channel" not in rows.alt
    assert channels.alt.endswith("one row per channel of 25 values")


_copy_of = shared.edited_copy


def test_editing_an_analysis_module_redraws_its_figures_and_a_copy_reuses_them(tmp_path, monkeypatch):
    """A figure is cached on the whole module that draws it: the same source elsewhere (another file) reuses both
    figures; an edit to one draw function redraws the module's figures, and only the edited one looks different."""
    filters = module("filters")
    source = Path(filters.__file__).read_text()
    line = "mosaic = _mosaic(tiles, out_c, gap=1)"  # inside draw_filter_detail's drawing code
    assert source.count(line) == 1
    same = _copy_of(filters, source, tmp_path / "same.py", monkeypatch)
    edited = _copy_of(filters, source.replace(line, line.replace("gap=1", "gap=2")), tmp_path / "edited.py",
                      monkeypatch)
    rng = np.random.default_rng(5)
    tiles, weights = rng.normal(size=(6, 5, 5)), rng.normal(size=(4, 3, 5, 5))
    cache = tmp_path / "cache"

    def draw(mod, folder: str) -> tuple[tuple[int, int], tuple[int, int], dict[str, bytes]]:
        figures = FigureWriter(directory=tmp_path / folder, link_prefix="p", cache_dir=cache)
        mod.draw_filters(figures, tiles, layer="conv1", title="filters", name="f")
        plain = (figures.drawn, figures.reused)
        mod.draw_filter_detail(figures, weights, layer="conv2", title="detail", name="d")
        detail = (figures.drawn - plain[0], figures.reused - plain[1])
        return plain, detail, {p.name: p.read_bytes() for p in figures.written}

    plain, detail, first = draw(filters, "first")
    assert (plain, detail) == ((1, 0), (1, 0))
    # The same module source in another file: both figures from the cache.
    plain, detail, again = draw(same, "same")
    assert (plain, detail) == ((0, 1), (0, 1)) and again == first
    # The module changed: both figures are drawn again; draw_filter_detail's looks different, draw_filters' does not.
    plain, detail, changed = draw(edited, "edited")
    assert (plain, detail) == ((1, 0), (1, 0))
    assert changed["f.png"] == first["f.png"] and changed["d.png"] != first["d.png"]
    assert len(list(cache.rglob("*.png"))) == 4


# ---- precompute -----------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(shared.PRECOMPUTED))
def test_precompute_fills_the_cache_that_compute_reads(name, study, workspace, monkeypatch, tmp_path):
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REPORTGEN_SHIFT_IMAGES", "12")  # a small grid: this test is about the cache, not the numbers
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
    kind = "activation_stats" if name == "activation_stats" else "shift_grid"
    # the shift grid: one computation per variant (its first seed); activation statistics: one per run (every seed)
    n = len(study.available) if kind == "shift_grid" else sum(len(v.runs) for v in study.available)
    expected = {"shift_grid": 0, "activation_stats": 0, kind: n}
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
@pytest.mark.slow
def test_filters_show_every_convolution_and_the_fc_templates(study, rendered):
    result, root = rendered["filters"], rendered.directory
    mod = module("filters")
    assert result.basis == FIRST_SEED
    lenet, fc = result.variants
    assert (lenet.name, lenet.seed, lenet.seeds, fc.name) == ("lenet", 0, [0, 1], "fc")
    layers = dict(layer_table(study.available[0].runs[0].load_model()))
    assert [layer.name for layer in lenet.layers] == ["conv1", "conv2"]
    conv1, conv2 = lenet.layers
    assert isinstance(conv1, mod.FilterLayer) and conv1.first and not conv2.first
    assert (conv1.out_channels, conv1.in_channels, conv1.kernel, conv1.shape) == (6, 1, "5×5", "6 × 1 × 5 × 5")
    assert conv1.detail_figure is None and (conv1.detail_out, conv1.detail_in) == (0, 0)  # one input channel
    assert (conv2.detail_out, conv2.detail_in) == (16, 6) and conv2.detail_figure.path.endswith("-conv2-detail.png")
    for layer in lenet.layers:
        w = layers[layer.name].weight.detach().numpy()
        assert (layer.min, layer.max) == (float(w.min()), float(w.max()))
        assert layer.figure.path == f"{POST}/filters-lenet-{layer.name}.png"
        assert (root / f"filters-lenet-{layer.name}.png").stat().st_size > 1000
    assert lenet.linear is None and fc.layers == []
    assert isinstance(fc.linear, mod.LinearTemplates)
    assert (fc.linear.units, fc.linear.shown, fc.linear.side) == (32, 32, 28)
    assert (root / Path(fc.linear.figure.path).name).exists()


@pytest.mark.slow
def test_feature_maps_one_figure_per_layer_and_the_real_outputs(study, rendered):
    result, root = rendered["feature_maps"], rendered.directory
    passes_on = (torch.nn.Dropout, torch.nn.Identity, torch.nn.Flatten)
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
                     Normalization(**run.metrics.normalization.model_dump()))
        names = [n for n, _ in layer_table(model)]
        assert [layer.name for layer in row.layers] == names
        with torch.no_grad():
            for layer, (_, module_) in zip(row.layers, layer_table(model)):
                h = module_(h)
                assert layer.kind == ("map" if h.dim() == 4 else "logits" if layer is row.layers[-1] else "vector")
                assert (layer.min, layer.max) == pytest.approx((float(h.min()), float(h.max())), abs=1e-5)
                assert layer.figure.path == f"{POST}/features-{v.name}-{layer.name}.png" and layer.figure.alt
                assert (root / f"features-{v.name}-{layer.name}.png").stat().st_size > 1000
        assert row.layers[-1].kind == "logits"
        assert row.overview.path == f"{POST}/features-{v.name}-overview.png"
        assert (root / f"features-{v.name}-overview.png").stat().st_size > 1000
        assert row.overview_layers == [n for n, m in layer_table(model) if not isinstance(m, passes_on)]
        assert [layer.identity_at_test for layer in row.layers] == [isinstance(m, passes_on)
                                                                    for _, m in layer_table(model)]
    # The hooks of the render are gone from the models it used (and keeps for reuse).
    assert all(len(m._forward_hooks) == 0 for v in study.available for m in load_model(v.runs[0]).modules())


@pytest.mark.slow
def test_activation_stats_match_a_direct_pass_over_the_test_set(study, rendered):
    result, root = rendered["activation_stats"], rendered.directory
    for row, v in zip(result.variants, study.available):
        run = v.runs[0]
        model = run.load_model().eval()
        images = load_splits("fashion-mnist").test_images[:run.metrics.test_size]
        h = to_input(images, Normalization(**run.metrics.normalization.model_dump()))
        assert row.images == len(images) == len(run.predictions()[0]) and row.seed == 0
        assert [layer.name for layer in row.layers] == [n for n, _ in layer_table(model)]
        with torch.no_grad():
            for layer, (_, module_) in zip(row.layers, layer_table(model)):
                h = module_(h)
                assert layer.type == type(module_).__name__ and layer.is_relu == (layer.type == "ReLU")
                assert 0.0 <= layer.zero_pct <= 100.0
                assert layer.zero_pct == pytest.approx(100 * int((h == 0).sum()) / h.numel(), abs=1e-9)
                assert layer.mean == pytest.approx(float(h.double().mean()), rel=1e-5, abs=1e-6)
                assert layer.max == pytest.approx(float(h.max()), rel=1e-6, abs=1e-6)
                assert layer.min == pytest.approx(float(h.min()), rel=1e-6, abs=1e-6)
                alive = (h != 0).flatten(2).any(2).any(0) if h.dim() == 4 else (h != 0).any(0)
                assert layer.units == alive.numel()
                # "Never active" only where a zero means a silent unit: after a ReLU, not after a conv or linear.
                assert layer.dead == (int((~alive).sum()) if isinstance(module_, torch.nn.ReLU) else None)
        assert row.relu == [layer for layer in row.layers if layer.is_relu] and row.relu
        # every seed's network: the first seed's numbers first, then the others', and their mean with its interval
        relu = row.relu[-1]
        assert relu.seeds == [r.seed for r in v.runs] and len(relu.seeds) > 1
        assert relu.dead_per_seed[0] == relu.dead and relu.per_seed["mean"][0] == pytest.approx(relu.mean)
        assert relu.dead_over_seeds.mean == pytest.approx(np.mean(relu.dead_per_seed))
        assert relu.mean_over_seeds.n == len(v.runs) and relu.mean_over_seeds.low <= relu.mean_over_seeds.high
        index = [x.name for x in row.layers].index(relu.name)
        for seed, dead in zip(relu.seeds, relu.dead_per_seed):
            other = next(r for r in v.runs if r.seed == seed)
            direct = module("activation_stats").activation_statistics(
                other.load_model().eval(), images, Normalization(**other.metrics.normalization.model_dump()))
            assert dead == direct["dead"][index]
    a, b = (v.name for v in study.available[:2])
    layer = result.variants[0].relu[-1].name
    if any(x.name == layer for x in result.variants[1].layers):
        paired = result.paired(a, b, layer, "mean")
        first, second = result.layer(a, layer), result.layer(b, layer)
        assert paired["mean"] == pytest.approx(np.mean(first.per_seed["mean"]) - np.mean(second.per_seed["mean"]))
    with pytest.raises(ValueError, match="no per-seed 'size'"):
        result.paired(a, a, result.variants[0].relu[-1].name, "size")
    assert result.figure.path == f"{POST}/activation-zeros.png" and (root / "activation-zeros.png").exists()
    assert all(len(m._forward_hooks) == 0 for v in study.available for m in load_model(v.runs[0]).modules())


def test_activation_statistics_over_batches_equal_one_pass():
    torch.manual_seed(0)
    model = build_model("lenet").eval()
    images = torch.from_numpy(np.random.default_rng(2).integers(0, 256, size=(70, 28, 28), dtype=np.uint8))
    norm = Normalization(mean=0.3, std=0.3)
    statistics = module("activation_stats").activation_statistics
    small = statistics(model, images, norm, batch=16)
    whole = statistics(model, images, norm, batch=70)
    assert list(small["names"]) == [n for n, _ in layer_table(model)]
    assert small["count"].tolist() == [70 * int(np.prod(s)) for s in (
        o.shape[1:] for o in _outputs(model, images[:1], norm))]
    for key in ("count", "zeros", "units", "dead"):
        assert np.array_equal(small[key], whole[key]), key
    # A convolution's float rounding may depend on the batch size: the extremes and sums agree to that rounding.
    for key in ("max", "min", "sum"):
        np.testing.assert_allclose(small[key], whole[key], rtol=1e-5, atol=1e-5, err_msg=key)
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def _outputs(model, images, norm) -> list[torch.Tensor]:
    h, out = to_input(images, norm), []
    with torch.no_grad():
        for _, layer in layer_table(model):
            h = layer(h)
            out.append(h)
    return out


def test_augmentation_gallery_works_without_training_and_uses_a_variants_settings(workspace, tmp_path):
    illustration = load_study(ROOT / "experiments" / "convolution.yaml")
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
    augmented = load_study(ROOT / "experiments" / "augmentation.yaml")
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
    assert (tmp_path / "bare" / "augmentation-torchvision.png").read_bytes() == \
        (tmp_path / "aug" / "augmentation-torchvision.png").read_bytes()  # torchvision's row ignores the settings


@pytest.mark.slow
def test_shift_single_predictions_are_the_models_on_the_rolled_image(study, rendered):
    result, root = rendered["shift_single"], rendered.directory
    assert [(s.name, s.dx, s.dy) for s in result.shifts] == [("original", 0, 0), ("lower right", 4, 1),
                                                              ("upper left", -4, -1)]
    assert result.seeds == 2 and result.figure.path == f"{POST}/shift-single.png"
    assert (root / "shift-single.png").exists()
    index = result.image["index"]
    image = load_splits("fashion-mnist").test_images[index]
    classes = list(load_splits("fashion-mnist").classes)
    for row, v in zip(result.variants, study.available):
        labels, probs = v.runs[0].predictions()
        if result.image["all_correct"]:
            assert probs[index].argmax() == labels[index]
        # The unshifted image gives exactly the prediction stored by the run's own evaluation.
        original = row.results[0]
        assert original.predicted == classes[int(probs[index].argmax())]
        assert original.true_prob_pct == pytest.approx(100 * probs[index, labels[index]], abs=1e-4)
        assert original.correct == (int(probs[index].argmax()) == labels[index])
        assert [r.shift for r in row.results] == ["original", "lower right", "upper left"]
        for r, s in zip(row.results, result.shifts):
            rolled = torch.roll(image, shifts=(s.dy, s.dx), dims=(-2, -1))[None]
            with torch.no_grad():
                p = [torch.softmax(run.load_model().eval()(to_input(rolled, Normalization(
                    **run.metrics.normalization.model_dump()))), 1)[0].numpy() for run in v.runs]
            assert r.predicted == classes[int(p[0].argmax())] and r.correct == (int(p[0].argmax()) == labels[index])
            assert r.true_prob_pct == pytest.approx(100 * p[0][labels[index]], abs=1e-4)
            assert r.true_prob_mean_pct == pytest.approx(100 * np.mean([q[labels[index]] for q in p]), abs=1e-4)
            assert r.seeds_correct == sum(int(q.argmax()) == labels[index] for q in p)


@pytest.mark.slow
def test_shift_grid_centre_is_the_test_accuracy_and_cells_are_real(study, rendered):
    result, root = rendered["shift_grid"], rendered.directory
    assert (result.radius, result.shifts, result.subset) == (6, 169, False)
    for row, v in zip(result.variants, study.available):
        run = v.runs[0]
        zero, wrap = np.array(row.zero), np.array(row.wrap)
        assert zero.shape == wrap.shape == (13, 13) and zero[6, 6] == wrap[6, 6]
        # Synthetic images have noise up to the border: wrapping brings back pixels, zero-filling black.
        assert not np.array_equal(zero, wrap)
        assert row.center_pct == 100 * run.metrics.test_acc == row.test_acc_pct and row.center_matches
        n = len(run.predictions()[0])
        assert (row.test_size, row.full_test_size, row.device) == (n, n, "cpu") and not row.subset
        assert row.test_size == run.metrics.test_size
        assert [(p.dx, p.zero_pct, p.wrap_pct) for p in row.axis] == [
            (dx, zero[6, dx + 6], wrap[6, dx + 6]) for dx in range(-6, 7)]
        assert (row.mean_zero_pct, row.min_wrap_pct, row.corner_zero_pct) == (zero.mean(), wrap.min(), zero[0, 0])
        assert row.max_diff_pct == np.abs(zero - wrap).max()
        images = load_splits("fashion-mnist").test_images[:n]
        labels = torch.from_numpy(run.predictions()[0])
        model, norm = run.load_model().eval(), Normalization(**run.metrics.normalization.model_dump())
        with torch.no_grad():  # recount a few cells directly from the model
            for dx, dy, mode in [(0, 0, "zero"), (4, 1, "zero"), (3, -2, "zero"), (-6, 3, "wrap"), (-5, 6, "wrap")]:
                pred = model(to_input(_shift.shift_images(images, dx, dy, mode).contiguous(), norm)).argmax(1)
                cell = (zero if mode == "zero" else wrap)[dy + 6, dx + 6]
                assert cell == pytest.approx(100 * float((pred == labels).float().mean())), (dx, dy, mode)
        assert row.figure.path == f"{POST}/shift-grid-{v.name}.png" and (root / f"shift-grid-{v.name}.png").exists()


@pytest.mark.slow
def test_shift_curve_averages_the_grid_by_distance(study, rendered):
    result, root = rendered["shift_curve"], rendered.directory
    grids = rendered["shift_grid"].variants
    n = len(study.available[0].runs[0].predictions()[0])
    assert (result.radius, result.subset, result.test_sizes, result.full_test_size) == (6, False, [n], n)
    dist = np.rint(np.hypot(*np.meshgrid(np.arange(-6, 7), np.arange(-6, 7)))).astype(int)
    for row, g in zip(result.variants, grids):
        zero, wrap = np.array(g.zero), np.array(g.wrap)
        assert [p.distance for p in row.points] == list(range(7))
        assert [p.shifts for p in row.points] == [int((dist == k).sum()) for k in range(7)]
        assert row.points[0].shifts == 1 and row.points[1].shifts == 8  # (±1, 0), (0, ±1), (±1, ±1): √2 rounds to 1
        for p in row.points:
            assert p.zero_pct == pytest.approx(zero[dist == p.distance].mean())
            assert p.wrap_pct == pytest.approx(wrap[dist == p.distance].mean())
            assert p.min_zero_pct == pytest.approx(zero[dist == p.distance].min())
        assert row.start_pct == row.points[0].zero_pct == g.center_pct
        assert row.drop_pct == pytest.approx(row.start_pct - row.end_pct) and row.end_pct == row.points[-1].zero_pct
    assert result.figure.path == f"{POST}/shift-curve.png" and (root / "shift-curve.png").exists()


# ---- filters read like the hand-made kernels ------------------------------------------------------------------------
def test_orientation_names_the_edges_a_kernel_responds_to():
    filters = module("filters")
    hand = {name: np.array(w, dtype=float) for name, _, w in module("kernels").HAND_KERNELS}
    assert filters.orientation(hand["vertical lines"]) == ("vertical", pytest.approx(1.0))
    assert filters.orientation(hand["horizontal lines"]) == ("horizontal", pytest.approx(1.0))
    assert filters.orientation(hand["outline"])[0] == "none"  # the same change in every direction
    assert filters.orientation(hand["box blur"]) == ("none", 0.0)  # no change at all
    # A bright line from the lower left to the upper right (rows run down), and its mirror image.
    assert filters.orientation(np.fliplr(np.eye(5)))[0] == "rising diagonal"
    assert filters.orientation(np.eye(5))[0] == "falling diagonal"
    step = np.tile([-1.0, -1.0, 0.0, 1.0, 1.0], (5, 1))  # dark left, bright right: a vertical edge
    assert filters.orientation(step)[0] == "vertical" and filters.orientation(step.T)[0] == "horizontal"


def test_read_filter_sums_the_weights_and_answers_a_flat_black_patch():
    filters = module("filters")
    w = np.tile([-1.0, -1.0, 0.0, 1.0, 1.0], (5, 1)) + 0.1  # an edge detector that does not sum to zero
    reading = filters.read_filter(3, w[None], bias=0.2, black=-0.8)
    assert reading.index == 3 and reading.sum == pytest.approx(2.5)
    assert reading.balance == pytest.approx(2.5 / np.abs(w).sum()) and not reading.near_zero_sum
    flat = torch.nn.functional.conv2d(torch.full((1, 1, 9, 9), -0.8, dtype=torch.float64),
                                      torch.tensor(w[None, None]), torch.tensor([0.2], dtype=torch.float64))
    assert reading.flat_black == pytest.approx(float(flat[0, 0, 2, 2]))  # the real response on a flat patch
    assert reading.orientation == "vertical"
    assert filters.read_filter(0, np.array(module("kernels").HAND_KERNELS[1][2], dtype=float), 0.0, -0.8).near_zero_sum


@pytest.mark.slow
def test_filters_read_the_first_layer_and_fold_the_deeper_ones(study, rendered):
    from reportgen.markdown import package_environment
    result = rendered["filters"]
    lenet, fc = result.variants
    conv1, conv2 = lenet.layers
    model = study.available[0].runs[0].load_model()
    norm = Normalization(**study.available[0].runs[0].metrics.normalization.model_dump())
    assert lenet.black == pytest.approx(-norm.mean / norm.std)
    w, b = model.featurizer.conv1.weight.detach().numpy(), model.featurizer.conv1.bias.detach().numpy()
    assert [f.index for f in conv1.readings] == list(range(6)) and conv2.readings == []
    for f in conv1.readings:
        assert f.sum == pytest.approx(float(w[f.index].sum()), abs=1e-6)
        assert f.flat_black == pytest.approx(lenet.black * float(w[f.index].sum()) + float(b[f.index]), abs=1e-5)
    assert conv1.relu_next and result.deeper
    assert fc.linear.output is False  # a hidden layer: its units are not the class scores
    text = package_environment().get_template("filters.md.j2").render(a=result, **shared._partial_context(study))
    assert "| Filter | Sum of weights |" in text and text.count("\n    | 5 | ") == 1
    assert '??? note "conv2: 16 filters of 6 × 5×5' in text and "Deeper filters look at several" in text
    assert "of the 6 give an output above 0.1" in text


@pytest.mark.slow
def test_a_one_filter_network_and_a_linear_classifier_are_read_in_words(study, rendered, tmp_path):
    from types import SimpleNamespace

    from reportgen.markdown import package_environment
    filters = module("filters")
    one = filters.FilterLayer(name="conv1", shape="1 × 1 × 5 × 5", out_channels=1, in_channels=1, kernel="5×5",
                              first=True, min=-1.0, max=1.0, figure=rendered["filters"].variants[0].layers[0].figure,
                              detail_figure=None, detail_out=0, detail_in=0, relu_next=True,
                              readings=[filters.read_filter(0, np.tile([-1.0, 0, 1, 2, 2], (5, 1))[None], 0.0,
                                                            -0.8)])
    linear = filters._linear_templates(writer(tmp_path), SimpleNamespace(name="lin", label="Linear"),
                                       build_model("fcnn", hidden=[]))
    assert linear.output and linear.units == 10
    result = filters.FiltersResult(basis=FIRST_SEED, variants=[
        filters.VariantFilters(name="tiny", label="Tiny", dataset="fashion-mnist", seeds=[0], seed=0, layers=[one],
                               black=-0.8),
        filters.VariantFilters(name="lin", label="Linear", dataset="fashion-mnist", seeds=[0], seed=0,
                               linear=linear, black=-0.8)])
    text = package_environment().get_template("filters.md.j2").render(a=result, **shared._partial_context(study))
    assert "Its weights sum to 20.00; divided by the sum of their absolute values that is 66.7%: not zero" in text
    assert ("the convolution outputs −0.80 × 20.00 + 0.00 (the pixel value times the weight sum, plus the bias) = "
            "−16.00, which the ReLU after it sets to zero") in " ".join(text.split())
    assert "it responds to vertical edges" in text and "Deeper filters" not in text
    assert "no hidden layer" in text and "its 10 class scores one weight per pixel" in text
    assert "hidden units" not in text


@pytest.mark.slow
def test_units_never_active_are_reported_after_a_relu_only(study, rendered):
    from reportgen.markdown import package_environment
    result = rendered["activation_stats"]
    lenet = result.variants[0]
    assert {layer.name for layer in lenet.layers if layer.dead is not None} == {
        "relu1", "relu2", "relu3", "relu4"}
    text = package_environment().get_template("activation_stats.md.j2").render(a=result,
                                                                               **shared._partial_context(study))
    conv1 = next(line for line in text.splitlines() if "| `conv1` |" in line)
    relu1 = next(line for line in text.splitlines() if "| `relu1` |" in line)
    assert conv1.endswith("| — |") and relu1.endswith(f"| {lenet.layers[1].dead} of 6 |")
