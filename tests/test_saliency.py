"""The saliency analysis: Grad-CAM and input-gradient maps checked against hand-written autograd, the layer Grad-CAM
explains, the "share on the object" number, and compute() + partial on the trained synthetic study of
tests/test_analysis.py (a convolutional and a fully connected variant). The registry entry and why_not are tested
with every other analysis in tests/test_analysis.py."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reportgen.analyses import saliency
from reportgen.analyses._common import class_names, load_model, normalization
from reportgen.data import load_splits
from reportgen.figures import FigureWriter
from reportgen.loader import to_input
from reportgen.markdown import package_environment
from reportgen.models import build_model
from tests.conftest import EXPERIMENT

# The two-variant (LeNet, fully connected), two-seed study of real one-epoch runs, and each analysis computed once
# on it (figures into docs/<study id>/): the fixtures workspace, study and rendered of tests/conftest.py.
POST = EXPERIMENT["id"]


# ---- the maps ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,options,expected", [
    ("lenet", {}, "conv2"), ("lenet", {"pooling": False}, "conv2"), ("tiny", {}, "conv1"),
    ("deep_pool", {}, "conv6"), ("fcnn", {}, None)])
def test_gradcam_explains_the_last_conv2d(name, options, expected):
    model = build_model(name, **options)
    found = saliency.last_convolution(model)
    if expected is None:
        assert found is None
    else:
        assert found[0] == expected
        assert found[1] is getattr(model.featurizer, expected)


@pytest.mark.parametrize("name,options,expected,centres", [
    ("lenet", {}, "relu2", (4.5, 2.0)), ("lenet", {"batch_norm": True}, "relu2", (4.5, 2.0)),
    ("tiny", {}, "relu1", (2.0, 1.0)), ("deep_pool", {}, "tanh6", (1.5, 4.0))])
def test_gradcam_takes_the_rectified_block_output_and_knows_where_its_units_look(name, options, expected, centres):
    """Grad-CAM explains the last convolution after its activation; LeNet's relu2 units are centred on pixels 4.5,
    6.5, ..., 22.5 (conv1 5×5 padded keeps 0, the 2×2 pool moves it by 0.5 and doubles the jump, conv2 5×5 adds
    2 × 2)."""
    model = build_model(name, **options)
    assert saliency.gradcam_layer(model)[0] == expected
    assert saliency.unit_centres(model, expected) == centres
    assert saliency.gradcam_layer(build_model("fcnn")) is None


def test_a_unit_is_drawn_on_the_pixel_its_receptive_field_is_centred_on():
    one = torch.zeros(1, 1, 10, 10)
    one[0, 0, 1, 8] = 1.0
    placed = saliency.align_to_input(one, 4.5, 2.0, 28)[0, 0]
    assert placed.shape == (28, 28)
    # the centre is (6.5, 20.5): the four pixels around it each get (1 − 1/4)² of the unit's value, nothing more
    torch.testing.assert_close(placed[6:8, 20:22], torch.full((2, 2), 0.5625))
    assert placed.max() == pytest.approx(0.5625)
    assert placed[:, :19].abs().max() == 0 and placed[:5].abs().max() == 0  # nothing at or beyond the neighbours'
    edge = torch.zeros(1, 1, 10, 10)
    edge[0, 0, :, 9] = 1.0  # the last column of units (centres at pixel 22.5): the columns after it take its value
    torch.testing.assert_close(saliency.align_to_input(edge, 4.5, 2.0, 28)[0, 0, :, 23:], torch.ones(28, 5))
    flat = saliency.align_to_input(torch.ones(1, 1, 10, 10), 4.5, 2.0, 28)
    torch.testing.assert_close(flat, torch.ones(1, 1, 28, 28))  # the border takes the edge units' value


def _dot_network() -> torch.nn.Module:
    """LeNet's geometry with identity kernels: conv1 5×5 padded, 2×2 max-pool, conv2 5×5 unpadded, ReLU; the logit
    is the sum of relu2. A bright dot lights the one relu2 unit whose receptive field is centred on it."""
    from collections import OrderedDict
    from torch import nn
    conv1, conv2 = nn.Conv2d(1, 1, 5, padding=2, bias=False), nn.Conv2d(1, 1, 5, bias=False)
    with torch.no_grad():
        for conv in (conv1, conv2):
            conv.weight.zero_()
            conv.weight[0, 0, 2, 2] = 1.0
    net = nn.Module()
    net.featurizer = nn.Sequential(OrderedDict(conv1=conv1, relu1=nn.ReLU(), pool1=nn.MaxPool2d(2), conv2=conv2,
                                               relu2=nn.ReLU()))
    net.classifier = nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc1=nn.Linear(100, 1)))
    with torch.no_grad():
        net.classifier.fc1.weight.fill_(1.0)
        net.classifier.fc1.bias.zero_()
    net.forward = lambda x: net.classifier(net.featurizer(x))
    return net.eval()


def test_gradcam_of_a_synthetic_network_peaks_on_the_dot_that_lit_it():
    """The alignment check on a network whose answer is known: a dot at pixel (6, 20) reaches relu2 unit (1, 8) and
    Grad-CAM's peak lands on the dot; stretching the 10 × 10 map over all 28 × 28 pixels would put it near (3.7,
    23.3), about three pixels off on each axis."""
    net = _dot_network()
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 6, 20] = 1.0
    cam, grid = saliency.gradcam_maps(net, "relu2", x, torch.tensor([0]))
    assert grid == (10, 10)
    rows, cols = torch.nonzero(cam[0] == cam[0].max(), as_tuple=True)
    assert all(abs(r - 6) <= 1 and abs(c - 20) <= 1 for r, c in zip(rows.tolist(), cols.tolist()))
    stretched = F.interpolate(torch.nn.functional.one_hot(torch.tensor(18), 100).float().view(1, 1, 10, 10),
                              size=(28, 28), mode="bilinear")[0, 0]
    far = torch.nonzero(stretched == stretched.max())[0].tolist()
    assert abs(far[0] - 6) + abs(far[1] - 20) >= 4  # what the old drawing did


def _batch(seed: int = 0):
    torch.manual_seed(seed)
    model = build_model("lenet").eval()
    x = torch.randn(4, 1, 28, 28)
    return model, x, torch.tensor([0, 3, 7, 9])


def test_saliency_is_the_absolute_gradient_of_the_true_logit():
    model, x, targets = _batch()
    maps = saliency.saliency_maps(model, x, targets)
    assert maps.shape == (4, 28, 28)
    assert torch.isfinite(maps).all() and (maps >= 0).all() and (maps > 0).any()
    xg = x.clone().requires_grad_(True)
    model(xg).gather(1, targets[:, None]).sum().backward()  # each image's logit depends on that image only
    torch.testing.assert_close(maps, xg.grad.abs()[:, 0])


def test_saliency_works_inside_inference_mode():
    model, x, targets = _batch()
    with torch.inference_mode():
        maps = saliency.saliency_maps(model, x, targets)
    torch.testing.assert_close(maps, saliency.saliency_maps(model, x, targets))


def test_gradcam_matches_a_hand_computed_grad_cam():
    model, x, targets = _batch(1)
    cam, grid = saliency.gradcam_maps(model, "relu2", x, targets)
    assert cam.shape == (4, 28, 28) and grid == (10, 10)  # LeNet: 28 -> pool 14 -> 5x5 conv, no padding -> 10
    assert torch.isfinite(cam).all() and (cam >= 0).all()
    kept = {}
    handle = model.featurizer.relu2.register_forward_hook(lambda m, i, out: kept.update(a=out))
    try:
        logits = model(x)
    finally:
        handle.remove()
    a = kept["a"]
    grads = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), a)[0]
    hand = torch.relu((grads.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
    assert (hand > 0).any()
    # unit (i, j) on pixel (4.5 + 2i, 4.5 + 2j): pixel 6 is three quarters of the way from unit 0's centre to unit
    # 1's, and row 3 lies above the first centre, so it takes row 0's values
    torch.testing.assert_close(cam[:, 3, 6], (0.25 * hand[:, 0, 0, 0] + 0.75 * hand[:, 0, 0, 1]).detach(),
                               rtol=1e-4, atol=1e-6)
    expected = saliency.align_to_input(hand, 4.5, 2.0, 28)[:, 0]
    torch.testing.assert_close(cam, expected.detach(), rtol=1e-4, atol=1e-6)


def test_inside_share_is_the_share_of_the_map_on_the_mask():
    maps = np.array([[[1.0, 3.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]], [[2.0, 2.0], [2.0, 2.0]]])
    mask = np.array([[[True, False], [False, False]]] * 3)
    share = saliency.inside_share(maps, mask)
    assert share[0] == pytest.approx(0.25)
    assert math.isnan(share[1])          # an all-zero map has no mass to place
    assert share[2] == pytest.approx(0.25)  # a flat map lands on the mask in proportion to its area


# ---- compute() on trained runs ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def computed(rendered):
    return rendered["saliency"]


@pytest.mark.slow
def test_compute_writes_one_figure_per_variant(rendered, computed):
    result = computed
    assert sorted(p.name for p in rendered.figures["saliency"]) == ["saliency-fc.png", "saliency-lenet.png"]
    for path in rendered.figures["saliency"]:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [v.figure.path for v in result.variants] == [f"{POST}/saliency-lenet.png", f"{POST}/saliency-fc.png"]


@pytest.mark.slow
def test_compute_shows_the_first_test_image_of_each_class_with_the_stored_prediction(study, computed):
    result = computed
    lenet, fc = result.variants
    assert (lenet.layer, lenet.grid, lenet.seed) == ("relu2", "10 × 10", 0)
    assert (fc.layer, fc.grid, fc.mean_gradcam_inside_pct) == (None, None, None)
    assert result.without_convolution == ["Fully connected"]
    for v, runs in zip(result.variants, (study.variant("lenet").runs, study.variant("fc").runs)):
        labels, probs = runs[0].predictions()
        first = [int(np.flatnonzero(labels == c)[0]) for c in range(10)]
        assert [img.index for img in v.images] == first
        assert [img.true for img in v.images] == [class_names("fashion-mnist")[c] for c in range(10)]
        assert v.correct == sum(int(probs[i].argmax() == labels[i]) for i in first)
        for img, i in zip(v.images, first):
            assert img.confidence_pct == pytest.approx(100 * probs[i].max())
            for share in (img.object_area_pct, img.saliency_inside_pct):
                assert 0 <= share <= 100
        assert 0 <= v.mean_saliency_inside_pct <= 100
    assert all(img.gradcam_inside_pct is not None for img in lenet.images)
    assert all(img.gradcam_inside_pct is None for img in fc.images)


@pytest.mark.slow
def test_compute_uses_training_preprocessing(study, computed):
    """The stored saliency maps are those of the run's model on to_input(images, run normalisation)."""
    result = computed
    run = study.variant("lenet").runs[0]
    idx = [img.index for img in result.variants[0].images]
    images = load_splits("fashion-mnist").test_images[idx]
    x = to_input(images, normalization(run))
    model = load_model(run)
    labels, probs = run.predictions()
    with torch.no_grad():
        np.testing.assert_allclose(torch.softmax(model(x), 1).numpy(), probs[idx], rtol=1e-4, atol=1e-5)
    maps = saliency.saliency_maps(model, x, torch.as_tensor(labels[idx]).long()).numpy()
    mask = images.numpy() > 0
    expected = 100 * saliency.inside_share(maps, mask)
    got = np.array([img.saliency_inside_pct for img in result.variants[0].images])
    np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.slow
def test_a_second_render_reads_the_maps_from_the_cache(study, workspace, computed, monkeypatch, tmp_path):
    def no_recompute(*args, **kwargs):
        raise AssertionError("the cached maps should have been used")

    monkeypatch.setattr(saliency, "saliency_maps", no_recompute)
    monkeypatch.setattr(saliency, "gradcam_maps", no_recompute)
    again = saliency.compute(study, FigureWriter(directory=tmp_path / study.id, link_prefix=study.id))
    assert [img.saliency_inside_pct for v in again.variants for img in v.images] == \
        [img.saliency_inside_pct for v in computed.variants for img in v.images]
    assert [img.gradcam_inside_pct for img in again.variants[0].images] == \
        [img.gradcam_inside_pct for img in computed.variants[0].images]
    cached = list((workspace / "cache" / "analysis").rglob("saliency-*.npz"))
    assert len(cached) == len(study.available)


@pytest.mark.slow
def test_partial_renders_the_numbers(study, computed):
    result = computed
    text = package_environment().get_template("saliency.md.j2").render(
        a=result, exp=study.config, profile="smoke", setup={}, summary=None, post=lambda *a: "")
    assert text.startswith("### ")
    assert f"]({POST}/saliency-lenet.png)" in text and f"]({POST}/saliency-fc.png)" in text
    assert "| LeNet | relu2 (10 × 10) |" in text
    assert "| Fully connected | none |" in text and "no Grad-CAM map" in text
    assert f"{result.variants[0].mean_saliency_inside_pct:.1f}" in text


def test_the_partial_places_grad_cam_on_its_units_centres_and_names_the_smoothing_cap(study, computed):
    import dataclasses
    lenet = dataclasses.replace(computed.variants[0], label_smoothing=0.1, target_pct=91.0)
    result = dataclasses.replace(computed, variants=[lenet, *computed.variants[1:]])
    text = package_environment().get_template("saliency.md.j2").render(
        a=result, exp=study.config, profile="smoke", setup={}, summary=None, post=lambda *a: "")
    assert lenet.centres == (4.5, 22.5) and "(pixels 4.5 to 22.5 for LeNet)" in text
    assert "1 − ε + ε/K = 91.0%, not 100%" in " ".join(text.split())
    assert computed.variants[0].label_smoothing == 0 and "not 100%" not in package_environment().get_template(
        "saliency.md.j2").render(a=computed, exp=study.config, profile="smoke", setup={}, summary=None,
                                 post=lambda *a: "")
