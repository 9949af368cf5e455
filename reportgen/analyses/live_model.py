"""Live model: the first-seed network of each variant, and of each measured exercise (unless the answers are hidden),
exported to ONNX, runs in the reader's browser.

For every variant the network of its first seed is exported with ``torch.onnx`` (the TorchScript exporter, a
pinned opset) into the post's folder, with training's preprocessing as the first nodes of the graph
(:func:`reportgen.loader.to_input` with the run's own stored normalisation, so the page feeds raw uint8 pixels and
cannot preprocess differently) and the outputs of the first two convolutions as extra graph outputs. The exported
graph is checked with the ``onnx`` package: its checker, and its reference evaluator against PyTorch on one test
image of each class. A network that cannot be exported (an operator ONNX lacks) or whose graph disagrees is left out
of the widget with a note; the render goes on.

Beside the models goes one JSON manifest per dataset of the study: the shipped test images (the first
``IMAGES_PER_CLASS`` of each class, uint8), the class names, the shift radius and each exported variant's file
name, seed, normalisation and feature-map shapes. The post links the manifest and every ONNX file, and
``docs/javascripts/live-model.js`` takes their URLs from those links (the site generator may move a post's files:
Material's blog moves its media files, not its .json) and runs the models with onnxruntime-web, vendored from npm
by :mod:`reportgen.site`; the page shifts an image exactly as the shift grid does
(:func:`reportgen.analyses._shift.shift_images`).
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from markupsafe import Markup
import numpy as np
import torch
from torch import nn

from .. import i18n
from ..figures import FigureWriter
from ..fsutil import atomic_write
from ..i18n import N_
from ..loader import Normalization, to_input
from ..markdown import markdown_text
from ..settings import FIRST_SEED, IMAGE_SIZE, SHIFT_RADIUS
from ..store import Run
from ..study import Study, VariantResults
from . import Analysis
from ._common import class_examples, class_names, first_run, layer_table, normalization, run_test_set, variant_head

ONNX_OPSET = 17          # supported by every onnxruntime-web of the last years; the page needs nothing newer
IMAGES_PER_CLASS = 5     # shipped test images: 5 per class, 50 for a ten-class dataset (39 KB of pixels)
FEATURE_CONVOLUTIONS = 2  # the convolutions whose outputs the page draws: the first two
# The largest difference in any class probability between the exported graph and PyTorch that still counts as the
# same network; the page is held to the same bound against PyTorch (tests/test_live_model.py).
PROBABILITY_TOLERANCE = 1e-4
FOLDER = "live-model"    # under the post's figure folder: served from the site beside the post's figures
INPUT = "pixels"
PROBABILITIES = "probabilities"


@dataclass
class FeatureMap:
    name: str                    # the convolution's layer name (conv1, conv2, ...), as in the feature maps analysis
    shape: list[int]             # channels, height, width


@dataclass
class LiveVariant:
    name: str
    label: str
    dataset: str
    seeds: list[int]
    seed: int                    # the seed whose network the page runs
    model: str                   # the ONNX file, as the post links it
    size_bytes: int
    mean: float                  # the run's stored normalisation, part of the graph
    std: float
    maps: list[FeatureMap]
    max_difference: float        # largest |probability(ONNX) - probability(PyTorch)| over the checked images


@dataclass
class LeftOut:
    name: str
    label: str
    seed: int
    reason: str                  # one line: why the network is not in the widget


@dataclass
class LiveDataset:
    dataset: str
    manifest: str                # the manifest, as the post links it
    classes: list[str]
    images: int                  # test images shipped with the page
    variants: list[LiveVariant]
    left_out: list[LeftOut]


@dataclass
class LiveModelResult:
    basis: str
    radius: int                  # the sliders move an image by up to this many pixels, as in the shift grid
    opset: int
    tolerance: float
    groups: list[LiveDataset] = field(default_factory=list)
    exercises: list[str] = field(default_factory=list)  # labels of the measured exercises whose networks run too
    # (exported: one that could not be is named among the left out, not here)

    @property
    def total_bytes(self) -> int:
        return sum(v.size_bytes for g in self.groups for v in g.variants)

    @property
    def exercise_list(self) -> str:
        """The measured exercises whose networks run too, as a list in the edition's words, each in italics (a
        label may hold a comma of its own: "*LeNet, twice as wide* and *LeNet with 3×3 kernels*")."""
        return Markup(i18n.and_list([f"*{markdown_text(label)}*" for label in self.exercises]))

    @property
    def ui_text(self) -> str:
        """The widget's words in the edition being rendered, as JSON for its ``data-text`` attribute (live-model.js
        has the English ones: empty for English, so the English page is unchanged)."""
        return ui_text()


def ui_text() -> str:
    lang = i18n.current()
    if lang == i18n.SOURCE_LANGUAGE:
        return ""
    _ = i18n._
    words = {
        "locale": i18n.locale_of(lang).replace("_", "-"),
        "test_image": _("test image {index}"), "picture": _("the picture: draw on it with the mouse or a finger"),
        "clear": _("Clear"), "draw_or": _("The picture: draw on it, or "), "zero": _("zero-filled"),
        "wrap": _("wrapped around"), "network": _("seed {seed}’s network"), "maps_of": _("Feature maps of "),
        "with_seed": _("{label} (seed {seed})"), "maps": _("{name}: {n} maps of {h} × {w} "),
        "channel": _("{name}, channel {c}"), "scale": _("from {low} to {high}"), "white": _(", white = 0"),
        "dark": _(", dark = 0"), "sees": _("What the networks see: "), "drawing": _("your drawing"),
        "moved": _(", moved dx = {dx}, dy = {dy}, "),
    }
    return json.dumps(words, ensure_ascii=False, separators=(",", ":"))


class ExportError(Exception):
    """A network that cannot become the page's live model (one line: why)."""


class _Exported(nn.Module):
    """What the page runs: uint8 pixels [N, 28, 28] -> (class probabilities [N, C], then the output of each of
    ``convs``). The preprocessing is training's own function with the run's normalisation, traced into the graph."""

    def __init__(self, model: nn.Module, norm: Normalization, convs: list[nn.Module]):
        super().__init__()
        self.model, self.norm, self.convs = model, norm, convs

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        maps: list[torch.Tensor] = []
        handles = [conv.register_forward_hook(lambda _m, _i, out: maps.append(out)) for conv in self.convs]
        try:
            logits = self.model(to_input(pixels, self.norm))
        finally:
            for handle in handles:
                handle.remove()
        return (torch.softmax(logits, 1), *maps)


def load_network(run: Run) -> nn.Module:
    """A fresh copy of the run's network, for the exporter alone: it traces with autograd, which refuses the
    parameters of a model first built inside ``torch.inference_mode`` (as the shared model cache of the other
    analyses may hold them), and it switches training modes back and forth."""
    return run.load_model("cpu")


def feature_convolutions(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The first ``FEATURE_CONVOLUTIONS`` convolutions in forward order, with their layer names."""
    return [(n, m) for n, m in layer_table(model) if isinstance(m, nn.Conv2d)][:FEATURE_CONVOLUTIONS]


def export_onnx(model: nn.Module, norm: Normalization,
                check_pixels: torch.Tensor) -> tuple[bytes, list[FeatureMap], float]:
    """The network as ONNX bytes (with training's preprocessing and the first convolutions' outputs), the feature
    maps' shapes, and the largest probability difference from PyTorch on ``check_pixels`` (uint8 [N, 28, 28]).
    Raises :class:`ExportError` when torch.onnx cannot export it or the graph does not compute what PyTorch does."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    convs = feature_convolutions(model)
    wrapper = _Exported(model, norm, [m for _, m in convs]).eval()  # export restores this (eval) mode afterwards
    names = [PROBABILITIES, *(n for n, _ in convs)]
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), _quiet_stdout():
            # the TorchScript exporter says it is the legacy one; it is the one that needs no onnxscript and writes
            # the same bytes for the same weights
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, (check_pixels[:1],), buffer, dynamo=False, opset_version=ONNX_OPSET,
                              input_names=[INPUT], output_names=names,
                              dynamic_axes={name: {0: "images"} for name in (INPUT, *names)})
        data = buffer.getvalue()
        graph = onnx.load_from_string(data)
        onnx.checker.check_model(graph)
        outputs = ReferenceEvaluator(graph).run(None, {INPUT: check_pixels.numpy()})
    except Exception as exc:  # noqa: BLE001 - any exporter failure leaves this one network out, with its reason
        raise ExportError(_first_line(exc)) from None
    with torch.inference_mode():
        expected = wrapper(check_pixels)
    difference = float(np.abs(outputs[0] - expected[0].numpy()).max())
    if not difference <= PROBABILITY_TOLERANCE:
        raise ExportError(f"the exported graph's probabilities differ from PyTorch's by {difference:.2g}")
    maps = [FeatureMap(name=n, shape=[int(s) for s in out.shape[1:]]) for n, out in zip(names[1:], expected[1:])]
    return data, maps, difference


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """The process's standard output sent to /dev/null: when an export fails, torch's exporter prints the whole
    traced graph there from C++ (past ``sys.stdout``), a hundred lines in the middle of a render; the reason it
    failed is in the exception."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no standard output at all: nothing to keep quiet
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def shipped_images(labels: np.ndarray, num_classes: int, per_class: int = IMAGES_PER_CLASS) -> list[int]:
    """The first ``per_class`` test images of each class, class by class."""
    return [int(i) for c in range(num_classes) for i in np.flatnonzero(labels == c)[:per_class]]


def compute(study: Study, figures: FigureWriter) -> LiveModelResult:
    folder = figures.directory / FOLDER  # beside the figures: the site serves both from the post's folder
    link = f"{figures.link_prefix}/{FOLDER}"
    groups: dict[str, list[VariantResults]] = {}
    for v in study.available:
        groups.setdefault(v.dataset, []).append(v)
    result = LiveModelResult(basis=FIRST_SEED, radius=SHIFT_RADIUS, opset=ONNX_OPSET, tolerance=PROBABILITY_TOLERANCE)
    for dataset, variants in groups.items():
        images, labels_t = run_test_set(first_run(variants[0]))
        labels = labels_t.numpy()
        _, probs = first_run(variants[0]).predictions()
        classes = class_names(dataset, probs.shape[1])
        picks = shipped_images(labels, len(classes))
        check = images[class_examples(labels, len(classes))].contiguous()
        live, left_out = [], []
        for v in variants:
            run = first_run(v)
            norm = normalization(run)
            try:
                data, maps, difference = export_onnx(load_network(run), norm, check)
            except ExportError as exc:
                left_out.append(LeftOut(name=v.name, label=v.label, seed=run.seed, reason=str(exc)))
                continue
            _write(folder / f"{v.name}.onnx", data)
            live.append(LiveVariant(**variant_head(v, run), model=f"{link}/{v.name}.onnx", size_bytes=len(data),
                                    mean=norm.mean, std=norm.std, maps=maps, max_difference=difference))
        manifest = {
            "dataset": dataset, "classes": classes, "size": IMAGE_SIZE, "radius": SHIFT_RADIUS,
            "input": INPUT, "output": PROBABILITIES,
            "images": {"indices": picks, "labels": labels[picks].tolist(),
                       "pixels": base64.b64encode(images[picks].numpy().astype(np.uint8).tobytes()).decode()},
            "variants": [{"name": v.name, "label": v.label, "seed": v.seed, "model": f"{v.name}.onnx",
                          "normalization": {"mean": v.mean, "std": v.std},
                          "maps": [{"name": m.name, "shape": m.shape} for m in v.maps]} for v in live],
        }
        _write(folder / f"{dataset}.json", json.dumps(manifest, ensure_ascii=False, sort_keys=True).encode())
        result.groups.append(LiveDataset(dataset=dataset, manifest=f"{link}/{dataset}.json", classes=classes,
                                         images=len(picks), variants=live, left_out=left_out))
    declared = {v.name for v in study.config.variants}  # the rest are measured exercises (post.py adds them)
    result.exercises = [v.label for g in result.groups for v in g.variants if v.name not in declared]
    return result


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` unless the file already holds exactly it (a second render rewrites nothing)."""
    if not path.is_file() or path.read_bytes() != data:
        atomic_write(path, data)


ANALYSIS = Analysis(
    name="live_model", title=N_("Live model"), compute=compute,
    summary=N_("Each variant's first-seed network, and each measured exercise's, runs in the reader's browser: test "
               "images or a drawing, shifted."),
    with_exercises=True,
)
