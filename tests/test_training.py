"""Training recipes: the per-batch schedules (onecycle, warmup_cosine) follow their shape and are stepped once per
batch, label smoothing reaches the training loss, and the new training fields leave every shipped study's resolved
config (hashed into its cache key) byte for byte as it was. Tiny synthetic data only: a few seconds in all."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from reportgen import train
from reportgen.config import ConfigError, TrainingConfig, load_study
from reportgen.loader import to_input
from reportgen.models import build_model
from tests.conftest import ROOT
from tests.synthetic import make_split
from tests.test_models import all_resolved

BATCH = 32
N_TRAIN = 8 * BATCH  # 8 batches per epoch


@pytest.fixture(scope="module")
def splits():
    """Train / validation / test tensors of the learnable synthetic images, as reportgen.data.Splits holds them."""
    def part(n, seed):
        images, labels = make_split(n, seed)
        return torch.from_numpy(images), torch.from_numpy(labels).long()
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = part(N_TRAIN, 1), part(64, 2), part(64, 3)
    return SimpleNamespace(train_images=train_x, train_labels=train_y, val_images=val_x, val_labels=val_y,
                           test_images=test_x, test_labels=test_y)


def run_config(**training) -> dict:
    """A resolved run config (as StudyConfig.resolve writes it) of the tiny model."""
    training = {"batch_size": BATCH, "epochs": 1, **training}
    return {"dataset": "fashion-mnist", "model": {"name": "tiny", "options": {}},
            "training": TrainingConfig.model_validate(training).resolved(), "seed": 0, "train_limit": None,
            "eval_limit": None}


def train_recording_lr(monkeypatch, splits, **training):
    """Train once; return the scheduler and the learning rate of every batch (and the one after the last step)."""
    seen: dict = {"lrs": []}
    make = train.make_schedule

    def spy(optimizer, cfg, steps_per_epoch):
        schedule = make(optimizer, cfg, steps_per_epoch)
        seen["schedule"], seen["optimizer"] = schedule, optimizer
        seen["lrs"].append(optimizer.param_groups[0]["lr"])
        step = schedule.step

        def recorded_step(*args, **kwargs):
            step(*args, **kwargs)
            seen["lrs"].append(optimizer.param_groups[0]["lr"])
        schedule.step = recorded_step
        return schedule
    monkeypatch.setattr(train, "make_schedule", spy)
    train.train_run(run_config(**training), splits, torch.device("cpu"))
    return seen


# ---- schedules ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_onecycle_is_stepped_per_batch_and_rises_to_lr_then_anneals(monkeypatch, splits):
    lr, epochs, steps = 0.02, 3, 8
    seen = train_recording_lr(monkeypatch, splits, optimizer="sgd", lr=lr, epochs=epochs, schedule="onecycle",
                              pct_start=0.25, div_factor=10.0, final_div_factor=100.0)
    total = epochs * steps
    assert seen["schedule"].last_epoch == total and len(seen["lrs"]) == total + 1
    used = seen["lrs"][:total]  # the rate of each batch
    peak = round(0.25 * total) - 1
    assert used[0] == pytest.approx(lr / 10)
    assert used[peak] == pytest.approx(lr) and max(used) == pytest.approx(lr)
    assert all(a < b for a, b in zip(used[:peak], used[1:peak + 1]))      # rising to the peak
    assert all(a > b for a, b in zip(used[peak:], used[peak + 1:]))       # annealing after it
    assert used[-1] == pytest.approx(lr / 10 / 100)
    # only the learning rate is scheduled: SGD's momentum stays what the config says
    assert seen["optimizer"].param_groups[0]["momentum"] == 0.9


@pytest.mark.slow
def test_onecycle_after_one_epoch_has_stepped_once_per_batch(monkeypatch, splits):
    seen = train_recording_lr(monkeypatch, splits, lr=0.01, epochs=1, schedule="onecycle")
    assert seen["schedule"].last_epoch == N_TRAIN // BATCH


@pytest.mark.slow
def test_warmup_cosine_rises_linearly_for_the_warmup_then_follows_a_cosine_to_zero(monkeypatch, splits):
    lr, epochs, steps = 0.01, 3, 8
    seen = train_recording_lr(monkeypatch, splits, lr=lr, epochs=epochs, schedule="warmup_cosine", warmup_epochs=1)
    total, warmup = epochs * steps, steps
    assert seen["schedule"].last_epoch == total and len(seen["lrs"]) == total + 1
    used = seen["lrs"][:total]
    assert used[:warmup] == pytest.approx([lr * (s + 1) / warmup for s in range(warmup)])
    cosine = [lr * 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup))) for s in range(warmup, total)]
    assert used[warmup:] == pytest.approx(cosine)
    assert used[warmup + (total - warmup) // 2] == pytest.approx(lr / 2)
    assert 0 < used[-1] < lr / 50


@pytest.mark.slow
def test_warmup_longer_than_training_spends_every_batch_warming_up(monkeypatch, splits):
    seen = train_recording_lr(monkeypatch, splits, lr=0.01, epochs=1, schedule="warmup_cosine", warmup_epochs=3)
    assert seen["lrs"][:8] == pytest.approx([0.01 * (s + 1) / 8 for s in range(8)])


@pytest.mark.slow
def test_per_epoch_schedules_still_step_once_per_epoch(monkeypatch, splits):
    seen = train_recording_lr(monkeypatch, splits, lr=0.01, epochs=2, schedule="cosine")
    assert seen["schedule"].last_epoch == 2 and seen["lrs"] == pytest.approx([0.01, 0.005, 0.0])


# ---- label smoothing -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_label_smoothing_reaches_the_training_loss_and_only_it(splits):
    """With a learning rate of 0 the network never changes, so the epoch's training loss is the smoothed
    cross-entropy of the initial network over the training set; validation loss stays plain cross-entropy."""
    def run(smoothing):
        return train.train_run(run_config(optimizer="sgd", lr=1e-30, momentum=0.0, label_smoothing=smoothing),
                               splits, torch.device("cpu"))
    plain, smoothed = run(0.0), run(0.2)
    model = build_model("tiny")
    model.load_state_dict(smoothed.best_state)
    with torch.no_grad():
        logits = model(to_input(splits.train_images, smoothed.norm))
    expected = float(F.cross_entropy(logits, splits.train_labels, label_smoothing=0.2))
    unsmoothed = float(F.cross_entropy(logits, splits.train_labels))
    assert abs(expected - unsmoothed) > 1e-3  # the check below can tell the two apart
    assert smoothed.history[0]["train_loss"] == pytest.approx(expected, rel=1e-5)
    assert plain.history[0]["train_loss"] == pytest.approx(unsmoothed, rel=1e-5)
    assert smoothed.history[0]["val_loss"] == pytest.approx(plain.history[0]["val_loss"], rel=1e-6)


# ---- training fields at their default never reach the resolved config (it is hashed into the cache key) -----
@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "experiments").glob("*.yaml") if "." not in p.stem),
                         ids=lambda p: p.name)
def test_shipped_studies_never_resolve_a_training_field_at_its_default(path):
    from reportgen.run_schema import TRAINING_OMITTED_AT_DEFAULT
    for config in all_resolved(load_study(path)):
        for key in TRAINING_OMITTED_AT_DEFAULT:
            default = TrainingConfig.model_fields[key].get_default(call_default_factory=True)
            assert config["training"].get(key, object()) != default, (path.name, key)


OLD_TRAINING_FIELDS = ["optimizer", "lr", "momentum", "weight_decay", "batch_size", "epochs", "schedule", "step_size",
                       "gamma", "augment"]
STUDY = """\
id: s
title: S
training: {training}
variants:
  - {{name: a}}
  - {{name: b, training: {variant}}}
"""


def resolved_training(tmp_path, training: str, variant: str = "{}") -> dict:
    path = tmp_path / "s.yaml"
    path.write_text(STUDY.format(training=training, variant=variant))
    exp = load_study(path)
    return exp.resolve(exp.variant("b"), 0, "smoke")["training"]


def test_new_training_fields_written_at_their_default_keep_the_cache_key(tmp_path):
    written = resolved_training(tmp_path, "{label_smoothing: 0.0, warmup_epochs: 1, pct_start: 0.3, div_factor: 25.0, "
                                          "final_div_factor: 10000.0}")
    assert list(written) == OLD_TRAINING_FIELDS
    assert written == resolved_training(tmp_path, "{}")


def test_new_training_fields_away_from_their_default_are_in_the_resolved_config(tmp_path):
    training = resolved_training(tmp_path, "{schedule: onecycle, pct_start: 0.25}", "{label_smoothing: 0.1}")
    assert training["schedule"] == "onecycle" and training["pct_start"] == 0.25 and training["label_smoothing"] == 0.1
    assert "div_factor" not in training and "warmup_epochs" not in training
    cosine = resolved_training(tmp_path, "{schedule: warmup_cosine, warmup_epochs: 2}")
    assert cosine["warmup_epochs"] == 2


def test_a_variant_inherits_the_studys_recipe(tmp_path):
    """A regulariser study compares like with like: the variant trains with the study's schedule and smoothing."""
    path = tmp_path / "s.yaml"
    path.write_text(STUDY.format(training="{schedule: warmup_cosine, warmup_epochs: 2, label_smoothing: 0.1}",
                                 variant="{weight_decay: 0.0005}"))
    exp = load_study(path)
    a, b = (exp.resolve(exp.variant(n), 0, "quick")["training"] for n in ("a", "b"))
    assert {**a, "weight_decay": 0.0005} == b and b["schedule"] == "warmup_cosine" and b["label_smoothing"] == 0.1


@pytest.mark.parametrize("training,fragment", [
    ("{schedule: cosine, pct_start: 0.5}", "pct_start applies to schedule: onecycle only (schedule is cosine)"),
    ("{warmup_epochs: 2}", "warmup_epochs applies to schedule: warmup_cosine only (schedule is none)"),
    ("{label_smoothing: 1.0}", "training.label_smoothing: must be less than 1"),
    ("{schedule: one_cycle}", "did you mean 'onecycle'?"),
])
def test_a_bad_training_field_is_one_line_naming_it(tmp_path, training, fragment):
    path = tmp_path / "s.yaml"
    path.write_text(STUDY.format(training=training, variant="{}"))
    with pytest.raises(ConfigError) as err:
        load_study(path)
    assert fragment in str(err.value) and "\n" not in str(err.value)
