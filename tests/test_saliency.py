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
    cam, grid = saliency.gradcam_maps(model, model.featurizer.conv2, x, targets)
    assert cam.shape == (4, 28, 28) and grid == (10, 10)  # LeNet: 28 -> pool 14 -> 5x5 conv, no padding -> 10
    assert torch.isfinite(cam).all() and (cam >= 0).all()
    kept = {}
    handle = model.featurizer.conv2.register_forward_hook(lambda m, i, out: kept.update(a=out))
    try:
        logits = model(x)
    finally:
        handle.remove()
    a = kept["a"]
    grads = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), a)[0]
    hand = torch.relu((grads.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
    assert (hand > 0).any()
    expected = F.interpolate(hand, size=(28, 28), mode="bilinear")[:, 0]
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
    assert (lenet.layer, lenet.grid, lenet.seed) == ("conv2", "10 × 10", 0)
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
    assert "| LeNet | 0 | conv2 (10 × 10) |" in text
    assert "| Fully connected | 0 | none |" in text and "no Grad-CAM map" in text
    assert f"{result.variants[0].mean_saliency_inside_pct:.2f}" in text
