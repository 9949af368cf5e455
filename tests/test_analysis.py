"""The "inside the network" analyses on synthetic data: numbers checked against independent computations
(scikit-learn, direct forward passes, the real tensor shapes), hooks that never stay registered, the shift grid's
unshifted cell against the run's own test accuracy, caching outside results/, and every partial template."""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import classification_report, f1_score

from reportgen import analysis
from reportgen.analysis import (ANALYSES, AnalysisError, activation_statistics, architecture_table, capture_activations,
                                layer_table, output_size_rows, shift_accuracy_grid, shift_images)
from reportgen.config import ExperimentConfig
from reportgen.analyses import names as _names
ANALYSIS_NAMES = _names()
from reportgen.data import load_splits, provision
from reportgen.figures import FigureWriter
from reportgen.loader import Normalization, to_input
from reportgen.models import build_model, count_parameters
from reportgen.render import TEMPLATES, _environment, collect
from reportgen.store import Store, cache_key
from reportgen.train import run_files, train_run, versions
from tests.synthetic import write_idx_dataset

ZOO = [("lenet", {}), ("lenet", {"pooling": False}), ("lenet", {"dropout": 0.5}), ("tiny", {}), ("deep_pool", {}),
       ("fcnn", {}), ("fcnn", {"match_params_of": "lenet"}), ("fcnn", {"hidden": [64, 32]})]

EXPERIMENT = {
    "id": "inside", "title": "Inside the network", "dataset": "fashion-mnist",
    "model": {"name": "lenet"}, "training": {"epochs": 1, "batch_size": 64, "lr": 0.003},
    "profiles": {"smoke": {"seeds": [0, 1], "train_limit": 300, "eval_limit": 60}},
    "variants": [{"name": "lenet", "label": "LeNet"},
                 {"name": "fc", "label": "Fully connected", "model": {"name": "fcnn", "options": {"hidden": [32]}}}],
    "analyses": list(ANALYSIS_NAMES),
}


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Synthetic Fashion-MNIST provisioned in a fresh data root; REPORTGEN_CACHE pointing at a fresh cache."""
    root = tmp_path_factory.mktemp("analysis")
    mp = pytest.MonkeyPatch()
    write_idx_dataset(root / "idx", n_train=600, n_test=200)
    mp.setenv("REPORTGEN_DATA", str(root / "data"))
    mp.setenv("REPORTGEN_SKIP_CHECKSUM", "1")
    mp.setenv("REPORTGEN_OFFLINE", "1")
    mp.setenv("REPORTGEN_CACHE", str(root / "cache"))
    mp.delenv("REPORTGEN_SHIFT_IMAGES", raising=False)
    provision("fashion-mnist", root / "data", from_dir=root / "idx", skip_checksum=True, allow_download=False,
              allow_install=False, log=lambda *_: None)
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def study(workspace):
    """A two-variant, two-seed study of real runs (1 epoch each) written by Store.write_run and read back by
    render.collect, exactly as `reportgen render` sees them."""
    exp = ExperimentConfig.model_validate(EXPERIMENT)
    splits = load_splits("fashion-mnist")
    store = Store(workspace / "results")
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
    return collect(exp.id, exp, "smoke", store)


@pytest.fixture(scope="module")
def rendered(study, workspace):
    """Every analysis run once (figures into docs/), timed, with the results directory fingerprinted before."""
    before = _tree_digest(workspace / "results")
    writer = FigureWriter(directory=workspace / "docs" / study.id, link_prefix=study.id)
    started = time.perf_counter()
    out = {name: ANALYSES[name](study, writer) for name in study.config.analyses}
    return {"analyses": out, "writer": writer, "results_before": before, "seconds": time.perf_counter() - started}


def _test_images(run):
    splits = load_splits("fashion-mnist")
    labels, probs = run.predictions()
    return splits.test_images[:len(labels)], torch.from_numpy(labels), probs


# ---- registry and templates ---------------------------------------------------------------------------------
def test_every_declared_analysis_is_implemented_and_has_a_partial():
    assert set(ANALYSES) == set(ANALYSIS_NAMES)
    for name in ANALYSIS_NAMES:
        partial = TEMPLATES / "analyses" / f"{name}.md.j2"
        assert partial.exists(), f"no partial for {name}"
        assert "\n### " in "\n" + partial.read_text(), f"{partial.name} has no ### heading"


# ---- hooks ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,options", ZOO)
def test_hooks_capture_every_layer_with_its_real_shape_and_are_removed(name, options):
    model = build_model(name, **options).eval()
    x = torch.randn(3, 1, 28, 28)
    expected, h = {}, x
    with torch.no_grad():
        for layer_name, layer in layer_table(model):  # a manual pass, layer by layer
            h = layer(h)
            expected[layer_name] = h
        with capture_activations(model) as acts:
            logits = model(x)
    assert list(acts.outputs) == [n for n, _ in layer_table(model)]
    for layer_name, value in expected.items():
        assert acts[layer_name].shape == value.shape, layer_name
        assert torch.equal(acts[layer_name], value), layer_name
    assert torch.equal(acts.outputs[layer_table(model)[-1][0]], logits)
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_hooks_are_removed_when_the_forward_pass_fails():
    model = build_model("lenet").eval()
    with pytest.raises(RuntimeError):
        with capture_activations(model, layers=["conv1", "fc1"]):
            assert len(dict(layer_table(model))["conv1"]._forward_hooks) == 1
            model(torch.zeros(1, 3, 28, 28))  # wrong number of channels
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    with pytest.raises(ValueError, match="unknown layer 'conv9'"):
        with capture_activations(model, layers=["conv9"]):
            pass
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


# ---- architecture and output size ------------------------------------------------------------------------------
@pytest.mark.parametrize("name,options", ZOO)
def test_architecture_total_equals_count_parameters_and_shapes_are_real(name, options):
    model = build_model(name, **options)
    table = architecture_table(model)
    assert table["total"] == table["trainable"] == count_parameters(model)
    h = torch.zeros(1, 1, 28, 28)
    model.eval()
    with torch.no_grad():
        for row, (layer_name, layer) in zip(table["rows"], layer_table(model)):
            h = layer(h)
            assert row["name"] == layer_name and row["output_shape"] == list(h.shape[1:])
            assert row["parameters"] == sum(p.numel() for p in layer.parameters())
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


@pytest.mark.parametrize("name,options", ZOO)
def test_output_size_formula_matches_the_real_tensor_shapes(name, options):
    model = build_model(name, **options)
    rows = output_size_rows(model)
    convs = [n for n, m in layer_table(model) if isinstance(m, (torch.nn.Conv2d, torch.nn.MaxPool2d))]
    assert [r["name"] for r in rows] == convs
    h = torch.zeros(1, 1, 28, 28)
    with torch.no_grad():
        for layer_name, layer in layer_table(model.eval()):
            before = h.shape[-1]
            h = layer(h)
            row = next((r for r in rows if r["name"] == layer_name), None)
            if row is not None:
                assert row["n"] == before
                formula = (row["n"] + 2 * row["p"] - row["k"]) // row["s"] + 1
                assert row["out"] == formula == h.shape[-1] == row["actual"]


def test_output_size_of_lenet_is_the_textbook_chain():
    rows = output_size_rows(build_model("lenet"))
    assert [(r["name"], r["n"], r["k"], r["p"], r["s"], r["out"]) for r in rows] == [
        ("conv1", 28, 5, 2, 1, 28), ("pool1", 28, 2, 0, 2, 14), ("conv2", 14, 5, 0, 1, 10), ("pool2", 10, 2, 0, 2, 5)]
    assert r"\left\lfloor \frac{28 + 2 \cdot 2 - 5}{1} \right\rfloor + 1" in str(rows[0]["math"])


# ---- shifts -----------------------------------------------------------------------------------------------------
def test_zero_filled_and_wrapped_shifts_move_pixels_as_specified():
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(1, 256, size=(4, 28, 28), dtype=np.uint8))
    for dx, dy in [(0, 0), (4, 1), (-4, -1), (6, -6), (-3, 5)]:
        zero = shift_images(images, dx, dy, "zero").numpy()
        wrap = shift_images(images, dx, dy, "wrap").numpy()
        assert np.array_equal(wrap, np.roll(images.numpy(), (dy, dx), axis=(1, 2)))
        manual = np.zeros_like(images.numpy())
        src = images.numpy()
        for y in range(28):
            for x in range(28):
                if 0 <= y - dy < 28 and 0 <= x - dx < 28:
                    manual[:, y, x] = src[:, y - dy, x - dx]
        assert np.array_equal(zero, manual), (dx, dy)
        # No pixel of these images is black, so the two modes differ exactly where pixels came in from outside.
        came_in = np.ones((28, 28), dtype=bool)
        came_in[max(dy, 0):28 + min(dy, 0), max(dx, 0):28 + min(dx, 0)] = False
        assert np.array_equal((zero != wrap).any(0), came_in), (dx, dy)
    # With a black border wider than the shift, nothing wraps around and both modes are identical.
    framed = torch.zeros_like(images)
    framed[:, 8:20, 8:20] = images[:, 8:20, 8:20]
    assert torch.equal(shift_images(framed, 5, -6, "zero"), shift_images(framed, 5, -6, "wrap"))


def test_shift_grid_equal_modes_on_black_borders_and_counts_are_exact():
    model = build_model("tiny").eval()
    norm = Normalization(mean=0.3, std=0.3)
    rng = np.random.default_rng(1)
    images = torch.zeros(40, 28, 28, dtype=torch.uint8)
    images[:, 9:19, 9:19] = torch.from_numpy(rng.integers(0, 256, size=(40, 10, 10), dtype=np.uint8))
    labels = torch.from_numpy(rng.integers(0, 10, size=40))
    grid = shift_accuracy_grid(model, images, labels, norm, radius=2)
    assert np.array_equal(grid["zero"], grid["wrap"])  # the content never reaches the border
    with torch.no_grad():
        for iy, dy in enumerate(range(-2, 3)):
            for ix, dx in enumerate(range(-2, 3)):
                pred = model(to_input(shift_images(images, dx, dy, "zero"), norm)).argmax(1)
                assert grid["zero"][iy, ix] == int((pred == labels).sum())


def test_shift_grid_centre_equals_the_runs_test_accuracy(study, rendered, workspace):
    grid = rendered["analyses"]["shift_grid"]
    assert grid["radius"] == 6 and grid["shifts"] == 169
    for row, v in zip(grid["variants"], study.available):
        run = v.runs[0]
        assert row["center_pct"] == 100 * run.metrics["test_acc"] == row["test_acc_pct"]
        assert row["center_matches"] and row["test_size"] == run.metrics["test_size"] and not row["subset"]
        zero, wrap = np.array(row["zero"]), np.array(row["wrap"])
        assert zero.shape == wrap.shape == (13, 13)
        assert zero[6, 6] == wrap[6, 6]
        # Synthetic images have noise up to the border: wrapping brings back pixels, zero-filling black.
        assert not np.array_equal(zero, wrap)
        # Recount three cells directly from the model.
        images, labels, _ = _test_images(run)
        model, norm = run.load_model(), Normalization(**run.metrics["normalization"])
        with torch.no_grad():
            for dx, dy, mode in [(0, 0, "zero"), (4, 1, "zero"), (-6, 3, "wrap")]:
                pred = model(to_input(shift_images(images, dx, dy, mode).contiguous(), norm)).argmax(1)
                cell = (zero if mode == "zero" else wrap)[dy + 6, dx + 6]
                assert cell == pytest.approx(100 * float((pred == labels).float().mean()))
    curve = rendered["analyses"]["shift_curve"]
    for row, g in zip(curve["variants"], grid["variants"]):
        zero = np.array(g["zero"])
        assert row["points"][0]["zero_pct"] == zero[6, 6] and row["points"][0]["shifts"] == 1
        assert row["points"][1]["shifts"] == 8  # (±1, 0), (0, ±1), (±1, ±1): √2 rounds to 1
        assert row["points"][1]["zero_pct"] == pytest.approx(np.mean([zero[6 + dy, 6 + dx] for dx in (-1, 0, 1)
                                                                       for dy in (-1, 0, 1) if dx or dy]))


def test_shift_grid_is_cached_outside_results_and_checked_against_metrics(study, rendered, workspace, monkeypatch):
    cached = list((workspace / "cache" / "analysis").rglob("shift_grid-*.npz"))
    assert len(cached) == len(study.available)
    for path in cached:
        with np.load(path, allow_pickle=False) as z:
            assert {"zero", "wrap", "n"} <= set(z.files)

    def no_recompute(*args, **kwargs):
        raise AssertionError("the cached grid should have been used")

    monkeypatch.setattr(analysis, "shift_accuracy_grid", no_recompute)
    again = ANALYSES["shift_grid"](study, FigureWriter(directory=workspace / "docs2", link_prefix="x"))
    assert [r["zero"] for r in again["variants"]] == [r["zero"] for r in rendered["analyses"]["shift_grid"]["variants"]]
    run = study.available[0].runs[0]
    monkeypatch.setitem(run.metrics, "test_acc", run.metrics["test_acc"] + 1 / run.metrics["test_size"])
    with pytest.raises(AnalysisError, match="unshifted cell"):
        analysis.shift_grid_of(run)


def test_shift_single_matches_the_stored_predictions(study, rendered):
    single = rendered["analyses"]["shift_single"]
    index = single["image"]["index"]
    assert [(s["dx"], s["dy"]) for s in single["shifts"]] == [(0, 0), (4, 1), (-4, -1)]
    for row, v in zip(single["variants"], study.available):
        labels, probs = v.runs[0].predictions()
        classes = list(load_splits("fashion-mnist").classes)
        original = row["results"][0]
        assert original["predicted"] == classes[int(probs[index].argmax())]
        assert original["true_prob_pct"] == pytest.approx(100 * probs[index, labels[index]], abs=1e-4)
        assert original["correct"] == (int(probs[index].argmax()) == labels[index])


# ---- numbers from predictions ------------------------------------------------------------------------------------
def test_classification_report_equals_scikit_learn(study, rendered):
    report = rendered["analyses"]["report"]
    classes = list(load_splits("fashion-mnist").classes)
    for row, v in zip(report["variants"], study.available):
        labels, probs = v.runs[0].predictions()
        expected = classification_report(labels, probs.argmax(1), labels=list(range(10)), target_names=classes,
                                         output_dict=True, zero_division=0)
        assert row["raw"] == expected
        assert row["seed"] == v.runs[0].seed == 0
        for c in row["classes"]:
            assert (c["precision"], c["recall"], c["f1"], c["support"]) == (
                expected[c["name"]]["precision"], expected[c["name"]]["recall"], expected[c["name"]]["f1-score"],
                expected[c["name"]]["support"])
        assert row["accuracy"] == expected["accuracy"] == pytest.approx(v.runs[0].metrics["test_acc"])
        assert row["macro"]["f1"] == expected["macro avg"]["f1-score"]
        assert row["weighted"]["precision"] == expected["weighted avg"]["precision"]
        per_seed = [f1_score(y, p.argmax(1), average="macro", labels=list(range(10)), zero_division=0)
                    for y, p in (r.predictions() for r in v.runs)]
        assert row["macro_f1_seeds"]["n"] == 2 and row["macro_f1_seeds"]["mean"] == pytest.approx(np.mean(per_seed))


def test_confusion_rows_sum_to_class_support_and_pairs_are_the_largest(study, rendered):
    for row, v in zip(rendered["analyses"]["confusion"]["variants"], study.available):
        labels, probs = v.runs[0].predictions()
        counts = np.array(row["counts"])
        assert counts.sum() == len(labels)
        assert list(counts.sum(1)) == list(np.bincount(labels, minlength=10)) == row["support"]
        assert np.trace(counts) == int((probs.argmax(1) == labels).sum()) == len(labels) - row["errors"]
        normalised = np.array(row["normalised"])
        for i in range(10):
            if row["support"][i]:
                assert normalised[i].sum() == pytest.approx(1.0)
        both = counts + counts.T
        off = sorted((int(both[i, j]) for i in range(10) for j in range(i + 1, 10) if both[i, j]), reverse=True)
        assert [p["total"] for p in row["pairs"]] == off[:3]
        for p in row["pairs"]:
            i, j = row["classes"].index(p["a"]), row["classes"].index(p["b"])
            assert (p["a_as_b"], p["b_as_a"]) == (counts[i, j], counts[j, i])


def test_per_class_f1_is_the_mean_over_seeds(study, rendered):
    for row, v in zip(rendered["analyses"]["per_class_f1"]["variants"], study.available):
        per_seed = np.array([f1_score(y, p.argmax(1), labels=list(range(10)), average=None, zero_division=0)
                             for y, p in (r.predictions() for r in v.runs)])
        assert [c["f1"] for c in row["classes"]] == pytest.approx(list(per_seed.mean(0)))
        assert [c["min"] for c in row["classes"]] == pytest.approx(list(per_seed.min(0)))
        assert row["worst"]["f1"] == min(c["f1"] for c in row["classes"])


def test_misclassified_shows_only_mistakes_most_confident_first(study, rendered):
    for row, v in zip(rendered["analyses"]["misclassified"]["variants"], study.available):
        labels, probs = v.runs[0].predictions()
        assert row["errors"] == int((probs.argmax(1) != labels).sum())
        assert len(row["shown"]) == min(18, row["errors"])
        for s in row["shown"]:
            assert s["true"] != s["predicted"]
            assert s["confidence_pct"] == pytest.approx(100 * probs[s["index"]].max())
        confidences = [s["confidence_pct"] for s in row["shown"]]
        assert confidences == sorted(confidences, reverse=True)


# ---- activations ---------------------------------------------------------------------------------------------------
def test_activation_zero_fractions_match_a_direct_computation(study, rendered):
    for row, v in zip(rendered["analyses"]["activation_stats"]["variants"], study.available):
        run = v.runs[0]
        images, _, _ = _test_images(run)
        model = run.load_model()
        h = to_input(images, Normalization(**run.metrics["normalization"]))
        by_name = {layer["name"]: layer for layer in row["layers"]}
        assert list(by_name) == [n for n, _ in layer_table(model)]
        with torch.no_grad():
            for name, layer in layer_table(model):
                h = layer(h)
                stats = by_name[name]
                assert 0.0 <= stats["zero_pct"] / 100 <= 1.0
                assert stats["zero_pct"] == pytest.approx(100 * int((h == 0).sum()) / h.numel(), abs=1e-9)
                assert stats["max"] == pytest.approx(float(h.max()), rel=1e-6, abs=1e-6)
                assert stats["mean"] == pytest.approx(float(h.double().mean()), rel=1e-5, abs=1e-6)
                alive = (h != 0).flatten(2).any(2).any(0) if h.dim() == 4 else (h != 0).any(0)
                assert stats["dead"] == int((~alive).sum()) and stats["units"] == alive.numel()
        relus = [layer for layer in row["layers"] if layer["type"] == "ReLU"]
        assert relus == row["relu"] and relus
    assert all(len(m._forward_hooks) == 0 for v in study.available for m in analysis.load_model(v.runs[0]).modules())


def test_activation_statistics_over_batches_equal_one_pass():
    model = build_model("lenet").eval()
    images = torch.from_numpy(np.random.default_rng(2).integers(0, 256, size=(70, 28, 28), dtype=np.uint8))
    norm = Normalization(mean=0.3, std=0.3)
    small = activation_statistics(model, images, norm, batch=16)
    whole = activation_statistics(model, images, norm, batch=70)
    for key in ("count", "zeros", "units", "dead"):
        assert np.array_equal(small[key], whole[key]), key
    assert np.allclose(small["sum"], whole["sum"]) and np.array_equal(small["max"], whole["max"])


def test_feature_maps_one_figure_per_layer_and_an_overview(study, rendered, workspace):
    for row, v in zip(rendered["analyses"]["feature_maps"]["variants"], study.available):
        model = analysis.load_model(v.runs[0])
        assert [layer["name"] for layer in row["layers"]] == [n for n, _ in layer_table(model)]
        for layer in row["layers"]:
            assert (workspace / "docs" / layer["figure"].path).stat().st_size > 1000
            assert layer["figure"].alt
        assert row["overview"].path.endswith(f"features-{v.name}-overview.png")
        labels, _ = v.runs[0].predictions()
        assert [e["index"] for e in row["examples"]] == [int(np.flatnonzero(labels == c)[0])
                                                         for c in range(10) if (labels == c).any()]
        assert row["example"]["index"] == row["examples"][0]["index"]
    assert rendered["analyses"]["feature_maps"]["variants"][0]["layers"][-1]["kind"] == "logits"


def test_filters_show_every_convolution_and_fc_templates(study, rendered):
    rows = {r["name"]: r for r in rendered["analyses"]["filters"]["variants"]}
    assert [layer["name"] for layer in rows["lenet"]["layers"]] == ["conv1", "conv2"]
    assert rows["lenet"]["layers"][0]["detail_figure"] is None  # the first layer has one input channel
    assert rows["lenet"]["layers"][1]["detail_figure"] is not None
    assert rows["fc"]["layers"] == [] and rows["fc"]["linear"]["units"] == 32


def test_kernels_are_real_convolutions_of_a_test_image(study, rendered):
    k = rendered["analyses"]["kernels"]
    assert [x["name"] for x in k["kernels"]] == ["box blur", "outline", "horizontal lines", "vertical lines"]
    image = load_splits("fashion-mnist").test_images[k["image"]["index"]].numpy().astype(np.float64) / 255
    padded = np.pad(image, 1)
    for entry in k["kernels"]:
        w = np.array(entry["weights"])
        out = np.array([[np.sum(padded[i:i + 3, j:j + 3] * w) for j in range(28)] for i in range(28)])
        assert entry["out_min"] == pytest.approx(out.min(), abs=1e-5)
        assert entry["out_max"] == pytest.approx(out.max(), abs=1e-5)
    assert k["output_size"] == k["size"] == 28


# ---- the whole render: figures, partials, caches, results untouched -----------------------------------------------
def test_every_partial_renders_from_its_analysis(study, rendered, workspace):
    env = _environment()
    source = "\n".join(f'{{% include "analyses/{name}.md.j2" %}}' for name in ANALYSIS_NAMES)
    text = env.from_string(source).render(analyses=rendered["analyses"], study=study, exp=study.config)
    assert text.count("\n### ") + text.startswith("### ") == len(ANALYSIS_NAMES)
    links = [line.split("](")[1].rstrip(")") for line in text.splitlines() if line.strip().startswith("![")]
    assert len(links) == len(rendered["writer"].written) and links
    for link in links:
        assert (workspace / "docs" / link).exists(), link
    assert "LeNet" in text and "Fully connected" in text
    assert "None" not in text and "nan" not in text.lower().replace("nanosecond", "")


def test_render_never_writes_results_and_second_pass_reuses_every_figure(study, rendered, workspace):
    assert _tree_digest(workspace / "results") == rendered["results_before"]
    assert not list((workspace / "results").rglob("*.npz.tmp*"))
    writer = rendered["writer"]
    assert writer.drawn > 0
    first = {p: p.read_bytes() for p in writer.written}
    again = FigureWriter(directory=workspace / "docs" / study.id, link_prefix=study.id)
    started = time.perf_counter()
    for name in study.config.analyses:
        ANALYSES[name](study, again)
    warm = time.perf_counter() - started
    assert again.drawn == 0 and again.reused == len(again.written) == len(writer.written)
    assert {p: p.read_bytes() for p in again.written} == first
    assert _tree_digest(workspace / "results") == rendered["results_before"]
    assert warm < rendered["seconds"]


def test_figures_are_deterministic_without_the_cache(tmp_path):
    images = np.random.default_rng(3).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    paths = []
    for i in range(2):
        writer = FigureWriter(directory=tmp_path / str(i), link_prefix="p", cache_dir=None)
        fig = writer.shift_triptych(images, ["a", "b", "c"], title="t", name="shift")
        paths.append(tmp_path / str(i) / "shift.png")
        assert fig.path == "p/shift.png" and fig.alt
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_augmentation_gallery_is_seeded(study, rendered, workspace):
    gallery = rendered["analyses"]["augmentation_gallery"]
    assert [t["name"] for t in gallery["transforms"]] == [
        "rotation", "translation", "shear", "random crop", "horizontal flip", "vertical flip",
        "brightness / contrast", "perspective"]
    writer = FigureWriter(directory=workspace / "gallery", link_prefix="g", cache_dir=None)
    again = ANALYSES["augmentation_gallery"](study, writer)
    assert (workspace / "gallery" / "augmentation-torchvision.png").read_bytes() == \
        (workspace / "docs" / gallery["figure"].path).read_bytes()
    assert again["affine"]["source"] == "demo"
    assert json.dumps(again["affine"]["params"]) == json.dumps(gallery["affine"]["params"])


def test_precompute_fills_the_cache_that_render_reads(study, workspace, monkeypatch, tmp_path):
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "cache"))
    spent = analysis.precompute(study)
    assert sorted(spent) == sorted(str(v.runs[0].path) for v in study.available)
    assert len(list((tmp_path / "cache" / "analysis").rglob("*.npz"))) == 2 * len(study.available)

    def no_recompute(*args, **kwargs):
        raise AssertionError("precompute should have cached this")

    monkeypatch.setattr(analysis, "shift_accuracy_grid", no_recompute)
    monkeypatch.setattr(analysis, "activation_statistics", no_recompute)
    writer = FigureWriter(directory=tmp_path / "docs", link_prefix="x", cache_dir=None)
    for name in ("shift_grid", "shift_curve", "activation_stats"):
        ANALYSES[name](study, writer)


def test_shift_grid_on_a_subset_is_checked_against_the_stored_predictions(study, monkeypatch, tmp_path):
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REPORTGEN_SHIFT_IMAGES", "25")
    run = study.available[1].runs[0]
    grid = analysis.shift_grid_of(run)
    labels, probs = run.predictions()
    assert grid["n"] == 25 and grid["full"] == len(labels)
    assert grid["center"] == (probs[:25].argmax(1) == labels[:25]).mean()
    monkeypatch.setenv("REPORTGEN_SHIFT_IMAGES", "lots")
    with pytest.raises(AnalysisError, match="REPORTGEN_SHIFT_IMAGES"):
        analysis.shift_grid_of(run)


def test_missing_images_are_a_one_line_render_error(study, workspace, monkeypatch, tmp_path):
    from reportgen.render import RenderError, render_study
    monkeypatch.setenv("REPORTGEN_DATA", str(tmp_path / "empty"))
    exp = study.config.model_copy(update={"analyses": ["kernels"]})
    message = r"^inside: the analyses need the fashion-mnist images: .*reportgen data fetch"
    with pytest.raises(RenderError, match=message):
        render_study("inside", exp, "smoke", Store(workspace / "results"), tmp_path / "docs")


def test_profile_shift_images_applies_on_cpu_only_and_the_environment_wins(study, monkeypatch):
    quick = analysis.Study(id=study.id, config=study.config, profile="quick", variants=study.variants)
    assert study.config.profile("quick")["shift_images"] == 2000
    assert analysis.shift_images_limit(quick, torch.device("cpu")) == 2000
    assert analysis.shift_images_limit(quick, torch.device("cuda")) is None  # a GPU does the whole set in seconds
    assert analysis.shift_images_limit(study, torch.device("cpu")) == 200  # smoke
    assert analysis.shift_images_limit(None, torch.device("cpu")) is None
    monkeypatch.setenv("REPORTGEN_SHIFT_IMAGES", "7")
    assert analysis.shift_images_limit(quick, torch.device("cuda")) == 7
