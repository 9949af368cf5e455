"""Numbers computed from cached results and saved weights (never by training).

Every analysis a study can ask for in its YAML (``analyses: [curves, report, ...]``) is a function registered in
``ANALYSES`` under that name: it takes the :class:`Study` and a :class:`reportgen.figures.FigureWriter`, computes
its numbers here and asks ``reportgen.figures`` for the plot, and returns a plain dict that the post's template
reads as ``analyses.<name>`` (the partial ``templates/analyses/<name>.md.j2`` shows it).

Analyses that need one trained model per variant (filters, feature maps, the shift heatmap, ...) use the run of the
variant's first seed; cheap ones aggregate over every seed. Images always go through exactly the preprocessing of
training (:func:`reportgen.loader.to_input` with the run's own normalisation). Expensive derived numbers (shift
grids, activation statistics) are cached under ``.cache/analysis/<run cache key>/`` (``$REPORTGEN_CACHE``
overrides ``.cache``); nothing is ever written inside ``results/``. :func:`precompute` fills that cache without
drawing anything, e.g. right after training.

The shift grid is by far the most expensive number here: 169 shifts × 2 modes × the whole test set is 3.4 million
forward passes per model (minutes for LeNet on a laptop CPU, seconds on a GPU; runs trained on CUDA are analysed on
CUDA when it is available). On a CPU the profile's ``shift_images`` (2,000 in ``quick``) limits it to the first N
test images, and ``$REPORTGEN_SHIFT_IMAGES=N`` does so everywhere.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from markupsafe import Markup
from scipy import stats as scipy_stats
from torch import nn

from .figures import cache_root
from .loader import Normalization, random_affine, to_input
from .models import IMAGE_SIZE, count_parameters, named_layers
from .store import MARKER, Run, atomic_write, npz_bytes


@dataclass
class VariantResults:
    name: str
    label: str
    description: str
    dataset: str
    runs: list[Run] = field(default_factory=list)
    unavailable: str | None = None  # why this variant was left out (e.g. its dataset could not be provisioned)

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]

    def test_accs(self) -> np.ndarray:
        return np.array([r.metrics["test_acc"] for r in self.runs])


@dataclass
class Study:
    """One experiment's results under one profile, as the analyses and templates see them."""
    id: str
    config: Any                      # reportgen.config.ExperimentConfig
    profile: str
    variants: list[VariantResults]

    @property
    def available(self) -> list[VariantResults]:
        return [v for v in self.variants if v.runs]

    def variant(self, name: str) -> VariantResults:
        return next(v for v in self.variants if v.name == name)


# ---- statistics ---------------------------------------------------------------------------------------------------
# Every number a post states about "which variant is better" comes from here, and so does the sentence that says
# it: templates print ``verdict`` strings, they never phrase a conclusion themselves.
CONFIDENCE = 0.95
DATASET_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "kmnist": "KMNIST"}
# (verb if the difference is positive, verb if negative, adjective if positive, adjective if negative)
ACCURACY_WORDS = ("improves", "lowers", "higher", "lower")
ACROSS_DATASETS_WORDS = ("scores higher in", "scores lower in", "higher", "lower")
GAP_WORDS = ("widens", "narrows", "wider", "narrower")


def mean_ci(values: np.ndarray | list[float], confidence: float = CONFIDENCE) -> dict[str, float]:
    """Mean, sample standard deviation (ddof = 1) and the two-sided t-distribution confidence interval of the mean.

    The interval is mean ± t(1 − α/2, n − 1) · s / √n with α = 1 − ``confidence``: with seeds as the samples it
    says how well ``n`` seeds pin down the mean over seeds. One value has no spread to estimate, so ``std``,
    ``low``, ``high`` and ``half`` are NaN (shown as "—"); no values at all give NaN everywhere."""
    x = np.asarray(values, dtype=float).ravel()
    n = int(x.size)
    nan = float("nan")
    out = {"n": n, "mean": nan, "std": nan, "low": nan, "high": nan, "half": nan, "confidence": confidence}
    if n == 0:
        return out
    out["mean"] = float(x.mean())
    if n < 2:
        return out
    std = float(x.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=n - 1) * std / math.sqrt(n))
    out.update(std=std, half=half, low=out["mean"] - half, high=out["mean"] + half)
    return out


def test_accuracy(run: Run) -> float:
    """Test accuracy of a run's best-validation checkpoint, in percent."""
    return 100 * run.metrics["test_acc"]


def final_gap(run: Run) -> float:
    """Train minus validation accuracy at the last epoch, in percentage points."""
    last = run.history["epochs"][-1]
    return 100 * (last["train_acc"] - last["val_acc"])


def paired_difference(a: VariantResults, b: VariantResults, confidence: float = CONFIDENCE, *,
                      value: Callable[[Run], float] = test_accuracy, metric: str = "test accuracy",
                      words: tuple[str, str, str, str] | None = None) -> dict[str, Any] | None:
    """``value`` of ``b`` minus that of ``a`` (default: test accuracy, in percentage points), paired by seed — seed s
    of ``b`` against seed s of ``a``: same data order and, for the same layers, the same initial weights — with
    the t-interval of the mean difference and the verdict sentence computed from it. None when no seed was run
    by both."""
    by_seed_a = {r.seed: value(r) for r in a.runs}
    by_seed_b = {r.seed: value(r) for r in b.runs}
    seeds = sorted(set(by_seed_a) & set(by_seed_b))
    if not seeds:
        return None
    diffs = [by_seed_b[s] - by_seed_a[s] for s in seeds]
    ci = mean_ci(diffs, confidence)
    across = a.dataset != b.dataset
    if words is None:
        words = ACROSS_DATASETS_WORDS if across else ACCURACY_WORDS
    return {"baseline": a.name, "variant": b.name, "baseline_label": a.label, "label": b.label, "metric": metric,
            "seeds": seeds, "per_seed": dict(zip(seeds, diffs)), "across_datasets": across, **ci,
            "verdict": verdict(b.label, a.label, ci, metric, words=words, across_datasets=across)}


def _pts(x: float, sign: bool = False) -> str:
    """A number of percentage points for prose: two decimals, a real minus sign, '+' only when asked."""
    text = f"{x:+.2f}" if sign else f"{x:.2f}"
    return text.replace("-", "\u2212")


def verdict(subject: str, reference: str, ci: dict[str, float], metric: str = "test accuracy", *,
            words: tuple[str, str, str, str] = ACCURACY_WORDS, across_datasets: bool = False) -> str:
    """The sentence a post prints for a paired difference ``subject − reference`` in percentage points.

    The conclusion follows from the confidence interval alone: entirely above zero and entirely below zero are
    a clear difference (worded with ``words``), an interval that contains zero is "no clear difference at this
    number of seeds", and a single seed gives no interval and therefore no verdict. Across datasets the test
    sets differ, so the sentence says so."""
    n, mean = int(ci["n"]), ci["mean"]
    level = f"{round(100 * ci.get('confidence', CONFIDENCE))}% CI"
    up, down, higher, lower = words
    if n == 0 or mean != mean:
        return f"{subject} and {reference} have no seed in common, so there is nothing to compare."
    if n == 1:
        return (f"On a single seed, {subject} differs from {reference} by {_pts(mean, sign=True)} percentage points of "
                f"{metric}. One seed has no spread to estimate, so there is no confidence interval and no verdict: "
                "a difference this size can come from the seed alone. The quick (3 seeds) or full (5 seeds) "
                "profile can tell.")
    note = ("; the test sets differ, so this measures how hard each dataset is for the same network"
            if across_datasets else "")
    seeds = f"paired over {n} seeds"
    if not ci["std"] > 0:  # every seed gave exactly the same difference: a zero-width interval
        if mean == 0:
            return f"{metric[0].upper() + metric[1:]} is exactly the same for {subject} and {reference} on all {n} seeds."
        verb = up if mean > 0 else down
        return (f"{subject} {verb} {metric} by exactly {_pts(abs(mean))} percentage points compared with "
                f"{reference} on every one of the {n} seeds (no seed-to-seed spread, so the interval has zero "
                f"width){note}.")
    if ci["low"] > 0:
        return (f"{subject} {up} {metric} by {_pts(mean)} percentage points compared with {reference} "
                f"({level} {_pts(ci['low'])} to {_pts(ci['high'])}, {seeds}){note}.")
    if ci["high"] < 0:
        return (f"{subject} {down} {metric} by {_pts(-mean)} percentage points compared with {reference} "
                f"({level} {_pts(-ci['high'])} to {_pts(-ci['low'])} points {lower}, {seeds}){note}.")
    return (f"No clear difference in {metric} between {subject} and {reference} at {n} seeds: the mean difference "
            f"is {_pts(mean, sign=True)} percentage points, but its {level} ({_pts(ci['low'], sign=True)} to "
            f"{_pts(ci['high'], sign=True)}) includes zero.")


def summary(study: Study) -> dict[str, Any]:
    """The numbers every post states, in percent / percentage points: per variant the test accuracy (mean, std,
    t-interval over seeds), parameters, last-epoch train and validation accuracy and their gap, best epoch; and the
    paired difference of every variant against the study's ``baseline`` (default: the first variant) in test
    accuracy (``comparisons``) and in the train − validation gap (``gap_comparisons``), each with its interval
    and verdict. Variants left out (``unavailable``) are listed with the reason."""
    rows = []
    for v in study.available:
        rows.append({
            "name": v.name, "label": v.label, "dataset": v.dataset,
            "dataset_name": DATASET_NAMES.get(v.dataset, v.dataset), "seeds": v.seeds, "n": len(v.runs),
            "acc": mean_ci([test_accuracy(r) for r in v.runs]),
            "parameters": v.runs[0].metrics["parameters"],
            "train_acc": mean_ci([100 * r.history["epochs"][-1]["train_acc"] for r in v.runs]),
            "val_acc": mean_ci([100 * r.history["epochs"][-1]["val_acc"] for r in v.runs]),
            "gap": mean_ci([final_gap(r) for r in v.runs]),
            "best_epoch": mean_ci([r.metrics["best_epoch"] for r in v.runs]),
            "epochs": len(v.runs[0].history["epochs"]),
            "wall_seconds": sum(r.record["wall_seconds"] for r in v.runs),
            "diff": None, "gap_diff": None,
        })
    baseline_name = study.config.baseline or (study.available[0].name if study.available else None)
    comparisons: list[dict[str, Any]] = []
    gap_comparisons: list[dict[str, Any]] = []
    base = next((v for v in study.available if v.name == baseline_name), None)
    if base is not None:
        for v, row in zip(study.available, rows):
            if v.name == baseline_name:
                continue
            diff = paired_difference(base, v)
            if diff is not None:
                comparisons.append(diff)
                row["diff"] = diff
            gap = paired_difference(base, v, value=final_gap, metric="the train − validation gap", words=GAP_WORDS)
            if gap is not None:
                gap_comparisons.append(gap)
                row["gap_diff"] = gap
    unavailable = [{"name": v.name, "label": v.label, "dataset": v.dataset, "reason": v.unavailable}
                   for v in study.variants if v.unavailable]
    baseline_label = next((v.label for v in study.variants if v.name == baseline_name), baseline_name)
    n_seeds = max((row["n"] for row in rows), default=0)
    return {
        "rows": rows, "baseline": baseline_name, "baseline_label": baseline_label,
        "baseline_missing": baseline_name is not None and base is None and bool(study.variants),
        "comparisons": comparisons, "gap_comparisons": gap_comparisons,
        "unavailable": unavailable, "n_seeds": n_seeds, "single_seed": n_seeds == 1,
        "confidence": CONFIDENCE, "confidence_pct": round(100 * CONFIDENCE),
    }


# ---- analyses by name ---------------------------------------------------------------------------------------------
# The shared machinery first (data, models, hooks, cache, the computations), then one function per name.
# ---- machinery: data, models, cache -------------------------------------------------------------------------------
CACHE_VERSION = 1       # bump when a cached computation changes meaning
EVAL_BATCH = 1000       # the batch size of reportgen.train.evaluate: the unshifted pass repeats it exactly
SHIFT_RADIUS = 6        # the shift grid covers dx, dy in -6..6
SHIFT_IMAGES_ENV = "REPORTGEN_SHIFT_IMAGES"
FIRST_SEED = "the first seed's run"
log: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731


class AnalysisError(Exception):
    """A one-line problem computing an analysis (missing data, results that do not match the data, ...)."""


def first_run(variant: VariantResults) -> Run:
    """The run of the variant's first seed (seeds in the order the profile lists them)."""
    return variant.runs[0]


def _study_dataset(study: Study) -> str:
    available = study.available
    return available[0].dataset if available else study.config.dataset


def class_names(dataset: str, num_classes: int | None = None) -> list[str]:
    from .data import DATASETS
    names = list(DATASETS[dataset].classes)
    if num_classes is not None and num_classes != len(names):
        names = [str(i) for i in range(num_classes)]
    return names


_SPLITS: "OrderedDict[tuple[str, str], Any]" = OrderedDict()


def dataset_splits(dataset: str):
    """``reportgen.data.load_splits(dataset)`` (checksum verified), read once per process and data root."""
    from .data import DataError, data_root, load_splits
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
    recorded = run.record.get("dataset_sha256")
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
    return Normalization(**run.metrics["normalization"])


def weights_digest(run: Run) -> str:
    """SHA-256 of the run's weights as recorded in its completion marker (no re-hashing)."""
    try:
        return json.loads((run.path / MARKER).read_text())["files"]["weights.safetensors"]
    except (OSError, ValueError, KeyError):
        return "unknown"


_MODELS: "OrderedDict[tuple[str, str, str], nn.Module]" = OrderedDict()


def analysis_device(run: Run) -> torch.device:
    """Where the heavy passes (shift grid, activation statistics) run: the CPU, or CUDA for a run that was trained
    on CUDA when CUDA is available here, so the unshifted pass repeats the run's own evaluation on the same kind
    of device."""
    if str(run.record.get("device", "")).startswith("cuda") and torch.cuda.is_available():
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


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached_arrays(run: Run, analysis: str, params: dict[str, Any],
                  compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``compute()``'s arrays, cached at ``.cache/analysis/<run cache key>/<analysis>-<params hash>.npz``.

    The hash covers the parameters, the exact weights (their SHA-256) and CACHE_VERSION, so retrained weights or a
    changed computation never reuse stale numbers. Written atomically; read with ``allow_pickle=False``."""
    key = run.record.get("cache_key") or _digest(str(run.path))
    full = {"analysis": analysis, "version": CACHE_VERSION, "weights": weights_digest(run), **params}
    path = cache_root() / "analysis" / key / f"{analysis}-{_digest(full)}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                return {name: z[name] for name in z.files}
        except (OSError, ValueError, EOFError):
            pass  # a damaged cache file is recomputed and replaced
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


def _shape_text(shape: tuple[int, ...] | list[int]) -> str:
    return " × ".join(str(int(s)) for s in shape)


def _pair(v: Any) -> int:
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


def layer_details(module: nn.Module) -> str:
    """The key settings of a layer, as a reader would write them."""
    if isinstance(module, nn.Conv2d):
        k, s, p = _pair(module.kernel_size), _pair(module.stride), _pair(module.padding)
        plural = "s" if module.out_channels != 1 else ""
        return (f"{module.in_channels} → {module.out_channels} channel{plural}, {k}×{k} kernel, stride {s}, "
                f"padding {p}")
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        k = _pair(module.kernel_size)
        return f"{k}×{k} window, stride {_pair(module.stride or module.kernel_size)}, padding {_pair(module.padding)}"
    if isinstance(module, nn.Linear):
        return f"{module.in_features} → {module.out_features}"
    if isinstance(module, nn.Dropout):
        return f"p = {module.p:g} (training only)"
    if isinstance(module, nn.Flatten):
        return "C × H × W → one vector"
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


def architecture_table(model: nn.Module, in_channels: int = 1, size: int = IMAGE_SIZE) -> dict[str, Any]:
    """A hooked forward pass of one dummy image: every layer's type, settings, output shape and parameters."""
    halves = {id(m): "featurizer" for m in model.featurizer.children()}
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), capture_activations(model, keep=False) as acts:
            model(torch.zeros(1, in_channels, size, size))
    finally:
        model.train(was_training)
    rows = []
    for name, module in layer_table(model):
        params = sum(p.numel() for p in module.parameters() if p.requires_grad)
        rows.append({"name": name, "part": halves.get(id(module), "classifier"), "type": type(module).__name__,
                     "details": layer_details(module), "output_shape": list(acts.output_shapes[name][1:]),
                     "output": _shape_text(acts.output_shapes[name][1:]), "parameters": int(params),
                     "formula": _parameter_formula(module)})
    return {"input": _shape_text((in_channels, size, size)), "rows": rows,
            "total": int(sum(r["parameters"] for r in rows)), "trainable": int(count_parameters(model))}


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


# ---- numbers from predictions -------------------------------------------------------------------------------------
def classification_numbers(labels: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """scikit-learn's classification_report (output_dict=True) on argmax predictions, reshaped for a table."""
    from sklearn.metrics import classification_report
    preds = probs.argmax(1)
    raw = classification_report(labels, preds, labels=list(range(len(classes))), target_names=classes,
                                output_dict=True, zero_division=0)

    def row(d: dict[str, float]) -> dict[str, float]:
        return {"precision": float(d["precision"]), "recall": float(d["recall"]), "f1": float(d["f1-score"]),
                "support": int(d["support"])}

    return {"classes": [{"name": c, **row(raw[c])} for c in classes],
            "accuracy": float(raw.get("accuracy", float((preds == labels).mean()))),
            "macro": row(raw["macro avg"]), "weighted": row(raw["weighted avg"]), "raw": raw}


def confusion_counts(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    from sklearn.metrics import confusion_matrix
    return confusion_matrix(labels, preds, labels=list(range(num_classes)))


def most_confused_pairs(counts: np.ndarray, classes: list[str], top: int = 3) -> list[dict[str, Any]]:
    """The class pairs with the most mistakes in either direction (ties: lower class index first)."""
    support = counts.sum(1)
    pairs = []
    for i in range(len(classes)):
        for j in range(i + 1, len(classes)):
            total = int(counts[i, j] + counts[j, i])
            if total > 0:
                pairs.append((-total, i, j))
    rows = []
    for neg, i, j in sorted(pairs)[:top]:
        both = int(support[i] + support[j])
        rows.append({"a": classes[i], "b": classes[j], "a_as_b": int(counts[i, j]), "b_as_a": int(counts[j, i]),
                     "total": -neg, "share_pct": 100.0 * -neg / both if both else float("nan")})
    return rows


# ---- shifts -------------------------------------------------------------------------------------------------------
def shift_images(images: torch.Tensor, dx: int, dy: int, mode: str = "zero") -> torch.Tensor:
    """Move the content of [..., H, W] images ``dx`` pixels right and ``dy`` down. ``zero``: pixels pushed out are
    lost and black (0) comes in; ``wrap``: what leaves one side comes back in on the other (``torch.roll``)."""
    if mode == "wrap":
        return torch.roll(images, shifts=(dy, dx), dims=(-2, -1))
    if mode != "zero":
        raise ValueError(f"mode must be 'zero' or 'wrap', got {mode!r}")
    h, w = images.shape[-2:]
    r = max(abs(dx), abs(dy))
    canvas = F.pad(images, (r, r, r, r)) if r else images
    return canvas[..., r - dy:r - dy + h, r - dx:r - dx + w]


def shift_accuracy_grid(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, norm: Normalization,
                        radius: int = SHIFT_RADIUS, batch: int = EVAL_BATCH) -> dict[str, np.ndarray]:
    """Correct predictions for every shift (dx, dy) in -radius..radius, zero-filled and wrapped around, over all
    ``images``: ``zero`` and ``wrap`` are int arrays [dy + radius, dx + radius] of correct counts.

    One pad (or roll) of the whole set per shift, then batches of ``batch``. The unshifted images go through the
    model exactly as training's evaluation did (same layout, same batches), so that cell reproduces the run's
    test accuracy bit for bit; every shifted cell uses a channels-last copy of the model, the same arithmetic in
    another memory layout, about 1.5 times faster on a CPU. A wrapped image whose border strip that wraps around
    is all black is identical to its zero-filled twin, so it is not evaluated twice."""
    size = 2 * radius + 1
    zero = np.zeros((size, size), dtype=np.int64)
    wrap = np.zeros((size, size), dtype=np.int64)
    device = next(model.parameters()).device
    images, labels = images.to(device), labels.to(device)
    h, w = images.shape[-2:]
    canvas = F.pad(images, (radius, radius, radius, radius))
    model.eval()
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last).eval()
    with torch.inference_mode():
        for iy, dy in enumerate(range(-radius, radius + 1)):
            for ix, dx in enumerate(range(-radius, radius + 1)):
                shifted = canvas[:, radius - dy:radius - dy + h, radius - dx:radius - dx + w].contiguous()
                if dx == 0 and dy == 0:
                    ok = forward_logits(model, shifted, norm, batch).argmax(1) == labels
                else:
                    ok = forward_logits(fast, shifted, norm, batch, channels_last=True).argmax(1) == labels
                zero[iy, ix] = int(ok.sum())
                rolled = torch.roll(images, shifts=(dy, dx), dims=(-2, -1))
                differs = (rolled != shifted).flatten(1).any(1)
                same_ok = int(ok[~differs].sum())
                if bool(differs.any()):
                    idx = differs.nonzero().squeeze(1)
                    logits = forward_logits(fast, rolled[idx], norm, batch, channels_last=True)
                    wrap_ok = int((logits.argmax(1) == labels[idx]).sum())
                else:
                    wrap_ok = 0
                wrap[iy, ix] = same_ok + wrap_ok
    return {"zero": zero, "wrap": wrap, "n": np.array(len(labels))}


def shift_images_limit(study: Study | None = None, device: torch.device | None = None) -> int | None:
    """How many test images (the first N) the shift grid uses; None = the whole test set.
    ``$REPORTGEN_SHIFT_IMAGES`` decides when set; otherwise the profile's ``shift_images``, which applies on a CPU
    (or MPS) only: on CUDA the whole test set takes seconds."""
    value = os.environ.get(SHIFT_IMAGES_ENV, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise AnalysisError(f"{SHIFT_IMAGES_ENV}={value!r}: expected a positive number of test images")
        return int(value)
    if study is None or (device is not None and device.type == "cuda"):
        return None
    return study.config.profile(study.profile).get("shift_images")


def shift_grid_of(run: Run, radius: int = SHIFT_RADIUS, study: Study | None = None) -> dict[str, Any]:
    """The run's shift grid (cached on disk), checked: the unshifted cell must reproduce the run's test accuracy
    (metrics.json) exactly; on another kind of device than the run was evaluated on, or on a subset (see
    :func:`shift_images_limit`), within one image per thousand of what its stored predictions give."""
    images, labels = run_test_set(run)
    full = len(labels)
    device = analysis_device(run)
    limit = shift_images_limit(study, device)
    if limit is not None and limit < full:
        images, labels = images[:limit], labels[:limit]

    def compute() -> dict[str, np.ndarray]:
        started = time.perf_counter()
        log(f"analysis: shift grid of {run.path} ({(2 * radius + 1) ** 2} shifts × 2 modes × {len(labels):,} test "
            f"images on {device.type}; cached afterwards)")
        arrays = shift_accuracy_grid(load_model(run, device), images, labels, normalization(run), radius)
        arrays["seconds"] = np.array(time.perf_counter() - started)
        return arrays

    arrays = cached_arrays(run, "shift_grid", {"radius": radius, "n": len(labels), "device": device.type}, compute)
    n = int(arrays["n"])
    zero, wrap = arrays["zero"] / n, arrays["wrap"] / n
    center = int(arrays["zero"][radius, radius])
    if n == full:
        expected_correct, exact = round(run.metrics["test_acc"] * n), center / n == run.metrics["test_acc"]
    else:
        stored_labels, probs = run.predictions()
        expected_correct = int((probs[:n].argmax(1) == stored_labels[:n]).sum())
        exact = center == expected_correct
    delta = center - expected_correct
    same_device = str(run.record.get("device", "cpu")).split()[0] == device.type and n == full
    if not exact and (same_device or abs(delta) > max(1, n // 1000)):
        raise AnalysisError(f"{run.path}: the unshifted cell of the shift grid gives accuracy {center / n:.4f} "
                            f"({center} of {n}) but the run's own evaluation gives {expected_correct} of {n}; the "
                            "analysis preprocessing differs from training's")
    return {"zero": zero, "wrap": wrap, "n": n, "full": full, "center": center / n, "center_delta_images": int(delta),
            "seconds": float(arrays["seconds"]), "device": device.type}


# ---- activation statistics ----------------------------------------------------------------------------------------
def activation_statistics(model: nn.Module, images: torch.Tensor, norm: Normalization,
                          batch: int = EVAL_BATCH) -> dict[str, np.ndarray]:
    """Per layer over all ``images``: number of values, exact zeros, sum, min and max, and how many units (channels
    of a 2-D map, entries of a vector) are zero for every image ("dead")."""
    names = [n for n, _ in layer_table(model)]
    count = dict.fromkeys(names, 0)
    zeros = dict.fromkeys(names, 0)
    total = dict.fromkeys(names, 0.0)
    low = dict.fromkeys(names, math.inf)
    high = dict.fromkeys(names, -math.inf)
    alive: dict[str, torch.Tensor] = {}

    def on_output(name: str, out: torch.Tensor) -> None:
        nonzero = out != 0
        count[name] += out.numel()
        zeros[name] += out.numel() - int(nonzero.sum())
        total[name] += float(out.sum(dtype=torch.float64))
        lo, hi = torch.aminmax(out)
        low[name], high[name] = min(low[name], float(lo)), max(high[name], float(hi))
        unit = nonzero.flatten(2).any(2).any(0) if out.dim() == 4 else nonzero.flatten(1).any(0)
        alive[name] = unit if name not in alive else alive[name] | unit

    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode(), capture_activations(model, keep=False, on_output=on_output):
        for start in range(0, len(images), batch):
            model(to_input(images[start:start + batch].to(device).contiguous(), norm))
    return {"names": np.array(names), "count": np.array([count[n] for n in names], dtype=np.int64),
            "zeros": np.array([zeros[n] for n in names], dtype=np.int64),
            "sum": np.array([total[n] for n in names]), "min": np.array([low[n] for n in names]),
            "max": np.array([high[n] for n in names]),
            "units": np.array([int(alive[n].numel()) if n in alive else 0 for n in names], dtype=np.int64),
            "dead": np.array([int((~alive[n]).sum()) if n in alive else 0 for n in names], dtype=np.int64)}


# ---- hand-made kernels --------------------------------------------------------------------------------------------
HAND_KERNELS: list[tuple[str, str, list[list[float]]]] = [
    ("box blur", "the average of the 3×3 neighbourhood", [[1 / 9] * 3] * 3),
    ("outline", "the centre minus its eight neighbours: zero on flat areas, large on edges",
     [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
    ("horizontal lines", "a bright row between two darker rows", [[-1, -1, -1], [2, 2, 2], [-1, -1, -1]]),
    ("vertical lines", "a bright column between two darker columns", [[-1, 2, -1], [-1, 2, -1], [-1, 2, -1]]),
]


def kernel_tex(weights: list[list[float]]) -> Markup:
    """A kernel as an inline LaTeX matrix (fractions such as 1/9 written as fractions)."""
    from fractions import Fraction

    def entry(w: float) -> str:
        f = Fraction(w).limit_denominator(64)
        if abs(float(f) - w) > 1e-6:
            return f"{w:.2f}"
        if f.denominator == 1:
            return str(f.numerator)
        return ("-" if f < 0 else "") + rf"\tfrac{{{abs(f.numerator)}}}{{{f.denominator}}}"

    body = r" \\ ".join(" & ".join(entry(w) for w in row) for row in weights)
    return Markup(rf"\(\begin{{bmatrix}} {body} \end{{bmatrix}}\)")


def apply_kernels(image01: torch.Tensor, kernels: list[list[list[float]]], padding: int = 1) -> torch.Tensor:
    """[H, W] image in [0, 1] -> [K, H', W'] outputs of ``torch.nn.functional.conv2d`` with each kernel."""
    weight = torch.tensor(kernels, dtype=torch.float32).unsqueeze(1)
    return F.conv2d(image01[None, None].float(), weight, padding=padding)[0]


# ---- helpers for the analyses -------------------------------------------------------------------------------------
def _variant_head(v: VariantResults, run: Run | None = None) -> dict[str, Any]:
    head = {"name": v.name, "label": v.label, "dataset": v.dataset, "seeds": v.seeds}
    if run is not None:
        head["seed"] = run.seed
    return head


def _model_specs(study: Study) -> list[dict[str, Any]]:
    """The distinct models of a study (name + options) with the labels of the variants that use each."""
    specs: dict[str, dict[str, Any]] = {}
    seeds = study.config.profile(study.profile)["seeds"] if study.config.variants else []
    sources = ([(v.label or v.name, study.config.resolve(v, seeds[0], study.profile)["model"])
                for v in study.config.variants] if study.config.variants
               else [(study.config.model.name, {"name": study.config.model.name,
                                                "options": dict(study.config.model.options)})])
    for label, model in sources:
        key = json.dumps(model, sort_keys=True)
        specs.setdefault(key, {"model": model["name"], "options": model["options"], "variants": []})
        specs[key]["variants"].append(label)
    return list(specs.values())


def _build(spec: dict[str, Any]) -> nn.Module:
    from .models import build_model
    torch.manual_seed(0)
    return build_model(spec["model"], **spec["options"]).eval()


def _class_examples(labels: np.ndarray, num_classes: int) -> list[int]:
    """The index of the first test image of each class (classes absent from the set are skipped)."""
    out = []
    for c in range(num_classes):
        hits = np.flatnonzero(labels == c)
        if len(hits):
            out.append(int(hits[0]))
    return out


def _pct(x: float) -> float:
    return 100.0 * float(x)


# ---- the analyses -------------------------------------------------------------------------------------------------
def curves(study: Study, figures) -> dict[str, Any]:
    """Train and validation loss/accuracy per epoch: mean over seeds with a min–max band, per variant."""
    series, rows = {}, []
    for v in study.available:
        per_seed = {key: np.array([[row[key] for row in r.history["epochs"]] for r in v.runs])
                    for key in ("train_loss", "val_loss", "train_acc", "val_acc")}
        series[v.label] = per_seed
        rows.append({**_variant_head(v), "epochs": int(per_seed["val_acc"].shape[1]),
                     "final_train_acc_pct": _pct(per_seed["train_acc"][:, -1].mean()),
                     "final_val_acc_pct": _pct(per_seed["val_acc"][:, -1].mean()),
                     "best_val_acc_pct": _pct(per_seed["val_acc"].max(1).mean())})
    fig = figures.curves(series, title=f"{study.config.title}: training curves") if series else None
    return {"figure": fig, "variants": rows, "seeds": max((len(v.runs) for v in study.available), default=0)}


def report(study: Study, figures) -> dict[str, Any]:
    """Per-class precision, recall, F1 and support (scikit-learn's classification_report) of the first seed's test
    predictions, plus accuracy, macro and weighted averages; macro F1 also as mean ± std over every seed."""
    from sklearn.metrics import f1_score
    rows = []
    for v in study.available:
        run = first_run(v)
        labels, probs = run.predictions()
        numbers = classification_numbers(labels, probs, class_names(v.dataset, probs.shape[1]))
        macro_f1 = []
        for r in v.runs:
            y, p = r.predictions()
            macro_f1.append(f1_score(y, p.argmax(1), labels=list(range(p.shape[1])), average="macro", zero_division=0))
        rows.append({**_variant_head(v, run), **numbers, "test_size": int(len(labels)),
                     "macro_f1_seeds": mean_ci(np.array(macro_f1))})
    return {"basis": FIRST_SEED, "variants": rows}


def confusion(study: Study, figures) -> dict[str, Any]:
    """Confusion matrix of the first seed's test predictions (counts and row-normalised) and the three class pairs
    mixed up most often (both directions together)."""
    rows = []
    for v in study.available:
        run = first_run(v)
        labels, probs = run.predictions()
        classes = class_names(v.dataset, probs.shape[1])
        counts = confusion_counts(labels, probs.argmax(1), len(classes))
        support = counts.sum(1)
        normalised = np.divide(counts, support[:, None], out=np.zeros(counts.shape), where=support[:, None] > 0)
        fig_counts = figures.confusion(counts, classes, normalised=False, name=f"confusion-{v.name}",
                                       title=f"{v.label}: confusion matrix (seed {run.seed}, "
                                             f"{len(labels):,} test images)")
        fig_norm = figures.confusion(normalised, classes, normalised=True, name=f"confusion-{v.name}-normalised",
                                     title=f"{v.label}: confusion matrix, each row as % of its class")
        correct = np.diag(counts)
        rows.append({**_variant_head(v, run), "classes": classes, "counts": counts.tolist(),
                     "normalised": normalised.tolist(), "support": support.tolist(),
                     "recall_pct": [_pct(x) for x in np.diag(normalised)],
                     "errors": int(len(labels) - correct.sum()), "test_size": int(len(labels)),
                     "pairs": most_confused_pairs(counts, classes), "figure": fig_counts,
                     "figure_normalised": fig_norm})
    return {"basis": FIRST_SEED, "variants": rows}


def misclassified(study: Study, figures, count: int = 18) -> dict[str, Any]:
    """The first seed's most confident mistakes on the test set: image, true class, predicted class, confidence."""
    rows = []
    for v in study.available:
        run = first_run(v)
        images, _ = run_test_set(run)
        labels, probs = run.predictions()
        classes = class_names(v.dataset, probs.shape[1])
        preds, confidence = probs.argmax(1), probs.max(1)
        wrong = np.flatnonzero(preds != labels)
        order = wrong[np.lexsort((wrong, -confidence[wrong]))][:count]
        shown = [{"index": int(i), "true": classes[labels[i]], "predicted": classes[preds[i]],
                  "confidence_pct": _pct(confidence[i]), "true_prob_pct": _pct(probs[i, labels[i]])} for i in order]
        fig = None
        if shown:
            fig = figures.misclassified(images[order].numpy(), shown, name=f"misclassified-{v.name}",
                                        title=f"{v.label}: the {len(shown)} most confident mistakes (seed {run.seed})")
        rows.append({**_variant_head(v, run), "errors": int(len(wrong)), "test_size": int(len(labels)),
                     "error_pct": _pct(len(wrong) / max(1, len(labels))), "shown": shown, "figure": fig})
    return {"basis": FIRST_SEED, "variants": rows}


def samples(study: Study, figures, per_class: int = 8) -> dict[str, Any]:
    """A grid of the first ``per_class`` training images of every class, for each dataset of the study."""
    from .data import DATASETS
    datasets = list(dict.fromkeys(v.dataset for v in study.available)) or [_study_dataset(study)]
    rows = []
    for ds in datasets:
        splits = dataset_splits(ds)
        labels = splits.train_labels.numpy()
        classes = list(splits.classes)
        picks = [np.flatnonzero(labels == c)[:per_class] for c in range(len(classes))]
        grid = np.zeros((len(classes), per_class, *splits.train_images.shape[-2:]), dtype=np.uint8)
        for c, idx in enumerate(picks):
            grid[c, :len(idx)] = splits.train_images[torch.from_numpy(idx)].numpy()
        fig = figures.samples(grid, classes, name=f"samples-{ds}",
                              title=f"{DATASETS[ds].title}: {per_class} training images of each class")
        rows.append({"dataset": ds, "title": DATASETS[ds].title, "classes": classes, "per_class": per_class,
                     "train_counts": np.bincount(labels, minlength=len(classes)).tolist(),
                     "train_size": int(len(labels)), "test_size": int(len(splits.test_labels)),
                     "size": int(splits.train_images.shape[-1]), "figure": fig})
    return {"datasets": rows}


def architecture(study: Study, figures) -> dict[str, Any]:
    """Layer by layer (a hooked forward pass of a dummy image): type, settings, output shape, parameters."""
    models = []
    for spec in _model_specs(study):
        model = _build(spec)
        table = architecture_table(model, spec["options"].get("in_channels", 1))
        models.append({**spec, **table})
    return {"models": models}


def output_size(study: Study, figures) -> dict[str, Any]:
    """The output-size formula worked for every convolution and pooling layer, from the real module attributes,
    with the size the forward pass really produces."""
    models = []
    for spec in _model_specs(study):
        model = _build(spec)
        rows = output_size_rows(model, spec["options"].get("in_channels", 1))
        models.append({**spec, "input": IMAGE_SIZE, "rows": rows, "all_match": all(r["matches"] for r in rows)})
    return {"models": models}


def filters(study: Study, figures) -> dict[str, Any]:
    """The learned filters of every convolution of the first seed's model: the first layer filter by filter, deeper
    layers one tile per output channel (mean over its input channels) plus the full grid for the first few."""
    rows = []
    for v in study.available:
        run = first_run(v)
        model = load_model(run)
        layers = []
        for name, module in layer_table(model):
            if not isinstance(module, nn.Conv2d):
                continue
            w = module.weight.detach().numpy()
            out_c, in_c, kh, kw = w.shape
            first = in_c == 1 or not layers
            tiles = w[:, 0] if in_c == 1 else w.mean(1)
            what = ("one tile per filter" if in_c == 1
                    else f"one tile per output channel, mean over its {in_c} input channels")
            fig = figures.filters(tiles, name=f"filters-{v.name}-{name}", layer=name,
                                  title=f"{v.label}, {name}: {out_c} filter{'s' if out_c != 1 else ''} of "
                                        f"{in_c} × {kh} × {kw} ({what})")
            detail, out_shown, in_shown = None, 0, 0
            if in_c > 1:
                out_shown, in_shown = min(out_c, 16), min(in_c, 16)
                some = "" if (out_shown, in_shown) == (out_c, in_c) else f" (the first {out_shown} × {in_shown})"
                detail = figures.filter_detail(w[:out_shown, :in_shown], name=f"filters-{v.name}-{name}-detail",
                                               layer=name, title=f"{v.label}, {name}: each filter's {kh}×{kw} slice "
                                                                 f"for every input channel{some}")
            layers.append({"name": name, "shape": _shape_text(w.shape), "out_channels": out_c, "in_channels": in_c,
                           "kernel": f"{kh}×{kw}", "first": first, "min": float(w.min()), "max": float(w.max()),
                           "figure": fig, "detail_figure": detail, "detail_out": out_shown, "detail_in": in_shown})
        linear = None
        if not layers:  # a fully connected network: its first layer's weights are 28x28 templates
            fc = next((m for _, m in layer_table(model) if isinstance(m, nn.Linear)), None)
            pixels = IMAGE_SIZE * IMAGE_SIZE
            if fc is not None and fc.in_features % pixels == 0:
                w = fc.weight.detach().numpy()[:32].reshape(-1, fc.in_features // pixels, IMAGE_SIZE, IMAGE_SIZE)[:, 0]
                name = next(n for n, m in layer_table(model) if m is fc)
                linear = {"name": name, "units": int(fc.out_features), "shown": int(len(w)), "side": IMAGE_SIZE,
                          "figure": figures.filters(w, name=f"filters-{v.name}-{name}", layer=name,
                                                    title=f"{v.label}, {name}: the weights of {len(w)} hidden units "
                                                          f"as {IMAGE_SIZE} × {IMAGE_SIZE} images")}
        rows.append({**_variant_head(v, run), "layers": layers, "linear": linear})
    return {"basis": FIRST_SEED, "variants": rows}


def _layer_kind(output: torch.Tensor, is_last: bool) -> str:
    if output.dim() == 4:
        return "map"
    return "logits" if is_last else "vector"


def feature_maps(study: Study, figures) -> dict[str, Any]:
    """Forward hooks on every layer of the first seed's model: the output of each layer for one test image (one
    figure per layer), and an overview of every layer for the first test image of each class."""
    rows = []
    for v in study.available:
        run = first_run(v)
        model = load_model(run)
        images, labels_t = run_test_set(run)
        labels = labels_t.numpy()
        _, probs = run.predictions()
        classes = class_names(v.dataset, probs.shape[1])
        examples = _class_examples(labels, len(classes))
        x = to_input(images[examples].contiguous(), normalization(run))
        with torch.inference_mode(), capture_activations(model) as acts:
            logits = model(x)
        out_probs = torch.softmax(logits, 1).numpy()
        table = layer_table(model)
        example = examples[0]
        layers = []
        previous: tuple[int, ...] = tuple(x.shape[1:])
        for i, (name, module) in enumerate(table):
            out = acts[name]
            kind = _layer_kind(out, i == len(table) - 1)
            values = out[0].numpy()
            title = (f"{v.label}, {name} ({type(module).__name__}) on test image {example} "
                     f"({classes[labels[example]]}): output {_shape_text(values.shape)}")
            if kind == "map":
                fig = figures.feature_map(values, name=f"features-{v.name}-{name}", layer=name, title=title)
            else:
                # after flatten, one row per channel of the map it came from (a single channel: one image row)
                fold = None
                if isinstance(module, nn.Flatten) and len(previous) == 3:
                    fold = previous[1] * previous[2] if previous[0] > 1 else previous[2]
                fig = figures.vector(values, name=f"features-{v.name}-{name}", layer=name, title=title,
                                     classes=classes if kind == "logits" else None,
                                     probs=out_probs[0] if kind == "logits" else None, fold=fold)
            previous = tuple(values.shape)
            layers.append({"name": name, "type": type(module).__name__, "kind": kind,
                           "shape": _shape_text(values.shape), "min": float(values.min()), "max": float(values.max()),
                           "zero_pct": _pct((values == 0).mean()), "figure": fig,
                           "identity_at_test": isinstance(module, (nn.Dropout, nn.Identity, nn.Flatten))})
        # The overview leaves out layers that only pass their input on at test time.
        overview_layers = [(n, acts[n].numpy()) for n, m in table
                           if not isinstance(m, (nn.Dropout, nn.Identity, nn.Flatten))]
        overview = figures.feature_overview(
            images[examples].numpy(), overview_layers, [classes[labels[i]] for i in examples],
            name=f"features-{v.name}-overview",
            title=f"{v.label}: every layer for one test image of each class (seed {run.seed})")
        pred = int(out_probs[0].argmax())
        rows.append({**_variant_head(v, run),
                     "example": {"index": example, "class": classes[labels[example]], "predicted": classes[pred],
                                 "confidence_pct": _pct(out_probs[0, pred]), "correct": pred == labels[example]},
                     "examples": [{"index": i, "class": classes[labels[i]]} for i in examples],
                     "layers": layers, "overview": overview,
                     "overview_layers": [n for n, _ in overview_layers]})
    return {"basis": FIRST_SEED, "variants": rows}


def activation_stats_of(run: Run) -> dict[str, np.ndarray]:
    """The run's activation statistics over its whole test set (cached on disk)."""
    images, _ = run_test_set(run)
    device = analysis_device(run)
    return cached_arrays(run, "activation_stats", {"n": len(images), "device": device.type},
                         lambda: activation_statistics(load_model(run, device), images, normalization(run)))


def precompute(study: Study) -> dict[str, float]:
    """Compute and cache the expensive numbers the study's analyses will need (shift grids, activation
    statistics) without drawing anything, and return the seconds spent per run. Meant for ``reportgen run`` to
    call after training a study, so that ``reportgen render`` finds them in the cache; already cached numbers
    cost nothing."""
    names = set(study.config.analyses)
    spent = {}
    for v in study.available:
        run = first_run(v)
        started = time.perf_counter()
        if names & {"shift_grid", "shift_curve"}:
            shift_grid_of(run, study=study)
        if "activation_stats" in names:
            activation_stats_of(run)
        spent[str(run.path)] = time.perf_counter() - started
    return spent


def activation_stats(study: Study, figures) -> dict[str, Any]:
    """Over the whole test set, per layer of the first seed's model: share of exact zeros (after each ReLU: how many
    neurons are silent), mean and max activation, and units that never fire."""
    rows, relu_series = [], {}
    for v in study.available:
        run = first_run(v)
        stats = activation_stats_of(run)
        types = {n: type(m).__name__ for n, m in layer_table(load_model(run))}
        layers = []
        for i, name in enumerate(stats["names"].tolist()):
            layers.append({"name": name, "type": types.get(name, "?"), "is_relu": types.get(name) == "ReLU",
                           "zero_pct": _pct(stats["zeros"][i] / stats["count"][i]),
                           "mean": float(stats["sum"][i] / stats["count"][i]), "min": float(stats["min"][i]),
                           "max": float(stats["max"][i]), "units": int(stats["units"][i]),
                           "dead": int(stats["dead"][i])})
        relus = [row for row in layers if row["is_relu"]]
        if relus:
            relu_series[v.label] = [(row["name"], row["zero_pct"]) for row in relus]
        rows.append({**_variant_head(v, run), "images": int(run.metrics["test_size"]), "layers": layers,
                     "relu": relus})
    fig = figures.zero_fractions(relu_series, name="activation-zeros",
                                 title="Share of zeros after each ReLU over the test set") if relu_series else None
    return {"basis": FIRST_SEED, "variants": rows, "figure": fig}


def kernels(study: Study, figures, index: int = 0) -> dict[str, Any]:
    """Four hand-made 3×3 kernels applied with ``torch.nn.functional.conv2d`` to a real test image."""
    from .data import DATASETS
    ds = _study_dataset(study)
    splits = dataset_splits(ds)
    image = splits.test_images[index].float() / 255
    weights = [k for _, _, k in HAND_KERNELS]
    outputs = apply_kernels(image, weights, padding=1).numpy()
    rows = [{"name": name, "description": desc, "weights": w, "out_min": float(o.min()), "out_max": float(o.max()),
             "tex": kernel_tex(w)} for (name, desc, w), o in zip(HAND_KERNELS, outputs)]
    cls = splits.classes[int(splits.test_labels[index])]
    fig = figures.kernels(image.numpy(), [(r["name"], np.array(r["weights"]), o) for r, o in zip(rows, outputs)],
                          name="kernels", title=f"Hand-made 3×3 kernels on a {DATASETS[ds].title} test image ({cls})")
    return {"image": {"dataset": ds, "title": DATASETS[ds].title, "index": index, "class": cls},
            "kernels": rows, "padding": 1, "size": int(image.shape[-1]), "output_size": int(outputs.shape[-1]),
            "figure": fig}


AUGMENT_DEMO = {"rotation": 15.0, "translate": 0.1, "scale": (0.9, 1.1), "shear": 10.0}


def _torchvision_augmentations() -> list[tuple[str, str, Callable[[], Any]]]:
    from torchvision.transforms import v2
    return [
        ("rotation", "v2.RandomRotation(degrees=30)", lambda: v2.RandomRotation(degrees=30)),
        ("translation", "v2.RandomAffine(degrees=0, translate=(0.15, 0.15))",
         lambda: v2.RandomAffine(degrees=0, translate=(0.15, 0.15))),
        ("shear", "v2.RandomAffine(degrees=0, shear=(-30, 30, -30, 30))",
         lambda: v2.RandomAffine(degrees=0, shear=(-30, 30, -30, 30))),
        ("random crop", "v2.RandomCrop(28, padding=4)", lambda: v2.RandomCrop(28, padding=4)),
        ("horizontal flip", "v2.RandomHorizontalFlip(p=0.5)", lambda: v2.RandomHorizontalFlip(p=0.5)),
        ("vertical flip", "v2.RandomVerticalFlip(p=0.5)", lambda: v2.RandomVerticalFlip(p=0.5)),
        ("brightness / contrast", "v2.ColorJitter(brightness=0.5, contrast=0.5)",
         lambda: v2.ColorJitter(brightness=0.5, contrast=0.5)),
        ("perspective", "v2.RandomPerspective(distortion_scale=0.4, p=1.0)",
         lambda: v2.RandomPerspective(distortion_scale=0.4, p=1.0)),
    ]


def augmentation_gallery(study: Study, figures, index: int = 0, draws: int = 6, seed: int = 0) -> dict[str, Any]:
    """One real test image under torchvision's v2 transforms, and under our batched ``random_affine`` exactly as
    training applies it; every random draw is seeded, so the figures never change."""
    from torchvision import tv_tensors
    from .data import DATASETS
    ds = _study_dataset(study)
    splits = dataset_splits(ds)
    original = splits.test_images[index]
    cls = splits.classes[int(splits.test_labels[index])]
    rows, transforms = [], []
    for i, (name, code, make) in enumerate(_torchvision_augmentations()):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + i)
            transform = make()
            outs = [transform(tv_tensors.Image(original.unsqueeze(0)))[0].numpy() for _ in range(draws)]
        rows.append((name, np.stack(outs)))
        transforms.append({"name": name, "code": code})
    fig = figures.augmentations(original.numpy(), rows, name="augmentation-torchvision",
                                title=f"torchvision.transforms.v2 on a {DATASETS[ds].title} test image ({cls}), "
                                      f"{draws} random draws each")
    # Our own batched augmentation: the study's settings if a variant trains with them, else a demonstration.
    params, source = dict(AUGMENT_DEMO), "demo"
    for v in study.config.variants:
        augment = study.config.resolve(v, 0, study.profile)["training"].get("augment")
        if augment:
            params = {k: (tuple(val) if isinstance(val, list) else val) for k, val in augment.items()}
            source = v.label or v.name
            break
    generator = torch.Generator().manual_seed(seed)
    batch = original.float().div(255).expand(draws * 2, 1, *original.shape).contiguous()
    augmented = random_affine(batch, generator, **params)[:, 0].clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    fig_affine = figures.augmentations(
        original.numpy(), [("random_affine", augmented)], name="augmentation-random-affine",
        title=f"reportgen.loader.random_affine: {len(augmented)} draws in one batched call")
    return {"image": {"dataset": ds, "title": DATASETS[ds].title, "index": index, "class": cls},
            "transforms": transforms, "draws": draws, "seed": seed, "figure": fig,
            "affine": {"params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
                       "translate_pct": 100 * params["translate"],
                       "translate_px": params["translate"] * original.shape[-1],
                       "source": source, "draws": int(len(augmented)), "figure": fig_affine}}


SINGLE_SHIFTS = (("original", 0, 0), ("lower right", 4, 1), ("upper left", -4, -1))


def shift_single(study: Study, figures) -> dict[str, Any]:
    """One test image moved 4 pixels right and 1 down, and 4 left and 1 up (``torch.roll``): what each variant's
    first-seed model predicts, and the probability of the true class (also averaged over every seed)."""
    variants = [v for v in study.available if v.dataset == study.available[0].dataset] if study.available else []
    if not variants:
        return {"variants": [], "shifts": [], "figure": None, "image": None, "seeds": 0}
    runs0 = [first_run(v) for v in variants]
    labels, _ = runs0[0].predictions()
    correct_all = np.ones(len(labels), dtype=bool)
    for r in runs0:
        y, p = r.predictions()
        if len(y) == len(labels):
            correct_all &= p.argmax(1) == y
    all_correct = bool(correct_all.any())
    index = int(np.flatnonzero(correct_all)[0]) if all_correct else 0
    images, labels_t = run_test_set(runs0[0])
    true = int(labels_t[index])
    stack = torch.stack([torch.roll(images[index], shifts=(dy, dx), dims=(-2, -1)) for _, dx, dy in SINGLE_SHIFTS])
    shifts = [{"name": n, "dx": dx, "dy": dy} for n, dx, dy in SINGLE_SHIFTS]
    classes = class_names(variants[0].dataset, runs0[0].predictions()[1].shape[1])
    rows = []
    for v in variants:
        per_seed = []
        for r in v.runs:
            with torch.inference_mode():
                per_seed.append(torch.softmax(load_model(r)(to_input(stack, normalization(r))), 1).numpy())
        p0 = per_seed[0]
        v_classes = class_names(v.dataset, p0.shape[1])
        results = []
        for j, s in enumerate(shifts):
            pred = int(p0[j].argmax())
            results.append({"shift": s["name"], "predicted": v_classes[pred], "predicted_prob_pct": _pct(p0[j, pred]),
                            "true_prob_pct": _pct(p0[j, true]), "correct": pred == true,
                            "true_prob_mean_pct": _pct(np.mean([p[j, true] for p in per_seed])),
                            "seeds_correct": int(sum(int(p[j].argmax()) == true for p in per_seed))})
        rows.append({**_variant_head(v, first_run(v)), "results": results})
    titles = [s["name"] + (f" (dx {s['dx']:+d}, dy {s['dy']:+d})" if s["dx"] or s["dy"] else "") for s in shifts]
    fig = figures.shift_triptych(stack.numpy(), titles, name="shift-single",
                                 title=f"One test image ({classes[true]}) moved with torch.roll")
    return {"image": {"index": index, "class": classes[true], "all_correct": all_correct}, "shifts": shifts,
            "figure": fig, "variants": rows, "seeds": max(len(v.runs) for v in variants)}


def _shift_grids(study: Study) -> list[tuple[VariantResults, Run, dict[str, Any]]]:
    return [(v, first_run(v), shift_grid_of(first_run(v), study=study)) for v in study.available]


def shift_grid(study: Study, figures) -> dict[str, Any]:
    """Test accuracy of each variant's first-seed model for every shift (dx, dy) of the whole test set, zero-filled
    and wrapped around, as heatmaps; the unshifted cell equals the model's test accuracy (checked)."""
    grids = _shift_grids(study)
    radius = SHIFT_RADIUS
    rows = []
    # One colour scale for every variant's heatmaps, from the lowest to the highest cell of any of them.
    low = min((float(min(g["zero"].min(), g["wrap"].min())) for _, _, g in grids), default=0.0)
    high = max((float(max(g["zero"].max(), g["wrap"].max())) for _, _, g in grids), default=1.0)
    for v, run, g in grids:
        zero, wrap = g["zero"] * 100, g["wrap"] * 100
        fig = figures.shift_heatmaps(zero, wrap, radius, vmin=100 * low, vmax=100 * max(high, low + 0.01),
                                     name=f"shift-grid-{v.name}",
                                     title=f"{v.label}: test accuracy (%) after moving every test image "
                                           f"(seed {run.seed})")
        axis = [{"dx": dx, "zero_pct": float(zero[radius, dx + radius]), "wrap_pct": float(wrap[radius, dx + radius])}
                for dx in range(-radius, radius + 1)]
        rows.append({**_variant_head(v, run), "zero": zero.tolist(), "wrap": wrap.tolist(), "figure": fig,
                     "center_pct": float(zero[radius, radius]), "test_acc_pct": _pct(run.metrics["test_acc"]),
                     "center_matches": g["center_delta_images"] == 0, "test_size": g["n"], "full_test_size": g["full"],
                     "subset": g["n"] < g["full"], "device": g["device"],
                     "mean_zero_pct": float(zero.mean()), "mean_wrap_pct": float(wrap.mean()),
                     "min_zero_pct": float(zero.min()), "min_wrap_pct": float(wrap.min()),
                     "max_diff_pct": float(np.abs(zero - wrap).max()), "axis": axis,
                     "corner_zero_pct": float(zero[0, 0]), "corner_wrap_pct": float(wrap[0, 0]),
                     "seconds": g["seconds"]})
    return {"basis": FIRST_SEED, "radius": radius, "shifts": (2 * radius + 1) ** 2, "variants": rows,
            "subset": any(r["subset"] for r in rows)}


def shift_curve(study: Study, figures) -> dict[str, Any]:
    """Accuracy against how far the image moved (√(dx² + dy²), rounded; averaged over the shifts at that distance),
    from the shift grids, one line per variant."""
    radius = SHIFT_RADIUS
    d = np.sqrt(np.add.outer(np.arange(-radius, radius + 1) ** 2, np.arange(-radius, radius + 1) ** 2))
    bins = np.rint(d).astype(int)
    rows, series = [], {}
    grids = _shift_grids(study)
    for v, run, g in grids:
        points = []
        for k in range(radius + 1):
            mask = bins == k
            points.append({"distance": k, "shifts": int(mask.sum()), "zero_pct": _pct(g["zero"][mask].mean()),
                           "wrap_pct": _pct(g["wrap"][mask].mean()), "min_zero_pct": _pct(g["zero"][mask].min())})
        series[v.label] = points
        rows.append({**_variant_head(v, run), "points": points, "start_pct": points[0]["zero_pct"],
                     "end_pct": points[-1]["zero_pct"], "drop_pct": points[0]["zero_pct"] - points[-1]["zero_pct"]})
    fig = figures.shift_curve(series, name="shift-curve",
                              title="Test accuracy against shift distance") if series else None
    sizes = sorted({(int(g["n"]), int(g["full"])) for _, _, g in grids})
    return {"basis": FIRST_SEED, "radius": radius, "variants": rows, "figure": fig,
            "subset": any(n < full for n, full in sizes), "test_sizes": [n for n, _ in sizes],
            "full_test_size": max((full for _, full in sizes), default=0)}


def per_class_f1(study: Study, figures) -> dict[str, Any]:
    """F1 of every class, mean over seeds with the min–max range, per variant (and so per dataset)."""
    from sklearn.metrics import f1_score
    rows = []
    for v in study.available:
        per_seed = []
        for r in v.runs:
            y, p = r.predictions()
            per_seed.append(f1_score(y, p.argmax(1), labels=list(range(p.shape[1])), average=None, zero_division=0))
        f1 = np.array(per_seed)
        classes = class_names(v.dataset, f1.shape[1])
        per_class = [{"name": c, "f1": float(f1[:, i].mean()), "min": float(f1[:, i].min()),
                      "max": float(f1[:, i].max())} for i, c in enumerate(classes)]
        order = sorted(per_class, key=lambda row: (row["f1"], row["name"]))
        rows.append({**_variant_head(v), "classes": per_class, "macro_f1": float(f1.mean(1).mean()),
                     "worst": order[0], "best": order[-1]})
    fig = figures.per_class_f1([(r["label"], r["dataset"], r["classes"]) for r in rows], name="per-class-f1",
                               title="F1 per class (mean over seeds, bars: min–max)") if rows else None
    return {"basis": "mean over every seed", "variants": rows, "figure": fig}


ANALYSES: dict[str, Callable[[Study, Any], dict[str, Any]]] = {
    "curves": curves,
    "report": report,
    "confusion": confusion,
    "misclassified": misclassified,
    "samples": samples,
    "architecture": architecture,
    "filters": filters,
    "feature_maps": feature_maps,
    "activation_stats": activation_stats,
    "kernels": kernels,
    "output_size": output_size,
    "augmentation_gallery": augmentation_gallery,
    "shift_single": shift_single,
    "shift_grid": shift_grid,
    "shift_curve": shift_curve,
    "per_class_f1": per_class_f1,
}
