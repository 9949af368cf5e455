"""The core pipeline on synthetic IDX data: training engine, results store, cache, CLI run/render/build."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from reportgen import fsutil
from reportgen.config import load_study
from reportgen.data import load_splits
from reportgen.loader import DeviceLoader, Normalization, random_affine
from reportgen.store import MARKER, RUN_FILES, Store, check_run
from reportgen.train import TrainingError, train_run
from tests.conftest import ROOT, invoke


def smoke_config(**training):
    exp = load_study(ROOT / "experiments" / "dropout.yaml")
    config = exp.resolve(exp.variants[0], seed=0, profile="smoke")
    config["training"].update(training)
    return config


@pytest.mark.slow
def test_same_seed_gives_identical_history(data_root):
    splits = load_splits("fashion-mnist")
    config = smoke_config(epochs=2)
    first = train_run(config, splits, torch.device("cpu"))
    second = train_run(config, splits, torch.device("cpu"))
    assert first.history == [{**r, "seconds": s["seconds"]} for r, s in zip(second.history, first.history)]
    assert np.array_equal(first.test_probs, second.test_probs)
    other = train_run({**config, "seed": 1}, splits, torch.device("cpu"))
    assert other.history[0]["train_loss"] != first.history[0]["train_loss"]


@pytest.mark.slow
def test_training_learns_the_synthetic_task(data_root):
    splits = load_splits("fashion-mnist")
    out = train_run(smoke_config(epochs=3, lr=0.003), splits, torch.device("cpu"))
    assert out.test_acc > 0.5  # chance is 0.1
    assert out.best_epoch == 1 + int(np.argmax([h["val_acc"] for h in out.history]))


@pytest.mark.slow
def test_non_finite_loss_stops_with_names(data_root):
    splits = load_splits("fashion-mnist")
    with pytest.raises(TrainingError, match=r"dropout/no-dropout/seed-0: loss became (nan|inf) at epoch 1"):
        train_run(smoke_config(lr=1e30, optimizer="sgd"), splits, torch.device("cpu"), name="dropout/no-dropout/seed-0")


def test_loader_yields_every_image_once_per_epoch_in_seeded_order():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1).expand(10, 28, 28).contiguous()
    labels = torch.arange(10)
    norm = Normalization(mean=0.0, std=1.0)
    first = [y.tolist() for _, y in DeviceLoader(images, labels, 4, norm, shuffle=True, seed=3)]
    again = [y.tolist() for _, y in DeviceLoader(images, labels, 4, norm, shuffle=True, seed=3)]
    assert first == again and sorted(sum(first, [])) == list(range(10)) and [len(b) for b in first] == [4, 4, 2]


def test_batched_affine_is_per_sample_and_identity_when_ranges_are_zero():
    x = torch.rand(8, 1, 28, 28)
    g = torch.Generator().manual_seed(0)
    assert torch.allclose(random_affine(x, g), x, atol=1e-5)
    same = x[:1].expand(8, 1, 28, 28)
    out = random_affine(same, g, rotation=30, translate=0.1, scale=(0.9, 1.1), shear=10)
    assert out.shape == same.shape and not torch.allclose(out[0], out[1])


def test_atomic_write_leaves_old_bytes_and_no_temp_file_when_it_fails(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "metrics.json"
    fsutil.atomic_write(target, b"old")
    assert target.read_bytes() == b"old"

    def full_disk(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(fsutil.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        fsutil.atomic_write(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old" and sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]
    fsutil.atomic_write(target, b"new")
    assert target.read_bytes() == b"new" and fsutil.sha256_file(target) == fsutil.sha256_bytes(b"new")


def test_swap_dir_replaces_by_renames_and_puts_the_old_copy_back_if_moving_in_fails(tmp_path, monkeypatch):
    final, aside = tmp_path / "site", tmp_path / ".site-old"

    def folder(name: str, text: str) -> Path:
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.html").write_text(text)
        return tmp_path / name
    fsutil.swap_dir(folder("new1", "one"), final, aside)  # nothing to move aside
    (aside / "stale").mkdir(parents=True)  # left by an earlier interrupted swap
    fsutil.swap_dir(folder("new2", "two"), final, aside)
    assert (final / "index.html").read_text() == "two" and sorted(p.name for p in tmp_path.iterdir()) == ["site"]
    real = fsutil.os.replace

    def refuse_moving_in(src, dst):
        if Path(src).name == "new3":
            raise OSError(18, "Invalid cross-device link")
        real(src, dst)
    monkeypatch.setattr(fsutil.os, "replace", refuse_moving_in)
    with pytest.raises(OSError, match="cross-device"):
        fsutil.swap_dir(folder("new3", "three"), final, aside)
    assert (final / "index.html").read_text() == "two" and not aside.exists()


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory, synthetic_idx) -> Path:
    """The dropout study's smoke runs, trained once for the module by `reportgen run` (on the same synthetic
    data as the ``project`` fixture's, so the copies are cached runs there)."""
    from reportgen.provision import provision
    base = tmp_path_factory.mktemp("smoke-results")
    (base / "experiments").mkdir()
    shutil.copy(ROOT / "experiments" / "dropout.yaml", base / "experiments")
    with pytest.MonkeyPatch.context() as m:
        m.setenv("REPORTGEN_DATA", str(base / "data"))
        m.setenv("REPORTGEN_SKIP_CHECKSUM", "1")
        m.setenv("REPORTGEN_OFFLINE", "1")
        m.delenv("REPORTGEN_RESULTS", raising=False)
        m.chdir(base)
        provision("fashion-mnist", base / "data", from_dir=synthetic_idx, skip_checksum=True, allow_download=False,
                  allow_install=False, log=lambda *_: None)
        result = invoke("run", "--profile", "smoke")
    assert result.exit_code == 0, result.output
    return base / "results"


@pytest.fixture
def trained(project, smoke_results) -> Path:
    """``project`` with the dropout study's smoke runs in its results (as if `reportgen run` had trained them)."""
    shutil.copytree(smoke_results, project / "results")
    return project


@pytest.mark.slow
def test_run_caches_and_force_retrains(project):
    result = invoke("run", "--profile", "smoke")
    assert result.exit_code == 0, result.output
    run_dir = project / "results" / "dropout" / "no-dropout" / "seed-0"
    assert check_run(run_dir).status == "complete"
    weights_mtime = (run_dir / "weights.safetensors").stat().st_mtime_ns
    again = invoke("run", "--profile", "smoke")
    assert "2 of 2 runs cached; 0 to run" in again.output
    assert (run_dir / "weights.safetensors").stat().st_mtime_ns == weights_mtime
    forced = invoke("run", "--profile", "smoke", "--force")
    assert "2 of 2 runs cached; 2 to run" in forced.output and "identical run found" not in forced.output
    assert (run_dir / "weights.safetensors").stat().st_mtime_ns != weights_mtime


@pytest.mark.slow
def test_forced_rerun_reproduces_the_same_numbers(trained):
    project = trained
    run_dir = project / "results" / "dropout" / "dropout" / "seed-0"
    before = (run_dir / "metrics.json").read_text(), (run_dir / "predictions.npz").read_bytes()
    invoke("run", "--profile", "smoke", "--force")
    assert ((run_dir / "metrics.json").read_text(), (run_dir / "predictions.npz").read_bytes()) == before


@pytest.mark.slow
def test_changed_config_makes_the_run_stale(trained):
    project = trained
    path = project / "experiments" / "dropout.yaml"
    study = yaml.safe_load(path.read_text())
    study["training"]["lr"] *= 2
    path.write_text(yaml.safe_dump(study, sort_keys=False, allow_unicode=True))
    result = invoke("run", "--profile", "smoke")
    assert "stale" in result.output and "0 of 2 runs cached" in result.output


@pytest.mark.slow
def test_a_replaced_run_is_kept_rendered_from_and_restored_without_training(trained):
    """Switching a config (or a profile) back and forth never retrains: the run a changed config replaced is kept
    under .kept/, `render` reads it meanwhile, and `run` moves it back byte for byte."""
    project = trained
    store = Store(project / "results")
    slot = store.run_dir("dropout", "no-dropout", 0)
    original = {name: (slot / name).read_bytes() for name in RUN_FILES}
    old_key = json.loads((slot / MARKER).read_text())["cache_key"]
    path = project / "experiments" / "dropout.yaml"
    text = path.read_text()
    study = yaml.safe_load(text)
    study["training"]["lr"] *= 2
    path.write_text(yaml.safe_dump(study, sort_keys=False, allow_unicode=True))
    changed = invoke("run", "--profile", "smoke")
    assert changed.exit_code == 0 and "0 of 2 runs cached; 2 to run" in changed.output, changed.output
    assert "stale" in changed.output and "the run there is kept" in changed.output
    kept = slot.parent / ".kept" / f"seed-0-{old_key}"
    assert check_run(kept, old_key).status == "complete"
    assert {name: (kept / name).read_bytes() for name in RUN_FILES} == original
    assert (slot / "config.json").read_bytes() != original["config.json"]

    path.write_text(text)  # back to the original config: render reads the kept runs, nothing is trained
    rendered = invoke("render", "--profile", "smoke")
    assert rendered.exit_code == 0, rendered.output
    acc = json.loads(original["metrics.json"])["test_acc"] * 100
    assert f"{acc:.1f}" in (project / "docs" / "blog" / "posts" / "dropout.md").read_text()
    listed = invoke("list", "--profile", "smoke")
    assert "seed-0:kept" in listed.output and "2/2 runs cached" in listed.output, listed.output
    restored = invoke("run", "--profile", "smoke")
    assert restored.exit_code == 0 and restored.output.count("restoring the run kept from before") == 2, restored.output
    assert "2 of 2 runs cached (2 kept from another config or profile" in restored.output
    assert "; 0 to run" in restored.output
    assert {name: (slot / name).read_bytes() for name in RUN_FILES} == original and not kept.exists()
    assert len(store.kept_runs("dropout", "no-dropout", 0)) == 1  # the doubled-lr run, kept in its turn
    assert "2 of 2 runs cached; 0 to run" in invoke("run", "--profile", "smoke").output


@pytest.mark.slow
def test_force_retraining_a_kept_config_supersedes_the_kept_run(trained):
    """A kept run that --force retrains is gone from .kept/: switching away and back restores the newer run."""
    project = trained
    slot = Store(project / "results").run_dir("dropout", "no-dropout", 0)
    old_key = json.loads((slot / MARKER).read_text())["cache_key"]
    path = project / "experiments" / "dropout.yaml"
    text = path.read_text()
    study = yaml.safe_load(text)
    study["training"]["lr"] *= 2
    changed = yaml.safe_dump(study, sort_keys=False, allow_unicode=True)
    path.write_text(changed)
    invoke("run", "--profile", "smoke")  # the original run is kept
    path.write_text(text)
    forced = invoke("run", "--profile", "smoke", "--force")  # retrained, although a kept copy exists
    assert forced.exit_code == 0 and "kept from another config" not in forced.output, forced.output
    newer = (slot / "run.json").read_bytes()
    assert not (slot.parent / ".kept" / f"seed-0-{old_key}").exists()
    path.write_text(changed)
    invoke("run", "--profile", "smoke")
    path.write_text(text)
    assert "restoring the run kept from before" in invoke("run", "--profile", "smoke").output
    assert (slot / "run.json").read_bytes() == newer


@pytest.mark.slow
def test_interrupted_run_is_not_complete_and_is_rerun(trained):
    project = trained
    run_dir = project / "results" / "dropout" / "no-dropout" / "seed-0"
    (run_dir / MARKER).unlink()  # as if killed before the marker was written
    staging = run_dir.parent / ".seed-0.partial-999999"
    staging.mkdir()
    (staging / "config.json").write_text("{}")
    assert check_run(run_dir).status == "incomplete"
    result = invoke("run", "--profile", "smoke")
    assert "incomplete" in result.output and "1 of 2 runs cached" in result.output
    assert check_run(run_dir).status == "complete" and not staging.exists()


@pytest.mark.slow
def test_edited_result_file_is_detected_and_rerun(trained):
    project = trained
    run_dir = project / "results" / "dropout" / "dropout" / "seed-0"
    metrics = run_dir / "metrics.json"
    metrics.write_text(metrics.read_text().replace('"test_acc": 0', '"test_acc": 1'))
    state = check_run(run_dir)
    assert state.status == "corrupt" and "metrics.json" in state.reason
    result = invoke("run", "--profile", "smoke")
    assert "corrupt" in result.output
    assert check_run(run_dir).status == "complete"


@pytest.mark.slow
def test_identical_run_in_another_study_is_copied_not_retrained(trained):
    project = trained
    text = (project / "experiments" / "dropout.yaml").read_text()
    (project / "experiments" / "dropout2.yaml").write_text(text.replace("id: dropout", "id: dropout2"))
    result = invoke("run", "dropout2", "--profile", "smoke")
    assert result.exit_code == 0 and "0 of 2 runs cached; 2 to run" in result.output, result.output
    store = Store(project / "results")
    for variant in ("no-dropout", "dropout"):
        a, b = store.run_dir("dropout", variant, 0), store.run_dir("dropout2", variant, 0)
        assert check_run(b).status == "complete"
        # a copy: every file byte for byte, the run record (start time, wall time) included; a retrain has its own
        for name in RUN_FILES:
            assert (a / name).read_bytes() == (b / name).read_bytes(), (variant, name)


def test_render_needs_results_and_names_the_command(project, capsys):
    """`render` is explicit: a study without results is an error (one line, the command that makes them, exit 1),
    unlike `build`, which leaves it out."""
    from reportgen.cli import main
    with pytest.raises(SystemExit) as exit_:
        main(["render", "dropout", "--profile", "smoke"])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and "Traceback" not in err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "dropout: no results for" in err and "reportgen run dropout --profile smoke" in err
    assert not (project / "docs" / "blog" / "posts" / "dropout.md").exists()


@pytest.mark.slow
def test_render_writes_post_with_numbers_from_results(trained):
    project = trained
    result = invoke("render", "--profile", "smoke")
    assert result.exit_code == 0, result.output
    post = (project / "docs" / "blog" / "posts" / "dropout.md").read_text()
    acc = Store(project / "results").load("dropout", "dropout", 0).metrics.test_acc * 100
    assert f"{acc:.1f}" in post
    assert (project / "docs" / "blog" / "posts" / "dropout" / "curves.png").stat().st_size > 1000


def test_an_optional_dataset_that_just_failed_is_not_tried_again_on_every_run(tmp_path, monkeypatch):
    """A machine without internet: KMNIST (needed by an optional variant only) failed a minute ago, so the next
    `reportgen run` leaves it out at once instead of importing torchvision to fail again; an hour later, or once the
    dataset is there, it is tried."""
    import os
    import time

    from reportgen.pipeline import recently_unavailable
    from reportgen.settings import OPTIONAL_DATASET_RETRY_S
    monkeypatch.setenv("REPORTGEN_DATA", str(tmp_path / "data"))
    marker = tmp_path / "results" / "datasets" / "kmnist" / "UNAVAILABLE.txt"
    marker.parent.mkdir(parents=True)
    assert not recently_unavailable("kmnist", [marker])  # never tried
    marker.write_text("no route to host\n")
    assert recently_unavailable("kmnist", [marker])
    old = time.time() - OPTIONAL_DATASET_RETRY_S - 1
    os.utime(marker, (old, old))
    assert not recently_unavailable("kmnist", [marker])  # an hour later: tried again
    assert not recently_unavailable("kmnist", [])
