"""What every analysis module shares: the test images and models of a run (exactly as training saw them), the
on-disk cache of expensive numbers, forward hooks and layer tables.

Per-model analyses use the run of the variant's first seed; images always go through exactly the preprocessing of
training (:func:`reportgen.loader.to_input` with the run's own normalisation). Expensive derived numbers are cached
under ``.cache/analysis/<run cache key>/`` (``$REPORTGEN_CACHE`` overrides ``.cache``); nothing is ever written inside
``results/``.
"""
from __future__ import annotations

import contextlib
import json
import math
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
from markupsafe import Markup
from torch import nn

from .. import i18n
from ..loader import Normalization, to_input
from ..models import count_parameters, named_layers
from ..numbers import general
from ..settings import ANALYSIS_CACHE_VERSION, EVAL_BATCH, FIRST_SEED, IMAGE_SIZE  # noqa: F401 - re-exported
from ..fsutil import atomic_write
from ..store import Run, npz_bytes
from ..study import Study, VariantResults

log: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731


from . import AnalysisError  # noqa: E402,F401 - defined in the registry so callers need not import torch
from ._cache import cache_file, read_arrays, weights_digest  # noqa: E402,F401 - weights_digest re-exported


def first_run(variant: VariantResults) -> Run:
    """The run of the variant's first seed (seeds in the order the profile lists them)."""
    return variant.runs[0]


def study_dataset(study: Study) -> str:
    available = study.available
    return available[0].dataset if available else study.config.dataset


def class_names(dataset: str, num_classes: int | None = None) -> list[str]:
    """The dataset's class names as the edition being rendered writes them (:func:`reportgen.i18n.class_name`), for
    figures and tables alike; the class numbers when the model has another number of classes."""
    from ..data import DATASETS
    names = i18n.class_names(DATASETS[dataset].classes)
    if num_classes is not None and num_classes != len(names):
        names = [str(i) for i in range(num_classes)]
    return names


_SPLITS: "OrderedDict[tuple[str, str], Any]" = OrderedDict()


def dataset_splits(dataset: str):
    """``reportgen.data.load_splits(dataset)`` (checksum verified), read once per process and data root."""
    from ..data import DataError, data_root, load_splits
    key = (dataset, str(data_root().resolve()))
    if key not in _SPLITS:
        try:
            _SPLITS[key] = load_splits(dataset)
        except DataError as exc:
            raise AnalysisError(f"the analyses need the {dataset} images: {exc}") from None
        while len(_SPLITS) > 3:
            _SPLITS.popitem(last=False)
    return _SPLITS[key]


def run_test_set(run: Run) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact test images (uint8 [N, 28, 28]) and labels the run was evaluated on: the official test set in its
    order, truncated to the run's size; checked against the run's dataset checksum and stored labels."""
    splits = dataset_splits(run.config["dataset"])
    recorded = run.record.dataset_sha256
    if recorded and recorded != splits.checksum:
        raise AnalysisError(f"{run.path}: trained on other {run.config['dataset']} files (sha256 {recorded[:12]}..., "
                            f"now {splits.checksum[:12]}...); rerun `reportgen run --force` for this study")
    labels, _ = run.predictions()
    n = len(labels)
    images, y = splits.test_images[:n], splits.test_labels[:n]
    if len(y) != n or not np.array_equal(y.numpy(), labels):
        raise AnalysisError(f"{run.path}: predictions.npz labels do not match the first {n} test labels of "
                            f"{run.config['dataset']}; the results belong to other data")
    return images, y


def normalization(run: Run) -> Normalization:
    return Normalization(mean=run.metrics.normalization.mean, std=run.metrics.normalization.std)


_MODELS: "OrderedDict[tuple[str, str, str], nn.Module]" = OrderedDict()


def analysis_device(run: Run) -> torch.device:
    """Where the heavy passes (shift grid, activation statistics) run: the CPU, or CUDA for a run that was trained
    on CUDA when CUDA is available here, so the unshifted pass repeats the run's own evaluation on the same kind
    of device."""
    if run.record.device.startswith("cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def load_model(run: Run, device: torch.device | str = "cpu") -> nn.Module:
    """The run's best-validation model in eval mode (kept for reuse within one render)."""
    key = (str(run.path), weights_digest(run), str(device))
    if key not in _MODELS:
        _MODELS[key] = run.load_model(str(device)).eval()
        while len(_MODELS) > 16:
            _MODELS.popitem(last=False)
    return _MODELS[key]


def cached_arrays(run: Run, analysis: str, params: dict[str, Any],
                  compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``compute()``'s arrays, cached at ``.cache/analysis/<run cache key>/<analysis>-<params hash>.npz``.

    The hash covers the parameters, the exact weights (their SHA-256) and CACHE_VERSION, so retrained weights or a
    changed computation never reuse stale numbers. Written atomically; read with ``allow_pickle=False``."""
    path = cache_file(run, analysis, params)
    cached = read_arrays(path)  # None for a damaged file too: it is recomputed and replaced
    if cached is not None:
        return cached
    arrays = compute()
    try:
        atomic_write(path, npz_bytes(**arrays))
    except OSError as exc:  # a read-only or full disk costs time on the next render, nothing else
        log(f"analysis: could not cache {path}: {exc.strerror or exc}")
    return arrays


# ---- hooks --------------------------------------------------------------------------------------------------------
def layer_table(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every leaf layer in forward order with its short name (``conv1``, ``relu1``, ``fc3``); if two halves reuse a
    name, both halves' names are qualified (``featurizer.relu1``)."""
    layers = named_layers(model)
    names = [n for n, _ in layers]
    if len(set(names)) != len(names):
        layers = ([(f"featurizer.{n}", m) for n, m in model.featurizer.named_children()]
                  + [(f"classifier.{n}", m) for n, m in model.classifier.named_children()])
    return layers


class Activations:
    """What :func:`capture_activations` recorded during the last forward pass."""

    def __init__(self, names: list[str]):
        self.names = names
        self.outputs: dict[str, torch.Tensor] = {}
        self.input_shapes: dict[str, tuple[int, ...]] = {}
        self.output_shapes: dict[str, tuple[int, ...]] = {}

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.outputs[name]


@contextlib.contextmanager
def capture_activations(model: nn.Module, layers: list[str] | None = None, keep: bool = True,
                        on_output: Callable[[str, torch.Tensor], None] | None = None) -> Iterator[Activations]:
    """Forward hooks on the named layers (default: every layer of featurizer and classifier), removed on exit
    whatever happens. Each forward pass records input and output shapes and, with ``keep``, a copy of each output;
    ``on_output(name, tensor)`` sees every output as it is produced (for statistics over many batches)."""
    table = dict(layer_table(model))
    names = list(table) if layers is None else list(layers)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown layer {unknown[0]!r}; layers: {', '.join(table)}")
    acts = Activations(names)

    def make_hook(name: str):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            acts.input_shapes[name] = tuple(inputs[0].shape)
            acts.output_shapes[name] = tuple(output.shape)
            if on_output is not None:
                on_output(name, output.detach())
            if keep:
                acts.outputs[name] = output.detach().clone()
        return hook

    handles = []
    try:
        for name in names:
            handles.append(table[name].register_forward_hook(make_hook(name)))
        yield acts
    finally:
        for handle in handles:
            handle.remove()


@torch.inference_mode()
def forward_logits(model: nn.Module, images_uint8: torch.Tensor, norm: Normalization,
                   batch: int = EVAL_BATCH, channels_last: bool = False) -> torch.Tensor:
    """Logits for uint8 images, batched and preprocessed exactly as in training's evaluation (on the model's
    device). ``channels_last`` feeds a model converted with ``.to(memory_format=torch.channels_last)``: the same
    numbers up to float rounding, computed faster by the CPU's convolution kernels."""
    device = next(model.parameters()).device
    out = []
    for s in range(0, len(images_uint8), batch):
        x = to_input(images_uint8[s:s + batch].to(device).contiguous(), norm)
        out.append(model(x.contiguous(memory_format=torch.channels_last) if channels_last else x))
    return torch.cat(out) if out else torch.zeros(0, device=device)


def shape_text(shape: tuple[int, ...] | list[int]) -> str:
    return " × ".join(str(int(s)) for s in shape)


def _pair(v: Any) -> int:
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


def layer_details(module: nn.Module) -> str:
    """The key settings of a layer, as a reader would write them (in the edition being rendered)."""
    if isinstance(module, nn.Conv2d):
        k, s, p = _pair(module.kernel_size), _pair(module.stride), _pair(module.padding)
        return i18n.ngettext("%(in_)s → %(num)s channel, %(k)s×%(k)s kernel, stride %(s)s, padding %(p)s",
                             "%(in_)s → %(num)s channels, %(k)s×%(k)s kernel, stride %(s)s, padding %(p)s",
                             module.out_channels) % {"in_": module.in_channels, "num": module.out_channels, "k": k,
                                                     "s": s, "p": p}
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        k = _pair(module.kernel_size)
        return i18n._("%(k)s×%(k)s window, stride %(s)s, padding %(p)s") % {
            "k": k, "s": _pair(module.stride or module.kernel_size), "p": _pair(module.padding)}
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        size = _pair(module.output_size)
        message = (i18n._("each map → %(size)s×%(size)s (average)") if isinstance(module, nn.AdaptiveAvgPool2d)
                   else i18n._("each map → %(size)s×%(size)s (maximum)"))
        return message % {"size": size}
    if isinstance(module, nn.Linear):
        return f"{module.in_features} → {module.out_features}"
    if isinstance(module, nn.Dropout):
        return i18n._("p = %(p)s (training only)") % {"p": general(module.p)}
    if isinstance(module, nn.Flatten):
        return i18n._("C × H × W → one vector")
    return "—"


def _parameter_formula(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size
        bias = f" + {module.out_channels}" if module.bias is not None else ""
        return f"{module.out_channels}·{module.in_channels // module.groups}·{k[0]}·{k[1]}{bias}"
    if isinstance(module, nn.Linear):
        bias = f" + {module.out_features}" if module.bias is not None else ""
        return f"{module.out_features}·{module.in_features}{bias}"
    return ""


def multiply_adds(module: nn.Module, output_shape: tuple[int, ...] | list[int]) -> int:
    """Multiply-adds of one forward pass through ``module`` for one image: one per weight use of a convolution
    (each output value sums c_in/groups · k · k products) or a linear layer; biases, activations, pooling and batch
    normalisation (which folds into the convolution before it) are not counted, as is usual."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return math.prod(output_shape[1:]) * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return math.prod(output_shape[1:]) * module.in_features
    return 0


def layer_shapes(model: nn.Module, in_channels: int = 1, size: int = IMAGE_SIZE) -> Activations:
    """Every layer's input and output shapes, from one hooked eval-mode forward pass of a blank image (the
    model's training mode is restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), capture_activations(model, keep=False) as acts:
            model(torch.zeros(1, in_channels, size, size))
    finally:
        model.train(was_training)
    return acts


@dataclass
class LayerRow:
    """One leaf layer of a model as a reader reads it (:func:`architecture_table`)."""
    name: str
    part: str                    # featurizer or classifier
    type: str
    details: str                 # the layer's settings as a reader writes them
    output_shape: list[int]      # without the batch dimension
    output: str                  # the same, as "6 × 28 × 28"
    parameters: int
    formula: str                 # how the parameters add up ("" for a layer without any)
    macs: int = 0                # multiply-adds of one forward pass of one image (multiply_adds)


@dataclass
class ArchitectureTable:
    """A model layer by layer, from a hooked forward pass of one blank image."""
    input: str                   # the image's shape, "1 × 28 × 28"
    rows: list[LayerRow] = field(default_factory=list)
    total: int = 0               # the layers' parameters, added up
    trainable: int = 0           # count_parameters of the whole model
    macs: int = 0                # multiply-adds of one forward pass of one image, every layer added up


def architecture_table(model: nn.Module, in_channels: int = 1, size: int = IMAGE_SIZE) -> ArchitectureTable:
    """A hooked forward pass of one dummy image: every layer's type, settings, output shape and parameters."""
    halves = {id(m): "featurizer" for m in model.featurizer.children()}
    acts = layer_shapes(model, in_channels, size)
    rows = []
    for name, module in layer_table(model):
        params = sum(p.numel() for p in module.parameters() if p.requires_grad)
        rows.append(LayerRow(name=name, part=halves.get(id(module), "classifier"), type=type(module).__name__,
                             details=layer_details(module), output_shape=list(acts.output_shapes[name][1:]),
                             output=shape_text(acts.output_shapes[name][1:]), parameters=int(params),
                             formula=_parameter_formula(module), macs=multiply_adds(module, acts.output_shapes[name])))
    return ArchitectureTable(input=shape_text((in_channels, size, size)), rows=rows,
                             total=int(sum(r.parameters for r in rows)), trainable=int(count_parameters(model)),
                             macs=int(sum(r.macs for r in rows)))


def output_size_rows(model: nn.Module, in_channels: int = 1, size: int = IMAGE_SIZE) -> list[dict[str, Any]]:
    """floor((n + 2p − k) / s) + 1 for every convolution and pooling layer, from the module's own attributes, next to
    the size a real forward pass produces."""
    layers = [(n, m) for n, m in layer_table(model) if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))]
    if not layers:
        return []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), capture_activations(model, [n for n, _ in layers], keep=False) as acts:
            model(torch.zeros(1, in_channels, size, size))
    finally:
        model.train(was_training)
    rows = []
    for name, m in layers:
        n = int(acts.input_shapes[name][-1])
        k, p = _pair(m.kernel_size), _pair(m.padding)
        s = _pair(m.stride) if m.stride else k
        d = _pair(getattr(m, "dilation", 1))
        span = d * (k - 1) + 1  # the effective kernel size; k when dilation is 1
        ceil = bool(getattr(m, "ceil_mode", False))
        out = (math.ceil if ceil else math.floor)((n + 2 * p - span) / s) + 1
        actual = int(acts.output_shapes[name][-1])
        bracket = (r"\left\lceil", r"\right\rceil") if ceil else (r"\left\lfloor", r"\right\rfloor")
        latex = (rf"{bracket[0]} \frac{{{n} + 2 \cdot {p} - {span}}}{{{s}}} {bracket[1]} + 1 = "
                 rf"{bracket[0]} {n + 2 * p - span} / {s} {bracket[1]} + 1 = {out}")
        rows.append({"name": name, "type": type(m).__name__, "n": n, "k": k, "p": p, "s": s, "dilation": d,
                     "out": int(out), "actual": actual, "matches": int(out) == actual,
                     "channels": int(acts.output_shapes[name][1]), "math": Markup(rf"\({latex}\)")})
    return rows


# ---- helpers for the analyses -------------------------------------------------------------------------------------
def variant_head(v: VariantResults, run: Run | None = None) -> dict[str, Any]:
    head = {"name": v.name, "label": v.label, "dataset": v.dataset, "seeds": v.seeds}
    if run is not None:
        head["seed"] = run.seed
    return head


def model_specs(study: Study) -> list[dict[str, Any]]:
    """The distinct models of a study (name + options) with the labels of the variants that use each."""
    specs: dict[str, dict[str, Any]] = {}
    seeds = study.config.profile(study.profile).seeds if study.config.variants else []
    sources = ([(v.label or v.name, study.config.resolve(v, seeds[0], study.profile)["model"])
                for v in study.config.variants] if study.config.variants
               else [(study.config.model.name, {"name": study.config.model.name,
                                                "options": dict(study.config.model.options)})])
    for label, model in sources:
        key = json.dumps(model, sort_keys=True)
        specs.setdefault(key, {"model": model["name"], "options": model["options"], "variants": []})
        specs[key]["variants"].append(label)
    return list(specs.values())


def build_spec(spec: dict[str, Any]) -> nn.Module:
    from ..models import build_model
    torch.manual_seed(0)
    return build_model(spec["model"], **spec["options"]).eval()


def class_examples(labels: np.ndarray, num_classes: int) -> list[int]:
    """The index of the first test image of each class (classes absent from the set are skipped)."""
    out = []
    for c in range(num_classes):
        hits = np.flatnonzero(labels == c)
        if len(hits):
            out.append(int(hits[0]))
    return out


def pct(x: float) -> float:
    return 100.0 * float(x)


