"""Transition shim: the analyses that have not yet moved into ``reportgen/analyses/<name>.py``.

Statistics live in :mod:`reportgen.stats`, results in :mod:`reportgen.study`, shared machinery in
:mod:`reportgen.analyses._common` and the shift grid in :mod:`reportgen.analyses._shift`.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from markupsafe import Markup
from torch import nn

from .analyses._common import (  # noqa: F401
    FIRST_SEED, Activations, AnalysisError, analysis_device, build_spec, cached_arrays, capture_activations,
    class_examples, class_names, dataset_splits, first_run, forward_logits, layer_table, load_model, model_specs,
    normalization, pct, run_test_set, shape_text, study_dataset, variant_head, architecture_table,
    output_size_rows, layer_details)
from .analyses._shift import shift_accuracy_grid, shift_grid_of, shift_images, shift_images_limit  # noqa: F401
from .loader import random_affine, to_input
from .settings import EVAL_BATCH, IMAGE_SIZE, SHIFT_RADIUS
from .stats import (ACCURACY_WORDS, ACROSS_DATASETS_WORDS, CONFIDENCE, DATASET_NAMES, GAP_WORDS,  # noqa: F401
                    final_gap, mean_ci, paired_difference, summary, test_accuracy, verdict)
from .store import Run
from .study import Study, VariantResults  # noqa: F401

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


# ---- the analyses -------------------------------------------------------------------------------------------------
def curves(study: Study, figures) -> dict[str, Any]:
    """Train and validation loss/accuracy per epoch: mean over seeds with a min–max band, per variant."""
    series, rows = {}, []
    for v in study.available:
        per_seed = {key: np.array([[row[key] for row in r.history["epochs"]] for r in v.runs])
                    for key in ("train_loss", "val_loss", "train_acc", "val_acc")}
        series[v.label] = per_seed
        rows.append({**variant_head(v), "epochs": int(per_seed["val_acc"].shape[1]),
                     "final_train_acc_pct": pct(per_seed["train_acc"][:, -1].mean()),
                     "final_val_acc_pct": pct(per_seed["val_acc"][:, -1].mean()),
                     "best_val_acc_pct": pct(per_seed["val_acc"].max(1).mean())})
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
        rows.append({**variant_head(v, run), **numbers, "test_size": int(len(labels)),
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
        rows.append({**variant_head(v, run), "classes": classes, "counts": counts.tolist(),
                     "normalised": normalised.tolist(), "support": support.tolist(),
                     "recall_pct": [pct(x) for x in np.diag(normalised)],
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
                  "confidence_pct": pct(confidence[i]), "true_prob_pct": pct(probs[i, labels[i]])} for i in order]
        fig = None
        if shown:
            fig = figures.misclassified(images[order].numpy(), shown, name=f"misclassified-{v.name}",
                                        title=f"{v.label}: the {len(shown)} most confident mistakes (seed {run.seed})")
        rows.append({**variant_head(v, run), "errors": int(len(wrong)), "test_size": int(len(labels)),
                     "error_pct": pct(len(wrong) / max(1, len(labels))), "shown": shown, "figure": fig})
    return {"basis": FIRST_SEED, "variants": rows}


def samples(study: Study, figures, per_class: int = 8) -> dict[str, Any]:
    """A grid of the first ``per_class`` training images of every class, for each dataset of the study."""
    from .data import DATASETS
    datasets = list(dict.fromkeys(v.dataset for v in study.available)) or [study_dataset(study)]
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
    for spec in model_specs(study):
        model = build_spec(spec)
        table = architecture_table(model, spec["options"].get("in_channels", 1))
        models.append({**spec, **table})
    return {"models": models}


def output_size(study: Study, figures) -> dict[str, Any]:
    """The output-size formula worked for every convolution and pooling layer, from the real module attributes,
    with the size the forward pass really produces."""
    models = []
    for spec in model_specs(study):
        model = build_spec(spec)
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
            layers.append({"name": name, "shape": shape_text(w.shape), "out_channels": out_c, "in_channels": in_c,
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
        rows.append({**variant_head(v, run), "layers": layers, "linear": linear})
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
        examples = class_examples(labels, len(classes))
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
                     f"({classes[labels[example]]}): output {shape_text(values.shape)}")
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
                           "shape": shape_text(values.shape), "min": float(values.min()), "max": float(values.max()),
                           "zero_pct": pct((values == 0).mean()), "figure": fig,
                           "identity_at_test": isinstance(module, (nn.Dropout, nn.Identity, nn.Flatten))})
        # The overview leaves out layers that only pass their input on at test time.
        overview_layers = [(n, acts[n].numpy()) for n, m in table
                           if not isinstance(m, (nn.Dropout, nn.Identity, nn.Flatten))]
        overview = figures.feature_overview(
            images[examples].numpy(), overview_layers, [classes[labels[i]] for i in examples],
            name=f"features-{v.name}-overview",
            title=f"{v.label}: every layer for one test image of each class (seed {run.seed})")
        pred = int(out_probs[0].argmax())
        rows.append({**variant_head(v, run),
                     "example": {"index": example, "class": classes[labels[example]], "predicted": classes[pred],
                                 "confidence_pct": pct(out_probs[0, pred]), "correct": pred == labels[example]},
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
                           "zero_pct": pct(stats["zeros"][i] / stats["count"][i]),
                           "mean": float(stats["sum"][i] / stats["count"][i]), "min": float(stats["min"][i]),
                           "max": float(stats["max"][i]), "units": int(stats["units"][i]),
                           "dead": int(stats["dead"][i])})
        relus = [row for row in layers if row["is_relu"]]
        if relus:
            relu_series[v.label] = [(row["name"], row["zero_pct"]) for row in relus]
        rows.append({**variant_head(v, run), "images": int(run.metrics["test_size"]), "layers": layers,
                     "relu": relus})
    fig = figures.zero_fractions(relu_series, name="activation-zeros",
                                 title="Share of zeros after each ReLU over the test set") if relu_series else None
    return {"basis": FIRST_SEED, "variants": rows, "figure": fig}


def kernels(study: Study, figures, index: int = 0) -> dict[str, Any]:
    """Four hand-made 3×3 kernels applied with ``torch.nn.functional.conv2d`` to a real test image."""
    from .data import DATASETS
    ds = study_dataset(study)
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
    ds = study_dataset(study)
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
            results.append({"shift": s["name"], "predicted": v_classes[pred], "predicted_prob_pct": pct(p0[j, pred]),
                            "true_prob_pct": pct(p0[j, true]), "correct": pred == true,
                            "true_prob_mean_pct": pct(np.mean([p[j, true] for p in per_seed])),
                            "seeds_correct": int(sum(int(p[j].argmax()) == true for p in per_seed))})
        rows.append({**variant_head(v, first_run(v)), "results": results})
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
        rows.append({**variant_head(v, run), "zero": zero.tolist(), "wrap": wrap.tolist(), "figure": fig,
                     "center_pct": float(zero[radius, radius]), "test_acc_pct": pct(run.metrics["test_acc"]),
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
            points.append({"distance": k, "shifts": int(mask.sum()), "zero_pct": pct(g["zero"][mask].mean()),
                           "wrap_pct": pct(g["wrap"][mask].mean()), "min_zero_pct": pct(g["zero"][mask].min())})
        series[v.label] = points
        rows.append({**variant_head(v, run), "points": points, "start_pct": points[0]["zero_pct"],
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
        rows.append({**variant_head(v), "classes": per_class, "macro_f1": float(f1.mean(1).mean()),
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
