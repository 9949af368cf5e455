"""Where the network looks: Grad-CAM on the last convolution and input-gradient saliency, for the first test image of
each class, per variant (the model of its first seed).

Both maps explain the logit of the image's TRUE class (not the predicted one), so a wrong prediction shows what
the network found, or failed to find, for the class it should have chosen.

* Grad-CAM (Selvaraju et al., 2017): the rectified output channels A_k of the last convolution's block (after its
  ReLU), each weighted by the mean gradient of the logit over that channel's positions, summed over channels and
  passed through a ReLU. Each unit of the coarse map (10 × 10 for LeNet's relu2) is placed on the input pixel its
  receptive field is centred on (pixels 4.5 to 22.5 for LeNet), interpolated bilinearly between those centres: the
  map is not stretched over all 28 × 28 pixels, which would draw it about 1.5 times too wide.
* Saliency (Simonyan et al., 2014): |∂ logit / ∂ pixel| of the normalised input, one value per pixel.

Attribution uses Captum (``captum.attr.LayerGradCam`` + ``LayerAttribution.interpolate`` and
``captum.attr.Saliency``) rather than pytorch-grad-cam (pip ``grad-cam``): Captum is the PyTorch project's own
interpretability library (published by the PyTorch team, BSD licence) and has both methods, Grad-CAM and plain
input gradients, behind one interface, while pytorch-grad-cam has Grad-CAM variants but no vanilla input-gradient
saliency. Captum also installs with nothing this project does not already have (torch, numpy, matplotlib, tqdm,
packaging), where pytorch-grad-cam pulls in OpenCV, ttach, Pillow and more. Either takes the target layer as a
plain ``nn.Module``; our models need no reshape transform in either.

Images go through exactly the preprocessing of training (:func:`reportgen.loader.to_input` with the run's own
normalisation). The predicted class and its confidence shown beside each image are the run's stored predictions,
the same numbers as its test accuracy. A fully connected variant has no convolution, so it gets the saliency map
only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from .. import i18n, numbers
from ..figures import IMAGE_CMAP, SEQUENTIAL, TEXT_DARK, WRONG, Figure, FigureWriter, _frameless
from ..i18n import N_
from ..loader import to_input
from ..models import ACTIVATIONS
from ..settings import FIRST_SEED, IMAGE_SIZE
from ..i18n import N_
from ..study import Study, label_smoothing
from . import Analysis
from ._common import (cached_arrays, class_examples, class_names, first_run, layer_table, load_model, normalization,
                      run_test_set)

CHOICE = N_("the first test image of each class (correctly classified or not)")
OBJECT_THRESHOLD = 0  # uint8 pixel value: MNIST-family backgrounds are exactly 0, so "> 0" is the drawn object
GAP = 2               # pixels of white between the tiles of a figure column


@dataclass
class ShownImage:
    index: int                        # position in the test set
    true: str
    predicted: str                    # the run's stored prediction
    confidence_pct: float             # its softmax probability, in %
    correct: bool
    object_area_pct: float            # share of the image's pixels that are > OBJECT_THRESHOLD
    saliency_inside_pct: float        # share of the saliency map's total on those pixels (NaN: an all-zero map)
    gradcam_inside_pct: float | None  # the same for Grad-CAM (None: no convolution; NaN: an all-zero map)


@dataclass
class VariantSaliency:
    name: str
    label: str
    dataset: str
    seed: int
    layer: str | None                 # the layer Grad-CAM explains, the last convolution's block (None: no convolution)
    grid: str | None                  # that layer's output size, e.g. "10 × 10", before placing it on the input
    figure: Figure
    centres: tuple[float, float] | None = None  # the pixels its first and last units are centred on (4.5, 22.5)
    label_smoothing: float = 0.0      # ε the network trained with; the confidence it aims at is target_pct
    target_pct: float = 100.0         # 1 − ε + ε/K, in %: why confidences stop near 91% with ε = 0.1, K = 10
    images: list[ShownImage] = field(default_factory=list)
    correct: int = 0
    mean_object_area_pct: float = float("nan")
    mean_saliency_inside_pct: float = float("nan")
    mean_gradcam_inside_pct: float | None = None


@dataclass
class SaliencyResult:
    basis: str = FIRST_SEED
    choice: str = CHOICE
    variants: list[VariantSaliency] = field(default_factory=list)
    without_convolution: list[str] = field(default_factory=list)  # labels of the variants with saliency only


def last_convolution(model: nn.Module) -> tuple[str, nn.Conv2d] | None:
    """The last ``nn.Conv2d`` in forward order with its short name (``conv2``), or None for a model without one."""
    convs = [(name, m) for name, m in layer_table(model) if isinstance(m, nn.Conv2d)]
    return convs[-1] if convs else None


def gradcam_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The layer Grad-CAM explains: the output of the last convolution's block, i.e. after the batch normalisation
    and activation that directly follow it (``relu2`` for LeNet), as Selvaraju et al. take the rectified feature
    maps; the convolution itself when nothing follows it. None for a model without a convolution."""
    layers = layer_table(model)
    convs = [i for i, (_, m) in enumerate(layers) if isinstance(m, nn.Conv2d)]
    if not convs:
        return None
    i = convs[-1]
    while i + 1 < len(layers) and isinstance(layers[i + 1][1], (nn.BatchNorm2d, *ACTIVATIONS.values())):
        i += 1
    return layers[i]


def unit_centres(model: nn.Module, layer: str) -> tuple[float, float]:
    """Where the units of ``layer`` look: the input pixel (0-based, pixel centres at integers) on which its first
    unit's receptive field is centred, and the pixels between neighbouring units' centres. Each windowed layer on
    the way (kernel k, stride s, padding p, dilation d) moves the first centre by ((d·(k − 1)) / 2 − p) times the
    jump so far and multiplies the jump by s. LeNet's conv2: 4.5 and 2, so its 10 × 10 units are centred on pixels
    4.5, 6.5, …, 22.5 of the 28 × 28 image, not spread over all of it."""
    start, jump = 0.0, 1.0
    for name, module in layer_table(model):
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s, p = (_first(getattr(module, a)) for a in ("kernel_size", "stride", "padding"))
            d = _first(getattr(module, "dilation", 1))
            start += (d * (k - 1) / 2 - p) * jump
            jump *= s
        elif isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten)):
            raise ValueError(f"{name}: no fixed receptive-field centres at or after a {type(module).__name__}")
        if name == layer:
            return start, jump
    raise ValueError(f"{layer}: not a layer of the model")


def _first(v: int | tuple[int, ...]) -> int:
    return int(v[0] if isinstance(v, tuple) else v)


def _span(model: nn.Module, layer: str, units: int) -> tuple[float, float]:
    start, jump = unit_centres(model, layer)
    return start, start + (units - 1) * jump


def align_to_input(cam: torch.Tensor, start: float, jump: float, size: int) -> torch.Tensor:
    """[N, C, h, w] maps on the units' grid -> [N, C, size, size] on the input's pixels: unit (i, j) sits on pixel
    (start + i·jump, start + j·jump), values between centres are bilinear, and pixels beyond the outermost centres
    take the nearest edge unit's value (their receptive fields still cover those pixels)."""
    h, w = cam.shape[-2:]
    pixels = torch.arange(size, dtype=torch.float32)

    def axis(n: int) -> torch.Tensor:  # grid_sample's coordinates: −1 at the first unit's centre, +1 at the last's
        return 2 * (pixels - start) / (jump * (n - 1)) - 1 if n > 1 else torch.zeros(size)

    ys, xs = torch.meshgrid(axis(h), axis(w), indexing="ij")
    grid = torch.stack([xs, ys], dim=-1).expand(cam.shape[0], size, size, 2)
    return torch.nn.functional.grid_sample(cam.float(), grid, mode="bilinear", padding_mode="border",
                                           align_corners=True)


def saliency_maps(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """|∂ logit[target] / ∂ x| for a normalised batch [N, 1, H, W]: [N, H, W], non-negative."""
    from captum.attr import Saliency
    with torch.inference_mode(False), torch.enable_grad():
        attr = Saliency(model).attribute(x.detach().clone().requires_grad_(True), target=targets, abs=True)
    return attr.detach().sum(1)  # one input channel: the sum only drops the channel axis


def gradcam_maps(model: nn.Module, layer: str, x: torch.Tensor,
                 targets: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """Grad-CAM of ``layer`` for the target logits: ReLU(Σ_k mean(∂ logit / ∂ A_k) · A_k), each unit's value placed on
    its receptive field's centre in the input (:func:`align_to_input`). Returns ([N, H, W] non-negative, the layer's
    own (h, w))."""
    from captum.attr import LayerGradCam
    module = dict(layer_table(model))[layer]
    with torch.inference_mode(False), torch.enable_grad():
        cam = LayerGradCam(model, module).attribute(x.detach().clone().requires_grad_(True), target=targets,
                                                    relu_attributions=True)
    cam = cam.detach()
    grid = (int(cam.shape[-2]), int(cam.shape[-1]))
    start, jump = unit_centres(model, layer)
    up = align_to_input(cam, start, jump, int(x.shape[-1]))
    return up.sum(1).clamp_min(0), grid  # bilinear weights are ≥ 0, so the clamp only removes rounding below 0


def inside_share(maps: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per map, the fraction of its total that lies on ``mask`` ([N, H, W] each); NaN for an all-zero map."""
    total = maps.reshape(len(maps), -1).sum(1)
    inside = (maps * mask).reshape(len(maps), -1).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / np.where(total > 0, total, 1), np.nan)


def _mean_pct(shares: np.ndarray) -> float:
    """Mean of the finite shares, in %; NaN when no map had any mass."""
    finite = shares[np.isfinite(shares)]
    return 100.0 * float(finite.mean()) if finite.size else float("nan")


def _scaled(maps: np.ndarray) -> np.ndarray:
    """Each map divided by its own maximum (an all-zero map stays zero): colours compare pixels of one image."""
    top = maps.reshape(len(maps), -1).max(1).reshape(-1, 1, 1)
    return np.divide(maps, top, out=np.zeros_like(maps), where=top > 0)


def _column(tiles: np.ndarray) -> np.ndarray:
    """[n, h, w] -> one [n·(h + GAP) − GAP, w] column, NaN between tiles (drawn white)."""
    n, h, w = tiles.shape
    out = np.full((n * (h + GAP) - GAP, w), np.nan)
    for k in range(n):
        out[k * (h + GAP):k * (h + GAP) + h] = tiles[k]
    return out


def compute(study: Study, figures: FigureWriter) -> SaliencyResult:
    result = SaliencyResult()
    for v in study.available:
        run = first_run(v)
        model = load_model(run)
        images, y = run_test_set(run)
        labels, probs = run.predictions()
        names = class_names(v.dataset, probs.shape[1])
        idx = class_examples(labels, probs.shape[1])
        conv = gradcam_layer(model)
        layer_name = conv[0] if conv else None

        def attribute() -> dict[str, np.ndarray]:
            x = to_input(images[idx], normalization(run))
            targets = y[idx].long()
            out = {"saliency": saliency_maps(model, x, targets).numpy().astype(np.float32)}
            if conv is not None:
                cam, grid = gradcam_maps(model, conv[0], x, targets)
                out.update(gradcam=cam.numpy().astype(np.float32), grid=np.array(grid))
            return out

        arrays = cached_arrays(run, "saliency", {"images": idx, "layer": layer_name, "target": "true class",
                                                 "placed": "receptive-field centres"}, attribute)
        raw = images[idx].numpy()
        mask = raw > OBJECT_THRESHOLD
        sal_inside = inside_share(arrays["saliency"], mask)
        cam_inside = inside_share(arrays["gradcam"], mask) if conv else None
        area = mask.reshape(len(idx), -1).mean(1)
        pred = probs[idx].argmax(1)
        shown = [ShownImage(index=i, true=names[labels[i]], predicted=names[pred[k]],
                            confidence_pct=100.0 * float(probs[i, pred[k]]), correct=bool(pred[k] == labels[i]),
                            object_area_pct=100.0 * float(area[k]), saliency_inside_pct=100.0 * float(sal_inside[k]),
                            gradcam_inside_pct=None if cam_inside is None else 100.0 * float(cam_inside[k]))
                 for k, i in enumerate(idx)]
        grid = arrays["grid"] if conv else None
        figure = draw_saliency(
            figures, raw, None if cam_inside is None else _scaled(arrays["gradcam"]), _scaled(arrays["saliency"]),
            [(s.true, s.predicted, s.confidence_pct, s.correct) for s in shown],
            title=i18n._("%(label)s: where the network looks (seed %(seed)s)") % {"label": v.label, "seed": run.seed}, name=f"saliency-{v.name}",
            layer=layer_name)
        result.variants.append(VariantSaliency(
            name=v.name, label=v.label, dataset=v.dataset, seed=run.seed, layer=layer_name,
            grid=None if grid is None else f"{int(grid[0])} × {int(grid[1])}", figure=figure, images=shown,
            centres=None if conv is None else _span(model, conv[0], int(grid[0])),
            label_smoothing=label_smoothing(run),
            target_pct=100.0 * (1 - label_smoothing(run) + label_smoothing(run) / probs.shape[1]),
            correct=sum(s.correct for s in shown), mean_object_area_pct=100.0 * float(area.mean()),
            mean_saliency_inside_pct=_mean_pct(sal_inside),
            mean_gradcam_inside_pct=None if cam_inside is None else _mean_pct(cam_inside)))
        if conv is None:
            result.without_convolution.append(v.label)
    return result


def draw_saliency(figures: FigureWriter, images: np.ndarray, gradcam: np.ndarray | None, saliency: np.ndarray,
                  rows: list[tuple[str, str, float, bool]], title: str, name: str, layer: str | None) -> Figure:
    """One row per class: the test image, Grad-CAM over it (when there is a convolution), the saliency map; each
    map scaled to its own maximum. Row labels: true class, then the prediction (red when wrong)."""
    saliency_heading = i18n._("saliency")
    columns = [(i18n._("image"), _column(images.astype(float)), None)]
    if gradcam is not None:
        columns.append((f"Grad-CAM, {layer}", _column(images.astype(float)), _column(gradcam)))
    columns.append((saliency_heading, _column(saliency), None))

    def draw() -> plt.Figure:
        n = len(rows)
        fig, axes = plt.subplots(1, len(columns), figsize=(1.45 + 0.95 * len(columns), 0.5 + 0.8 * n),
                                 squeeze=False)
        for ax, (heading, base, overlay) in zip(axes[0], columns):
            is_map = heading == saliency_heading
            cmap = plt.get_cmap(SEQUENTIAL if is_map else IMAGE_CMAP).with_extremes(bad="white")
            ax.imshow(base, cmap=cmap, vmin=0, vmax=1 if is_map else 255, interpolation="nearest")
            if overlay is not None:
                ax.imshow(overlay, cmap=plt.get_cmap(SEQUENTIAL).with_extremes(bad=(1, 1, 1, 0)), vmin=0, vmax=1,
                          alpha=0.55, interpolation="nearest")
            ax.set_title(heading, fontsize=8.5)
            ax.set_xticks([])
            ax.set_yticks([])
            _frameless(ax)
        step = IMAGE_SIZE + GAP
        first = axes[0][0]
        first.set_yticks([k * step + IMAGE_SIZE / 2 for k in range(n)],
                         [f"{true}\n→ {pred} {numbers.plain(conf)}%" for true, pred, conf, _ in rows], fontsize=7)
        first.tick_params(length=0)
        for tick, (_, _, _, correct) in zip(first.get_yticklabels(), rows):
            tick.set_color(TEXT_DARK if correct else WRONG)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        return fig

    wrong = [true for true, _, _, correct in rows if not correct]
    alt = i18n._("%(title)s. One row per class (%(classes)s): the first test image of the class%(gradcam)s and the "
                 "input-gradient saliency map, each map scaled to its own maximum (bright = large). Row labels give "
                 "the prediction; %(verdict)s") % {
        "title": title, "classes": ", ".join(r[0] for r in rows),
        "gradcam": i18n._(", Grad-CAM of %(layer)s laid over it") % {"layer": layer} if gradcam is not None else "",
        "verdict": (i18n._("wrong for %(classes)s") % {"classes": ", ".join(wrong)} if wrong
                    else i18n._("every shown image is classified correctly"))}
    return figures.emit(name, alt, (columns, rows, title), draw)


ANALYSIS = Analysis(
    name="saliency", title=N_("Where the network looks"), compute=compute, needs_training=True, needs_convolution=True,
    summary=N_("Grad-CAM on the last convolution and input-gradient saliency for one test image per class."),
)
