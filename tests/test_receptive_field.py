"""The receptive field analysis: r and j walked from the model's own layers, checked against a measurement.

The measurement is independent of the walk: a copy of the layers up to the one in question, with every convolution
weight positive and every bias zero, average pooling over the same window in place of max-pooling (a max-pool passes
a gradient to one input only, so its field would depend on the input), and the element-wise layers (activations,
batch norm, dropout) left out, as they cannot widen a field. The input pixels with a nonzero gradient of one output
unit are then exactly the pixels that unit can see.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import tests.test_analysis as shared
from reportgen import analyses
from reportgen.analyses import AnalysisError
from reportgen.analyses._common import layer_table
from reportgen.config import StudyConfig, load_study
from reportgen.figures import FigureWriter
from reportgen.markdown import package_environment
from reportgen.models import Net, build_model
from reportgen.post import post_link
from reportgen.study import Study

ROOT = Path(__file__).resolve().parent.parent
module, writer = shared.module, shared.writer
rf = module("receptive_field")

MODELS = [("lenet", {}), ("lenet", {"pooling": False}), ("lenet", {"pooling": False, "strided": True}),
          ("lenet", {"global_pool": True}), ("lenet", {"kernel_size": 3, "batch_norm": True}), ("tiny", {}),
          ("deep_pool", {}), ("deep_pool", {"activation": "relu"})]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The measurements are many tiny passes: one torch thread does them without waiting for a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def odd_model() -> Net:
    """A model no study declares: a dilated convolution, a padded average pool with stride 2, a stride-3
    convolution and a 3×3 adaptive pool — the walk must be right for any model, not only the zoo's."""
    featurizer = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 2, 3, dilation=2, padding=1)), ("relu1", nn.ReLU()),
        ("pool1", nn.AvgPool2d(3, stride=2, padding=1)), ("conv2", nn.Conv2d(2, 3, 4, stride=3)),
        ("pool2", nn.AdaptiveAvgPool2d(3))]))
    return Net(featurizer, nn.Sequential(OrderedDict([("flatten", nn.Flatten()), ("fc1", nn.Linear(27, 10))])))


def measurement_copy(model: nn.Module, upto: str) -> nn.Sequential:
    """The model's layers up to ``upto``, rebuilt for measuring fields (see the module's docstring). Each
    convolution keeps its kernel size, stride, padding and dilation but has one channel in and out: with every
    weight equal and positive, the pixels a unit sees do not depend on the number of channels, and one is cheap."""
    layers: list[nn.Module] = []
    for name, layer in layer_table(model):
        if isinstance(layer, nn.Conv2d):
            conv = nn.Conv2d(1, 1, layer.kernel_size, layer.stride, layer.padding, layer.dilation, bias=False)
            with torch.no_grad():
                conv.weight.fill_(1.0 / conv.weight.numel())
            layers.append(conv)
        elif isinstance(layer, nn.MaxPool2d):
            layers.append(nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding, ceil_mode=layer.ceil_mode))
        elif isinstance(layer, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            layers.append(layer)
        if name == upto:
            return nn.Sequential(*layers).double()
    raise KeyError(upto)


def measured_field(model: nn.Module, layer: str, size: int, unit: int | None = None) -> tuple[int, float, int]:
    """(side of the field, its centre, the output map's size) of unit (unit, unit) of channel 0 of ``layer``, from
    the gradient on a ``size`` × ``size`` input of ones; the unit in the middle of the map by default."""
    x = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    out = measurement_copy(model, layer)(x)
    unit = out.shape[-1] // 2 if unit is None else unit
    out[0, 0, unit, unit].backward()
    seen = (x.grad[0, 0] != 0).numpy()
    rows, cols = np.flatnonzero(seen.any(1)), np.flatnonzero(seen.any(0))
    box = seen[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    # A square field; every pixel of it seen, unless a dilated kernel skips some (its field is its span).
    assert np.array_equal(rows, cols) and (box.all() or any(_dilated(model)))
    return int(cols.max() - cols.min() + 1), float(cols.min() + cols.max()) / 2, int(out.shape[-1])


def _dilated(model: nn.Module) -> list[str]:
    return [n for n, m in layer_table(model) if isinstance(m, nn.Conv2d) and m.dilation[0] > 1]


def _rows(model: nn.Module) -> list[dict]:
    return rf.receptive_field_rows(model)


def test_the_analysis_needs_neither_training_nor_a_convolution():
    a = analyses.get("receptive_field")
    assert (a.needs_training, a.needs_convolution, a.precompute) == (False, False, None)
    assert "receptive_field" in load_study(ROOT / "experiments" / "tiny.yaml").analyses


# ---- the walk, against numbers worked by hand ------------------------------------------------------------------
def test_lenet_fields_by_hand():
    # conv1 5x5 pad 2 (28 -> 28): r = 5, j = 1; pool1 2x2 s2: r = 5 + 1*1 = 6, j = 2; conv2 5x5: r = 6 + 4*2 = 14,
    # j = 2; pool2: r = 14 + 1*2 = 16, j = 4.
    rows = _rows(build_model("lenet"))
    assert [(r["name"], r["size"], r["r"], r["j"]) for r in rows] == [
        ("conv1", 28, 5, 1), ("pool1", 14, 6, 2), ("conv2", 10, 14, 2), ("pool2", 5, 16, 4)]
    assert not any(r["whole_image"] for r in rows)
    assert str(rows[2]["math"]) == r"\(r = 6 + (5 - 1) \cdot 2 = 14, \quad j = 2 \cdot 1 = 2\)"


def test_strided_lenet_and_global_pooling_by_hand():
    strided = _rows(build_model("lenet", pooling=False, strided=True))
    # conv1 5x5 s2 pad 2 (28 -> 14): r = 5, j = 2; conv2 5x5 s2 (14 -> 5): r = 5 + 4*2 = 13, j = 4.
    assert [(r["name"], r["size"], r["r"], r["j"]) for r in strided] == [("conv1", 14, 5, 2), ("conv2", 5, 13, 4)]
    gap = _rows(build_model("lenet", global_pool=True))
    # The global pool averages the 5x5 map: a 5-unit window, r = 16 + 4*4 = 32 >= 28: the whole image.
    assert [(r["name"], r["k"], r["size"], r["r"]) for r in gap][-1] == ("gap", 5, 1, 32)
    assert gap[-1]["whole_image"] and not gap[-2]["whole_image"]
    assert r"\quad j" not in str(gap[-1]["math"])  # one unit per map: no jump to state


def test_deep_pool_fields_by_hand():
    rows = _rows(build_model("deep_pool"))
    assert [(r["r"], r["j"]) for r in rows] == [(3, 1), (5, 1), (6, 2), (10, 2), (14, 2), (16, 4), (24, 4),
                                                (32, 4)]
    assert [r["whole_image"] for r in rows] == [False] * 7 + [True]  # conv6's middle unit sees pixels -2..29


# ---- the walk, against a measurement ----------------------------------------------------------------------------
@pytest.mark.parametrize("name,options", MODELS + [("odd", {})])
def test_fields_jumps_and_centres_equal_the_measured_gradient(name, options):
    model = odd_model() if name == "odd" else build_model(name, **options)
    rows = _rows(model)
    assert rows
    for row in rows:
        if row["type"].startswith("Adaptive"):
            continue  # its window depends on the input size: measured at 28 below
        side, centre, size = measured_field(model, row["name"], 64)  # large enough for no field to be cut off
        assert side == row["r"], row["name"]
        assert centre == pytest.approx(row["centre"] + (size // 2) * row["j"]), row["name"]
        _, next_centre, _ = measured_field(model, row["name"], 64, unit=size // 2 + 1)
        assert next_centre - centre == pytest.approx(row["j"]), row["name"]


@pytest.mark.parametrize("name,options", [("lenet", {"global_pool": True}), ("odd", {})])
def test_adaptive_pools_are_measured_at_the_image_size(name, options):
    model = odd_model() if name == "odd" else build_model(name, **options)
    row = _rows(model)[-1]
    side, centre, size = measured_field(model, row["name"], 28)
    assert size == row["size"]
    if row["whole_image"]:
        assert side == 28  # the field, cut off by the image's border, is all of it
    else:
        assert side == row["r"] and centre == pytest.approx(row["centre"] + (size // 2) * row["j"])


def test_a_layer_that_resizes_without_a_window_is_an_error_not_a_wrong_number():
    featurizer = nn.Sequential(OrderedDict([("conv1", nn.Conv2d(1, 2, 3)), ("pad", nn.ZeroPad2d(2))]))
    model = Net(featurizer, nn.Sequential(OrderedDict([("flatten", nn.Flatten()),
                                                       ("fc1", nn.Linear(2 * 30 * 30, 10))])))
    with pytest.raises(AnalysisError, match="layer pad .ZeroPad2d. changes the map from 26 to 30 pixels"):
        _rows(model)


# ---- the analysis and its partial ---------------------------------------------------------------------------------
def _render(result) -> str:
    return package_environment().get_template("receptive_field.md.j2").render(a=result, post=post_link({}))


def test_pooling_study_tells_position_specific_from_global(tmp_path):
    exp = load_study(ROOT / "experiments" / "pooling.yaml")
    assert "receptive_field" in exp.analyses and analyses.why_not("receptive_field", exp) is None
    figures = writer(tmp_path)
    result = rf.compute(Study(id=exp.id, config=exp, profile="quick", variants=[]), figures)
    heads = {tuple(m.variants): (m.head, m.last, m.maps, m.positions, m.flat, m.reader) for m in result.models}
    assert heads == {("LeNet",): ("positions", "pool2", 16, 25, 400, "fc1"),
                     ("LeNet, strided",): ("positions", "conv2", 16, 25, 400, "fc1"),
                     ("LeNet + global average pooling",): ("global", "gap", 16, 1, 16, "fc1")}
    for m in result.models:
        assert m.figure is not None and (tmp_path / Path(m.figure.path).name).stat().st_size > 1000
    text = _render(result)
    assert text.startswith("### Receptive field") and text.count('=== "') == 3
    assert "`fc1` gives each feature\n    at each of the 25 positions its own weight: it is *position-specific*" in text
    assert "*position-specific*" in text and "*invariant*" in text and "*equivariant*" in text
    assert "| `pool2` (MaxPool2d) | 2, 2 | 16 × 5 × 5 | 16 × 16 | 4 |" in text
    assert "| `gap` (AdaptiveAvgPool2d) | 5, 5 | 16 × 1 × 1 | 32 × 32 (all of the image) | — |" in text
    assert "a 4-pixel shift moves every map by one unit" in text
    flat = " ".join(text.split())
    assert "*invariant* to shifts by multiples of 4 pixels if nothing reached the border" in flat
    assert "measured with shifted images, not promised by the architecture" in flat
    assert "None" not in text
    # what the prose reads: the field of one unit of the last map each classifier reads (pool2's, conv2's)
    assert result.seen_by("LeNet") == 16 and result.seen_by("LeNet, strided") == 13
    with pytest.raises(ValueError, match="seen_by\\('LeNet strided'\\): no variant .* labelled so"):
        result.seen_by("LeNet strided")


def test_a_model_without_convolution_says_so(tmp_path):
    exp = StudyConfig.model_validate({"id": "flat", "title": "Flat", "trains": False, "model": {"name": "fcnn"},
                                      "analyses": ["receptive_field"]})
    assert analyses.why_not("receptive_field", exp) is None  # it applies, and explains
    result = rf.compute(Study(id="flat", config=exp, profile="smoke", variants=[]), writer(tmp_path))
    m = result.models[0]
    assert (m.rows, m.head, m.figure, m.reader, m.positions) == ([], "none", None, "fc1", 784)
    text = _render(result)
    assert "No convolution or pooling: `fc1` gives each unit one weight per pixel (784)" in text
    assert not list(tmp_path.glob("*.png"))


def test_one_map_and_one_pixel_jumps_read_in_the_singular(tmp_path):
    exp = StudyConfig.model_validate({"id": "one", "title": "One", "trains": False, "model": {"name": "tiny"},
                                      "analyses": ["receptive_field"]})
    result = rf.compute(Study(id="one", config=exp, profile="smoke", variants=[]), writer(tmp_path))
    text = _render(result)
    assert "After `pool1`, the one map has 144 units" in text and "each of the 1 maps" not in text
    assert "conv1 sees 5 × 5 pixels, units 1 pixel apart; pool1 sees 6 × 6 pixels, units 2 pixels apart" in text


def test_draw_fields_is_cached_and_redrawn_byte_for_byte(tmp_path):
    layers = [("conv1", 5, 1, 0.0, 28), ("pool1", 6, 2, 0.5, 14), ("gap", 16, 4, 8.5, 1)]
    shared.check_draw_function("receptive_field", "fields", dict(layers=layers, image=28, title="t", name="f"),
                               tmp_path)


def test_editing_a_module_level_helper_redraws_the_figure(tmp_path, monkeypatch):
    """The figure cache is keyed on the drawing's whole module: draw_fields' legend calls ``_apart``, a helper outside
    its drawing code, and an edit there draws the figure again (it used to serve the stale PNG)."""
    source = Path(rf.__file__).read_text()
    helper = '", units %(n)s pixels apart"'
    assert source.count(helper) == 1
    same = shared.edited_copy(rf, source, tmp_path / "same.py", monkeypatch)
    edited = shared.edited_copy(rf, source.replace(helper, helper.replace("apart", "from each other")),
                                tmp_path / "edited.py", monkeypatch)
    layers = [("conv1", 5, 1, 0.0, 28), ("pool1", 6, 2, 0.5, 14)]
    cache = tmp_path / "cache"

    def draw(mod, folder: str) -> tuple[int, int, bytes]:
        figures = FigureWriter(directory=tmp_path / folder, link_prefix="p", cache_dir=cache)
        mod.draw_fields(figures, layers, image=28, title="t", name="f")
        return figures.drawn, figures.reused, (tmp_path / folder / "f.png").read_bytes()

    drawn, reused, first = draw(rf, "first")
    assert (drawn, reused) == (1, 0)
    drawn, reused, again = draw(same, "same")
    assert (drawn, reused) == (0, 1) and again == first
    drawn, reused, changed = draw(edited, "edited")
    assert (drawn, reused) == (1, 0) and changed != first  # the legend's words changed


@pytest.mark.parametrize("options, layer, border", [
    ({}, "pool2", 16),  # unit n sees pixels 4n - 2 to 4n + 13: the 3 × 3 inner units stay inside, 25 - 9 see past
    ({"pooling": False, "global_pool": True}, "conv2", 24 * 24 - 20 * 20)])  # n - 2 to n + 6: n = 2..21 inside
def test_the_units_whose_field_reaches_past_the_image_edge_are_counted(options, layer, border):
    from reportgen.analyses.receptive_field import FieldRow, receptive_field_rows
    from reportgen.models import build_model
    rows = {row["name"]: FieldRow(**row) for row in receptive_field_rows(build_model("lenet", **options))}
    assert rows[layer].border_units == border
