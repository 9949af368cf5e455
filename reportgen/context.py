"""What a post says about how its numbers were made: the setup (data, models, training, seeds per variant) and
the reproduce box (command, seeds, epochs, device, versions, wall time, commit). Plain data for the templates."""
from __future__ import annotations

from typing import Any

from .settings import DATASET_TITLES, DATASET_TRAIN_SIZE, IMAGE_SIZE, VAL_SIZE
from .study import Study
from .zoo import describe_model


def reproducibility(study: Study, profile: str) -> dict[str, Any]:
    """What a reader needs to rerun the study: command, seeds, epochs, device, versions, wall time, commit."""
    runs = [r for v in study.available for r in v.runs]
    if not runs:  # an illustration (trains: false), or every variant unavailable: what rendering used
        from .train import git_commit, versions
        return {
            "command": f"reportgen render {study.id} --profile {profile}", "profile": profile, "runs": 0,
            "seeds": [], "epochs": [], "devices": ["cpu (rendering only; nothing is trained)"],
            "versions": versions(), "wall_seconds": 0.0, "commits": [git_commit() or "not a git checkout"],
            "train_sizes": [],
        }
    records = [r.record for r in runs]
    commits = sorted({rec.get("git_commit") or "not a git checkout" for rec in records})
    return {
        "command": f"reportgen run {study.id} --profile {profile} && reportgen build --profile {profile}",
        "profile": profile, "runs": len(runs),
        "seeds": sorted({r.seed for r in runs}),
        "epochs": sorted({len(r.history["epochs"]) for r in runs}),
        "devices": sorted({rec["device"] for rec in records}),
        "versions": records[0]["versions"],
        "wall_seconds": sum(rec["wall_seconds"] for rec in records),
        "commits": commits,
        "train_sizes": sorted({rec.get("train_size") for rec in records if rec.get("train_size")}),
    }


# ---- what each variant is ----------------------------------------------------------------------------------
def describe_training(training: dict[str, Any], epochs: bool = True) -> str:
    """One line for a resolved training config (what the setup table says); without the number of epochs when
    ``epochs`` is false (the setup table then gives them in a column of their own)."""
    parts = [f"{training['optimizer'].upper() if training['optimizer'] == 'sgd' else 'Adam'}, "
             f"learning rate {training['lr']:g}"]
    if training["optimizer"] == "sgd" and training["momentum"]:
        parts.append(f"momentum {training['momentum']:g}")
    if training["weight_decay"]:
        parts.append(f"weight decay {training['weight_decay']:g}")
    parts.append(f"batch size {training['batch_size']}")
    if epochs:
        parts.append(f"{training['epochs']} epoch{'s' if training['epochs'] != 1 else ''}")
    schedule = training.get("schedule", "none")
    if schedule == "step":
        parts.append(f"learning rate × {training['gamma']:g} every {training['step_size']} epochs")
    elif schedule == "cosine":
        parts.append("cosine learning-rate schedule")
    elif schedule == "onecycle":
        parts.append(f"one-cycle schedule per batch (peak at the learning rate after "
                     f"{100 * training.get('pct_start', 0.3):g}% of the steps)")
    elif schedule == "warmup_cosine":
        warmup = training.get("warmup_epochs", 1)
        parts.append(f"{warmup:g} epoch{'s' if warmup != 1 else ''} of linear warmup, then a cosine decay per batch")
    if training.get("label_smoothing"):
        parts.append(f"label smoothing {training['label_smoothing']:g}")
    return ", ".join(parts)


def describe_augment(augment: dict[str, Any] | None) -> str:
    if not augment:
        return "none"
    parts = []
    if augment.get("rotation"):
        parts.append(f"rotation ±{augment['rotation']:g}°")
    if augment.get("translate"):
        parts.append(f"shift ±{100 * augment['translate']:g}% of the image")
    scale = augment.get("scale") or (1.0, 1.0)
    if tuple(scale) != (1.0, 1.0):
        parts.append(f"scale {scale[0]:g}–{scale[1]:g}")
    if augment.get("shear"):
        parts.append(f"shear ±{augment['shear']:g}°")
    return ", ".join(parts) or "none"


def setup(exp: Any, study: Study, profile: str) -> dict[str, Any]:
    """Per-variant resolved model and training (seed 0 of the profile), and the profile's data budget."""
    prof = exp.profile(profile)
    full = exp.profile("full")
    rows = []
    for v, result in zip(exp.variants, study.variants):
        config = exp.resolve(v, prof["seeds"][0], profile)
        model = describe_model(config["model"])
        epochs = config["training"]["epochs"]
        rows.append({
            "name": v.name, "label": result.label, "description": v.description, "optional": v.optional,
            "dataset": config["dataset"], "dataset_name": DATASET_TITLES.get(config["dataset"], config["dataset"]),
            "model": model, "parameters": model["parameters"], "macs": model["macs"], "epochs": epochs,
            "training": describe_training(config["training"], epochs=False),
            "augment": describe_augment(config["training"].get("augment")),
            "max_shift": (config["training"].get("augment") or {}).get("translate", 0.0) * IMAGE_SIZE,
            "unavailable": result.unavailable,
        })
    trainings = {r["training"] for r in rows}
    epochs = sorted({r["epochs"] for r in rows})
    first = next((r for v in study.available for r in v.runs), None)
    val_size = first.config["val_size"] if first else VAL_SIZE
    train_total = DATASET_TRAIN_SIZE - val_size
    test_sizes = sorted({r.metrics["test_size"] for v in study.available for r in v.runs})
    return {
        # one training line for all variants when they share it; the epochs join it when they share those too,
        # else they are a column of their own (a variant may train longer to converge)
        "variants": rows, "training": rows[0]["training"] if len(trainings) == 1 and rows else None,
        "epochs_vary": len(epochs) > 1,
        "augmented": any(r["augment"] != "none" for r in rows),
        "datasets": list(dict.fromkeys(r["dataset_name"] + (" (left out)" if r["unavailable"] else "") for r in rows)),
        "seeds": prof["seeds"], "epochs": epochs[0] if len(epochs) == 1 else prof["epochs"],
        "train_limit": prof["train_limit"],
        "eval_limit": prof["eval_limit"], "train_total": train_total,
        "val_size": min(val_size, prof["eval_limit"]) if prof["eval_limit"] else val_size,
        "test_sizes": test_sizes,
        "full": {"seeds": full["seeds"], "epochs": full["epochs"], "train_limit": full["train_limit"]},
    }
