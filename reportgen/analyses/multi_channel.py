"""Convolution over several input channels, on a real image (needs no training).

A layer's input usually has several channels (conv2 of LeNet reads conv1's 6 maps). One output channel then has one
k × k slice of weights per input channel: each slice is slid over its own channel, and the per-channel results are
added, plus one bias: out = Σ_c x_c ⋆ w_c + b. Here the input channels are three maps made from a test image by
hand-made kernels (a blur and two Sobel edge kernels), the kind of maps a first layer produces; one three-slice
kernel combines them. The per-channel results and their sum come from ``torch.nn.functional.conv2d`` applied to one
channel at a time, and the sum is checked against the same function applied to all channels at once, as a layer
does."""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..figures import DIVERGING, TEXT_DARK, TEXT_LIGHT, WIDTH, Figure, FigureWriter, _frameless, _number_text
from ..i18n import N_
from ..study import Study
from . import Analysis
from .kernels import kernel_tex
from ._common import build_spec, dataset_splits, layer_table, model_specs, study_dataset

# The input channels: what three hand-made first-layer kernels make of the image
CHANNELS: list[tuple[str, list[list[float]]]] = [
    (N_("blur"), [[1 / 9] * 3] * 3),
    (N_("vertical edges"), [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
    (N_("horizontal edges"), [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
]
# One output channel's kernel: one 3×3 slice per input channel. The blurred channel's slice is its centre minus its
# neighbours (a soft outline); each edge channel's slice averages it along the edges' own direction.
SLICES: list[list[list[float]]] = [
    [[0, -0.25, 0], [-0.25, 1, -0.25], [0, -0.25, 0]],
    [[0, 1 / 3, 0], [0, 1 / 3, 0], [0, 1 / 3, 0]],
    [[0, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0, 0, 0]],
]
BIAS = 0.1
PADDING = 1


@dataclass
class ChannelPart:
    name: str                    # the input channel ("vertical edges")
    slice_weights: list[list[float]]
    part_min: float              # the range of that channel's contribution x_c ⋆ w_c
    part_max: float
    tex: str = ""                # the slice as an inline LaTeX matrix


@dataclass
class LayerExample:
    name: str                    # a layer of the study's model that reads several channels ("conv2")
    in_channels: int
    out_channels: int
    kernel: int
    weights: int                 # out · in · k · k
    parameters: int              # with one bias per output channel


@dataclass
class MultiChannelResult:
    index: int                   # the test image
    parts: list[ChannelPart]
    bias: float
    out_min: float
    out_max: float
    max_difference: float        # |Σ_c parts + b − conv2d over all channels at once|, the largest
    layers: list[LayerExample]   # the study's layers that read more than one channel
    figure: Figure


def channel_parts(channels: torch.Tensor, slices: torch.Tensor, bias: float,
                  padding: int = PADDING) -> tuple[torch.Tensor, torch.Tensor]:
    """[C, H, W] input and [C, k, k] slices -> ([C, H', W'] each channel's x_c ⋆ w_c, [H', W'] conv2d of all channels
    at once with the [1, C, k, k] kernel and the bias)."""
    parts = torch.stack([F.conv2d(channels[c][None, None], slices[c][None, None], padding=padding)[0, 0]
                         for c in range(len(channels))])
    whole = F.conv2d(channels[None], slices[None], torch.tensor([bias]), padding=padding)[0, 0]
    return parts, whole


def _layers(study: Study) -> list[LayerExample]:
    out = []
    for spec in model_specs(study):
        for name, m in layer_table(build_spec(spec)):
            if isinstance(m, nn.Conv2d) and m.in_channels > 1 and all(x.name != name for x in out):
                k = int(m.kernel_size[0])
                weights = m.out_channels * (m.in_channels // m.groups) * k * k
                out.append(LayerExample(name=name, in_channels=m.in_channels, out_channels=m.out_channels, kernel=k,
                                        weights=weights, parameters=weights + (m.out_channels if m.bias is not None
                                                                               else 0)))
    return out


def compute(study: Study, figures: FigureWriter, index: int = 0) -> MultiChannelResult:
    splits = dataset_splits(study_dataset(study))
    image = splits.test_images[index].float() / 255
    first = torch.tensor([w for _, w in CHANNELS], dtype=torch.float32)[:, None]
    channels = F.conv2d(image[None, None], first, padding=PADDING)[0]
    slices = torch.tensor(SLICES, dtype=torch.float32)
    parts, whole = channel_parts(channels, slices, BIAS)
    summed = parts.sum(0) + BIAS
    figure = draw_multi_channel(figures, channels.numpy(), slices.numpy(), parts.numpy(), summed.numpy(),
                                [n for n, _ in CHANNELS], BIAS)
    return MultiChannelResult(
        index=index, bias=BIAS, out_min=float(summed.min()), out_max=float(summed.max()),
        parts=[ChannelPart(name=n, slice_weights=w, part_min=float(p.min()), part_max=float(p.max()), tex=kernel_tex(w))
               for (n, _), w, p in zip(CHANNELS, SLICES, parts)],
        max_difference=float((summed - whole).abs().max()), layers=_layers(study), figure=figure)


def draw_multi_channel(figures: FigureWriter, channels: np.ndarray, slices: np.ndarray, parts: np.ndarray,
                       out: np.ndarray, names: list[str], bias: float, name: str = "multi-channel") -> Figure:
    """One row per input channel: the channel, its 3×3 slice of the kernel (numbers shown), what that slice makes
    of it; on the right the sum of the rows plus the bias, the one output map. Maps share one colour scale."""
    def draw() -> plt.Figure:
        c = len(channels)
        fig, axes = plt.subplots(c, 4, figsize=(WIDTH, 1.75 * c + 0.5), layout="constrained")
        limit = float(max(np.abs(channels).max(), np.abs(parts).max(), np.abs(out).max())) or 1.0
        for row in range(c):
            axes[row, 0].imshow(channels[row], cmap=DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
            axes[row, 0].set_ylabel(f"channel {row + 1}\n{names[row]}", fontsize=8)
            axes[row, 1].imshow(slices[row], cmap=DIVERGING, vmin=-1, vmax=1)
            for (i, j), w in np.ndenumerate(slices[row]):
                axes[row, 1].text(j, i, _number_text(float(w)), ha="center", va="center", fontsize=8,
                                  color=TEXT_LIGHT if abs(w) > 0.6 else TEXT_DARK)
            axes[row, 2].imshow(parts[row], cmap=DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
            axes[row, 3].set_visible(row == c // 2)
        axes[0, 0].set_title("input channel", fontsize=9)
        axes[0, 1].set_title("its kernel slice", fontsize=9)
        axes[0, 2].set_title("slice ⋆ channel", fontsize=9)
        shown = axes[c // 2, 3].imshow(out, cmap=DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
        axes[c // 2, 3].set_title(f"sum + bias {bias:g}\n= one output map", fontsize=9)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
            _frameless(ax)
        fig.colorbar(shown, ax=list(axes[:, 3]), fraction=0.05, shrink=0.6).ax.tick_params(labelsize=7)
        fig.suptitle("One output channel of a convolution over three input channels", fontsize=10.5)
        return fig

    alt = (f"Convolution over {len(channels)} input channels ({', '.join(names)}): each row shows one input channel, "
           "its 3×3 slice of the kernel and what the slice makes of the channel; the sum of the rows plus the bias "
           f"{bias:g} is the single output map on the right. Red positive, blue negative, one scale for all maps")
    return figures.emit(name, alt, (channels, slices, parts, out, names, bias), draw)


ANALYSIS = Analysis(
    name="multi_channel", title="Convolution over several channels", compute=compute, needs_training=False,
    summary="One output channel computed from three input channels: each channel convolved with its own kernel "
            "slice, the results added, plus a bias.",
)
