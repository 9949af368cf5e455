"""The machinery every analysis shares, on synthetic data: the registry (every module found by name, with its
partial and its flags), why_not, forward hooks that never stay registered, layer tables and the output-size formula
against real tensor shapes, the shift helpers (zero-filled and wrapped shifts, the shift grid's counts, its
unshifted cell against the run's own test accuracy, its cache outside results/), precompute as the pipeline runs it,
and every partial rendered from its analysis's result.

The trained study these tests and the other analysis test modules use (``workspace``, ``study``, ``rendered``) is
tests/conftest.py's: one synthetic data root, one results store and one analysis cache per test process, trained
once and each analysis computed once."""
from __future__ import annotations

import dataclasses
import importlib
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from reportgen import analyses
from reportgen.analyses import _shift
from reportgen.analyses._common import (AnalysisError, architecture_table, capture_activations, layer_table,
                                        output_size_rows)
from reportgen.analyses._shift import shift_accuracy_grid, shift_grid_of, shift_images, shift_images_limit
from reportgen.config import StudyConfig, load_study
from reportgen.context import setup
from reportgen.figures import FigureWriter
from reportgen.loader import Normalization, to_input
from reportgen.markdown import package_environment
from reportgen.models import build_model, count_parameters
from reportgen.pipeline import precompute
from reportgen.post import post_link, render_study
from reportgen.summary import summary
from reportgen.store import Store
from reportgen.study import RenderError, Study
from tests.conftest import EXPERIMENT, SHARED as _SHARED, tree_digest as _tree_digest

ROOT = Path(__file__).resolve().parent.parent
ZOO = [("lenet", {}), ("lenet", {"pooling": False}), ("lenet", {"dropout": 0.5}), ("tiny", {}), ("deep_pool", {}),
       ("fcnn", {}), ("fcnn", {"match_params_of": "lenet"}), ("fcnn", {"hidden": [64, 32]})]

# What each analysis of this list declares (the registry's flags), written out so that a changed flag is a failing
# test. An analysis added later is checked by every test that iterates the registry, except for these flags.
NO_TRAINING = {"samples", "architecture", "architecture_diagram", "output_size", "kernels", "augmentation_gallery",
               "multi_channel", "equivariance"}
NEEDS_CONVOLUTION = {"output_size", "filters", "saliency"}
PRECOMPUTED = {"activation_stats", "shift_grid", "shift_curve"}
KNOWN = {"activation_stats", "architecture", "architecture_diagram", "augmentation_gallery", "calibration",
         "confusion", "curves", "feature_maps", "filters", "kernels", "misclassified", "output_size", "per_class_f1", "report", "saliency",
         "samples", "shift_curve", "shift_grid", "shift_single", "multi_channel", "equivariance"}
DATA_ONLY = {"samples", "kernels", "augmentation_gallery", "multi_channel", "equivariance"}  # these show the data, not the variants' models

def _partial_context(study: Study) -> dict[str, Any]:
    """What reportgen.post gives every partial besides ``a``."""
    return {"exp": study.config, "profile": study.profile, "setup": setup(study.config, study, study.profile),
            "summary": summary(study), "post": post_link({study.id: study.config.title})}


# ---- registry and why_not -------------------------------------------------------------------------------------------
def test_the_registry_lists_every_analysis_module():
    names = analyses.names()
    modules = {p.stem for p in analyses.HERE.glob("*.py") if not p.name.startswith("_")}
    assert set(names) == modules and KNOWN <= set(names)
    assert list(names) == sorted(names)
    assert not any(n.startswith("_") for n in names)  # _common and _shift are helpers
    with pytest.raises(KeyError, match="did you mean 'confusion'"):
        analyses.get("confusoin")


@pytest.mark.parametrize("name", analyses.names())
def test_every_analysis_is_registered_with_its_partial_and_flags(name):
    a = analyses.get(name)
    mod = importlib.import_module(f"reportgen.analyses.{name}")
    assert a is mod.ANALYSIS and a.name == name and a.compute is mod.compute
    assert a.title and a.summary and "\n" not in a.summary and "\n" not in a.title
    assert a.template == f"{name}.md.j2"
    partial = analyses.HERE / a.template
    text = partial.read_text()
    assert text.startswith("### "), f"{partial.name} does not open with its ### heading"
    assert package_environment().get_template(a.template) is not None
    if a.precompute is not None:
        assert a.precompute is mod.precompute
    assert len(Path(mod.__file__).read_text().splitlines()) <= 400
    if name in KNOWN:
        assert a.needs_training == (name not in NO_TRAINING)
        assert a.needs_convolution == (name in NEEDS_CONVOLUTION)
        assert (a.precompute is not None) == (name in PRECOMPUTED)


def test_why_not_names_what_is_missing():
    mixed = StudyConfig.model_validate(EXPERIMENT)  # trains, and one variant (LeNet) has a convolution
    flat = StudyConfig.model_validate({**EXPERIMENT, "id": "flat", "model": {"name": "fcnn"},
                                            "variants": [{"name": "fc", "label": "Fully connected"}]})
    illustration = load_study(ROOT / "experiments" / "convolution.yaml")  # trains nothing; LeNet
    assert not illustration.trains
    for name in analyses.names():
        a = analyses.get(name)
        assert analyses.why_not(name, mixed, "smoke") is None, name
        reason = analyses.why_not(name, flat, "smoke")
        assert (reason is None) == (not a.needs_convolution), name
        if reason:
            assert "needs a convolution" in reason and "fcnn" in reason, reason
        reason = analyses.why_not(name, illustration)
        assert (reason is None) == (not a.needs_training), name
        if reason:
            assert "trains none" in reason, reason
    assert {n for n in analyses.names() if analyses.why_not(n, illustration) is None} >= NO_TRAINING


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
    assert table.total == table.trainable == count_parameters(model)
    h = torch.zeros(1, 1, 28, 28)
    model.eval()
    with torch.no_grad():
        for row, (layer_name, layer) in zip(table.rows, layer_table(model)):
            h = layer(h)
            assert row.name == layer_name and row.output_shape == list(h.shape[1:])
            assert row.parameters == sum(p.numel() for p in layer.parameters())
    assert len(table.rows) == len(layer_table(model))
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
                assert row["out"] == formula == h.shape[-1] == row["actual"] and row["matches"]


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
    with pytest.raises(ValueError, match="mode must be"):
        shift_images(images, 1, 1, "mirror")


def test_shift_grid_equal_modes_on_black_borders_and_counts_are_exact():
    model = build_model("tiny").eval()
    norm = Normalization(mean=0.3, std=0.3)
    rng = np.random.default_rng(1)
    images = torch.zeros(40, 28, 28, dtype=torch.uint8)
    images[:, 9:19, 9:19] = torch.from_numpy(rng.integers(0, 256, size=(40, 10, 10), dtype=np.uint8))
    labels = torch.from_numpy(rng.integers(0, 10, size=40))
    grid = shift_accuracy_grid(model, images, labels, norm, radius=2)
    assert grid["zero"].shape == (5, 5) and int(grid["n"]) == 40
    assert np.array_equal(grid["zero"], grid["wrap"])  # the content never reaches the border
    with torch.no_grad():
        for iy, dy in enumerate(range(-2, 3)):
            for ix, dx in enumerate(range(-2, 3)):
                pred = model(to_input(shift_images(images, dx, dy, "zero"), norm)).argmax(1)
                assert grid["zero"][iy, ix] == int((pred == labels).sum())


@pytest.mark.slow
def test_shift_grid_is_cached_outside_results_and_checked_against_metrics(study, rendered, workspace, monkeypatch):
    first = rendered["shift_grid"]
    cached = list((workspace / "cache" / "analysis").rglob("shift_grid-*.npz"))
    assert len(cached) == len(study.available)
    for path in cached:
        with np.load(path, allow_pickle=False) as z:
            assert {"zero", "wrap", "n"} <= set(z.files)
    assert not list((workspace / "results").rglob("*.npz.tmp*"))

    def no_recompute(*args, **kwargs):
        raise AssertionError("the cached grid should have been used")

    monkeypatch.setattr(_shift, "shift_accuracy_grid", no_recompute)
    again = analyses.get("shift_grid").compute(study, FigureWriter(directory=workspace / "docs2", link_prefix="x"))
    assert [r.zero for r in again.variants] == [r.zero for r in first.variants]
    run = study.available[0].runs[0]
    monkeypatch.setattr(run.metrics, "test_acc", run.metrics.test_acc + 1 / run.metrics.test_size)
    with pytest.raises(AnalysisError, match="unshifted cell"):
        shift_grid_of(run)


@pytest.mark.slow
def test_shift_grid_on_a_subset_is_checked_against_the_stored_predictions(study, monkeypatch, tmp_path):
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REPORTGEN_SHIFT_IMAGES", "25")
    run = study.available[1].runs[0]
    grid = shift_grid_of(run)
    labels, probs = run.predictions()
    assert grid.n == 25 and grid.full == len(labels) and grid.zero.shape == (13, 13)
    assert grid.center == (probs[:25].argmax(1) == labels[:25]).mean()
    assert grid.center_delta_images == 0
    monkeypatch.setenv("REPORTGEN_SHIFT_IMAGES", "lots")
    with pytest.raises(AnalysisError, match="REPORTGEN_SHIFT_IMAGES"):
        shift_grid_of(run)


def test_profile_shift_images_applies_on_cpu_only_and_the_environment_wins(monkeypatch):
    monkeypatch.delenv("REPORTGEN_SHIFT_IMAGES", raising=False)
    exp = StudyConfig.model_validate(EXPERIMENT)
    quick = Study(id=exp.id, config=exp, profile="quick", variants=[])
    study = Study(id=exp.id, config=exp, profile="smoke", variants=[])
    assert exp.profile("quick").shift_images == 2000
    assert shift_images_limit(quick, torch.device("cpu")) == 2000
    assert shift_images_limit(quick, torch.device("cuda")) is None  # a GPU does the whole set in seconds
    assert shift_images_limit(study, torch.device("cpu")) == 200  # smoke
    assert shift_images_limit(None, torch.device("cpu")) is None
    monkeypatch.setenv("REPORTGEN_SHIFT_IMAGES", "7")
    assert shift_images_limit(quick, torch.device("cuda")) == 7


# ---- precompute, as the pipeline runs it after training ------------------------------------------------------------
@pytest.mark.slow
def test_pipeline_precompute_fills_each_cache_once_and_skips_studies_that_train_nothing(study, workspace,
                                                                                        monkeypatch, tmp_path):
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REPORTGEN_SHIFT_IMAGES", "12")  # a small grid: this test is about the cache, not the numbers
    stats = importlib.import_module("reportgen.analyses.activation_stats")
    calls = {"grid": 0, "stats": 0}
    real_grid, real_stats = _shift.shift_accuracy_grid, stats.activation_statistics

    def counting(key, real):
        def call(*args, **kwargs):
            calls[key] += 1
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(_shift, "shift_accuracy_grid", counting("grid", real_grid))
    monkeypatch.setattr(stats, "activation_statistics", counting("stats", real_stats))
    # convolution trains nothing and has no results: precompute must not even collect it (that would warn)
    illustration = load_study(ROOT / "experiments" / "convolution.yaml")
    studies = {study.id: (None, study.config), illustration.id: (None, illustration)}
    messages = []
    precompute(studies, [study.id, illustration.id], "smoke", Store(workspace / "results"), messages.append)
    n, runs = len(study.available), sum(len(v.runs) for v in study.available)
    # shift_grid and shift_curve read the same grid: one computation per variant (its first seed), not two;
    # activation statistics are measured in every seed's network
    assert calls == {"grid": n, "stats": runs}
    assert len(list((tmp_path / "cache" / "analysis").rglob("shift_grid-*.npz"))) == n
    assert len(list((tmp_path / "cache" / "analysis").rglob("activation_stats-*.npz"))) == runs
    assert not list(tmp_path.rglob("*.png"))  # precompute draws nothing
    assert not any(m.startswith("warning") for m in messages), messages
    precompute(studies, [study.id], "smoke", Store(workspace / "results"), messages.append)
    assert calls == {"grid": n, "stats": runs}  # a second precompute finds everything cached


@pytest.mark.slow
def test_pipeline_precompute_turns_a_problem_into_a_warning(study, workspace, monkeypatch, tmp_path):
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REPORTGEN_DATA", str(tmp_path / "empty"))  # the images are gone
    messages = []
    precompute({study.id: (None, study.config)}, [study.id], "smoke", Store(workspace / "results"), messages.append)
    assert len(messages) == 1
    assert messages[0].startswith(f"warning: analyses of {study.id} not precomputed (")
    assert "`reportgen render` will compute them" in messages[0]
    assert not (tmp_path / "cache" / "analysis").exists()


# ---- every partial, rendered from its analysis's result -------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", analyses.names())
def test_every_partial_renders_from_its_result_and_links_its_figures(name, study, rendered):
    result = rendered[name]
    assert dataclasses.is_dataclass(result) and not isinstance(result, type)
    assert type(result).__name__ == "".join(part.capitalize() for part in name.split("_")) + "Result"
    env = package_environment()
    text = env.get_template(analyses.get(name).template).render(a=result, **_partial_context(study))
    assert text.startswith("### ") and sum(line.startswith("### ") for line in text.splitlines()) == 1
    links = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text)
    assert {rendered.directory.parent / link for link in links} == set(rendered.figures[name]), name
    for link in links:
        assert link.startswith(f"{study.id}/") and (rendered.directory.parent / link).stat().st_size > 1000
    assert "None" not in text and "nan" not in text.lower().replace("nanosecond", "")
    if name in KNOWN - DATA_ONLY:
        assert "LeNet" in text and "Fully connected" in text, name


@pytest.mark.slow
def test_render_never_writes_results_and_a_second_pass_reuses_every_figure(study, rendered, workspace):
    rendered.all()
    writer = rendered.writer
    assert _tree_digest(workspace / "results") == _SHARED["results_before"]
    assert not list((workspace / "results").rglob("*.npz.tmp*"))
    assert writer.drawn > 0 and writer.drawn + writer.reused == len(writer.written)
    assert len(set(writer.written)) == len(writer.written)  # one file per figure
    first = {p: p.read_bytes() for p in writer.written}
    again = FigureWriter(directory=workspace / "docs" / study.id, link_prefix=study.id)
    started = time.perf_counter()
    for name in study.config.analyses:
        analyses.get(name).compute(study, again)
    warm = time.perf_counter() - started
    assert again.drawn == 0 and again.reused == len(again.written) == len(writer.written)
    assert {p: p.read_bytes() for p in again.written} == first
    assert _tree_digest(workspace / "results") == _SHARED["results_before"]
    assert warm < sum(rendered.seconds.values())


@pytest.mark.slow
def test_missing_images_are_a_one_line_render_error(study, workspace, monkeypatch, tmp_path):
    monkeypatch.setenv("REPORTGEN_DATA", str(tmp_path / "empty"))
    exp = study.config.model_copy(update={"analyses": ["kernels"]})
    message = r"^inside: the analyses need the fashion-mnist images: .*reportgen data fetch"
    with pytest.raises(RenderError, match=message):
        render_study("inside", exp, "smoke", Store(workspace / "results"), tmp_path / "docs")
    assert not (tmp_path / "docs" / "blog" / "posts" / "inside.md").exists()


# ---- helpers shared with tests/test_analyses_a.py and test_analyses_b.py -------------------------------------
def module(name: str):
    """An analysis module by name."""
    import importlib
    return importlib.import_module(f"reportgen.analyses.{name}")


def edited_copy(mod, text: str, path: Path, monkeypatch):
    """``text`` (an edited copy of ``mod``'s source) imported from ``path`` as another module of the package."""
    import importlib.util
    import sys
    path.write_text(text)
    name = f"reportgen.analyses._edited_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    copy = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, copy)
    spec.loader.exec_module(copy)
    return copy


def writer(directory: Path, cache: bool = False) -> FigureWriter:
    """A figure writer into ``directory``, with its own cache there when ``cache``."""
    return FigureWriter(directory=directory, link_prefix="post", cache_dir=(directory / ".cache") if cache else None)


def check_draw_function(name: str, method: str, kwargs: dict[str, Any], tmp_path: Path) -> None:
    """``draw_<method>`` of analysis ``name``: one PNG with a one-line alt text, cached, and byte for byte the same
    drawn again without the cache."""
    draw = getattr(module(name), f"draw_{method}")
    png = f"{kwargs['name']}.png"
    first = writer(tmp_path / "first", cache=True)
    fig = draw(first, **kwargs)
    assert fig.path == f"post/{png}" and fig.alt and "\n" not in fig.alt and not {"[", "]"} & set(fig.alt)
    assert (first.drawn, first.reused, first.written) == (1, 0, [tmp_path / "first" / png])
    data = (tmp_path / "first" / png).read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    again = FigureWriter(directory=tmp_path / "again", link_prefix="post", cache_dir=tmp_path / "first" / ".cache")
    assert draw(again, **kwargs) == fig and (again.drawn, again.reused) == (0, 1)
    fresh = writer(tmp_path / "fresh")  # no cache: drawn again, byte for byte what the cache held
    draw(fresh, **kwargs)
    assert (tmp_path / "again" / png).read_bytes() == (tmp_path / "fresh" / png).read_bytes() == data
