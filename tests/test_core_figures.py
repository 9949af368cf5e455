"""The core figures' numbers: equivariance checks, a multi-channel convolution, an architecture diagram's stages."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reportgen.analyses import architecture_diagram, equivariance, multi_channel
from reportgen.models import build_model, count_parameters


def test_a_convolution_moves_with_the_image_and_pooling_only_by_whole_windows():
    image = F.pad(torch.rand(20, 20), (1, max(equivariance.SHIFTS) + 1))  # nothing leaves the frame
    sobel = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    one, _ = equivariance.check(image, sobel, 1)
    two, maps = equivariance.check(image, sobel, 2)
    assert one.conv_difference == two.conv_difference == 0  # f(Tx) = T f(x): equivariant
    assert one.conv_change > 0                                # but not invariant: f(Tx) ≠ f(x)
    assert one.pool_difference > 0 and two.pool_difference == 0 and two.pool_shift == 1
    # a stride-2 convolution halves a shift as pooling does: exact for 2 pixels, not for 1
    assert one.strided_difference > 0 and two.strided_difference == 0 and two.strided_shift == 1
    assert one.average_difference == pytest.approx(0, abs=1e-5)  # the global average does not move: invariant
    assert maps["pool"].shape == (image.shape[0] // 2, image.shape[1] // 2)


def test_shift_right_fills_with_zeros():
    x = torch.arange(1.0, 5.0).reshape(1, 4)
    assert equivariance.shift_right(x, 1).tolist() == [[0.0, 1.0, 2.0, 3.0]]
    assert equivariance.shift_right(x, 0).tolist() == x.tolist()


def test_one_output_channel_is_the_sum_of_its_slices_over_the_channels_plus_the_bias():
    torch.manual_seed(0)
    channels, slices = torch.rand(3, 9, 9), torch.rand(3, 3, 3)
    parts, whole = multi_channel.channel_parts(channels, slices, 0.25)
    torch.testing.assert_close(parts.sum(0) + 0.25, whole)
    by_hand = sum(F.conv2d(channels[c][None, None], slices[c][None, None], padding=1)[0, 0] for c in range(3))
    torch.testing.assert_close(parts.sum(0), by_hand)


def test_the_diagram_of_lenet_follows_its_layer_shapes():
    model = build_model("lenet", dropout=0.5)
    stages = architecture_diagram.stages(model)
    assert [s.shape_text for s in stages] == ["1 × 28 × 28", "6 × 28 × 28", "6 × 14 × 14", "16 × 10 × 10",
                                              "16 × 5 × 5", "400", "120", "84", "10"]
    assert stages[1].operation == "conv 5×5, 6 ch, pad 2 → ReLU"
    assert stages[6].operation == "linear 120 → ReLU → dropout 0.5"
    assert sum(s.parameters for s in stages) == count_parameters(model) and sum(s.macs for s in stages) == 416_520


@pytest.mark.parametrize("dpi", [100, 200])
def test_cell_labels_put_each_text_centred_on_its_cell_in_its_colour_and_size(dpi):
    """The heatmaps' numbers, drawn as glyph outlines: each label's ink lies centred on its cell, in its colour, as
    tall as a digit of that font size at the figure's dpi, and a wider number is wider."""
    import io

    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    from reportgen.figures import cell_labels

    fontsize = 30
    fig, ax = plt.subplots(figsize=(3, 1), dpi=dpi)
    fig.subplots_adjust(0, 0, 1, 1)
    ax.set(xlim=(-0.5, 2.5), ylim=(-0.5, 0.5))
    ax.axis("off")
    cell_labels(ax, [(0, 0, "8", "#ff0000"), (2, 0, "88", "#0000ff")], fontsize=fontsize)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    pixels = np.asarray(Image.open(buf).convert("RGB")).astype(int)
    red = (pixels[..., 0] > 150) & (pixels[..., 2] < 100)
    blue = (pixels[..., 2] > 150) & (pixels[..., 0] < 100)
    height, width = red.shape
    tolerance = dpi / 50
    for ink, centre_x in ((red, width / 6), (blue, width * 5 / 6)):
        ys, xs = np.nonzero(ink)
        assert abs((xs.min() + xs.max()) / 2 - centre_x) <= tolerance
        assert abs((ys.min() + ys.max()) / 2 - height / 2) <= tolerance
        # a digit of DejaVu Sans (matplotlib's font) is 0.73 of the font size tall; the font size is in points
        assert np.ptp(ys) + 1 == pytest.approx(0.73 * fontsize * dpi / 72, rel=0.08)
    assert np.ptp(np.nonzero(blue)[1]) > 1.8 * np.ptp(np.nonzero(red)[1])
