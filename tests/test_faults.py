"""Fault injection (issue 5): bad input, interruptions and corrupt files never lose work or print a traceback.

Every fault goes through the real command line: in-process through ``reportgen.cli.main`` (the console entry point
with its error handling, fast) and, where a process has to be killed or interrupted, as a real
``python -m reportgen.cli`` subprocess. Synthetic data only; nothing here touches the network or the real data.

Groups: bad study files, bad data, bad command lines, corrupt cached runs, render/build never touching results,
read-only and full disks, and security (no unpickling, safe YAML, experiment text rendered literally). The
interruptions (SIGKILL mid-epoch, while writing, while swapping a run in; SIGINT; SIGTERM; a second concurrent run)
are in tests/test_interrupts.py, which uses the helpers here.
"""
from __future__ import annotations

import ast
import dataclasses
import errno
import gzip
import hashlib
import html
import html.parser
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from reportgen import data as data_mod
from reportgen import provision as provision_mod
from reportgen.site import NPM_ASSETS
from reportgen.store import MARKER, check_run
from tests.conftest import ROOT, run_main
from tests.synthetic import RAW_FILES, write_idx_dataset


# ---- helpers ------------------------------------------------------------------------------------------------
class Result(NamedTuple):
    code: int
    out: str
    err: str


@pytest.fixture
def rg():
    """Run ``reportgen ARGS`` in-process through the console entry point; returns (exit code, stdout, stderr)."""
    def call(*args: str) -> Result:
        return Result(*run_main(*args))
    return call


def one_line_error(result: Result, code: int, *fragments: str, only_line: bool = False) -> str:
    """The command failed with ``code``, printed exactly one ``error:`` line containing every fragment, and no
    traceback. ``only_line``: nothing else at all on stderr (config and usage errors)."""
    text = result.out + result.err
    assert "Traceback" not in text, text
    assert result.code == code, text
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.err
    if only_line:
        assert result.err.strip() == errors[0], result.err
    for fragment in fragments:
        assert fragment in errors[0], f"{fragment!r} not in {errors[0]!r}"
    return errors[0]


def tree_hash(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (the lock file excluded: it only holds a pid)."""
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}


def run_numbers(run_dir: Path) -> dict[str, Any]:
    """Everything a run's numbers are: metrics, predictions and weights bytes, history without wall times."""
    history = yaml.safe_load((run_dir / "history.json").read_text())
    for epoch in history["epochs"]:
        epoch.pop("seconds")
    return {"metrics": (run_dir / "metrics.json").read_bytes(), "history": history,
            "predictions": (run_dir / "predictions.npz").read_bytes(),
            "weights": (run_dir / "weights.safetensors").read_bytes()}


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """An empty project directory (cwd) with an empty data root; no system dataset directory, download or package
    channel is reachable."""
    proj = tmp_path / "proj"
    (proj / "experiments").mkdir(parents=True)
    monkeypatch.chdir(proj)
    monkeypatch.setenv("REPORTGEN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("REPORTGEN_OFFLINE", "1")
    monkeypatch.setenv("REPORTGEN_SKIP_CHECKSUM", "1")
    monkeypatch.delenv("REPORTGEN_RESULTS", raising=False)
    monkeypatch.delenv("REPORTGEN_DEBUG", raising=False)
    for name, info in list(data_mod.DATASETS.items()):
        monkeypatch.setitem(data_mod.DATASETS, name, dataclasses.replace(info, system_dirs=(str(tmp_path / "nosys"),)))
    return proj


@pytest.fixture
def idx(tmp_path) -> Path:
    d = tmp_path / "idx"
    write_idx_dataset(d, n_train=300, n_test=100)
    return d


def shipped_study(**changes: Any) -> dict[str, Any]:
    """The shipped dropout study as data, with ``changes`` applied (so tests follow edits to the real file)."""
    study = yaml.safe_load((ROOT / "experiments" / "dropout.yaml").read_text())
    study.update(changes)
    return study


def write_study(proj: Path, study: dict[str, Any], name: str = "dropout.yaml") -> Path:
    path = proj / "experiments" / name
    path.write_text(yaml.safe_dump(study, sort_keys=False, allow_unicode=True))
    return path


# ---- bad study files -----------------------------------------------------------------------------------
STUDY = """\
id: study
title: A study
dataset: fashion-mnist
training: {optimizer: adam, lr: 1.0e-3, batch_size: 64, epochs: 2}
variants:
  - {name: a, label: A}
  - {name: b, label: B, model: {options: {dropout: 0.5}}}
"""


def study_with(old: str, new: str) -> str:
    assert old in STUDY
    return STUDY.replace(old, new)


BAD_FILES = [
    # (case, file text, fragments of the one-line message)
    ("yaml-syntax", STUDY + "title: [unclosed\n", ["YAML syntax error at line 9"]),
    ("yaml-tab", STUDY + "\tepochs: 3\n", ["YAML syntax error at line 8", "'\\t'"]),
    ("yaml-duplicate-key", STUDY + "id: other\n", ["line 8", "duplicate key 'id'"]),
    ("top-level-list", "- id: study\n- title: x\n", ["expected a mapping", "got a list"]),
    ("top-level-scalar", "just a string\n", ["expected a mapping", "got a str"]),
    ("empty-file", "", ["the file is empty"]),
    ("unknown-key-top", STUDY + "epochs: 3\n", ["unknown field 'epochs'", "did you mean 'training.epochs'?"]),
    ("unknown-key-training", study_with("epochs: 2}", "epochs: 2, lrr: 0.1}"),
     ["unknown field 'training.lrr'", "did you mean 'lr'?", "allowed here: optimizer, lr"]),
    ("unknown-model-option", study_with("{dropout: 0.5}", "{dropuot: 0.5}"),
     ["unknown field 'variants[1].model.options.dropuot'", "did you mean 'dropout'?", "allowed here: in_channels"]),
    ("unknown-key-variant", study_with("{name: a, label: A}", "{name: a, label: A, datset: mnist}"),
     ["unknown field 'variants[0].datset'", "did you mean 'dataset'?"]),
    ("unknown-key-variant-model", study_with("model: {options:", "model: {nmae: tiny, options:"),
     ["unknown field 'variants[1].model.nmae'", "did you mean 'name'?"]),
    ("missing-field", study_with("title: A study\n", ""), ["title: this field is required"]),
    ("wrong-type-int", study_with("epochs: 2", "epochs: two"), ["training.epochs: must be a valid integer", "'two'"]),
    ("wrong-type-bool", study_with("epochs: 2", "epochs: true"), ["training.epochs: must be a valid integer"]),
    ("wrong-type-quoted-number", study_with("lr: 1.0e-3", "lr: '0.001'"), ["training.lr: must be a valid number"]),
    ("wrong-type-fraction", study_with("batch_size: 64", "batch_size: 6.5"), ["training.batch_size"]),
    ("wrong-type-section", STUDY + "model: lenet\n", ["model: expected a mapping with fields name, options"]),
    ("wrong-type-variants", study_with("variants:\n  - {name: a, label: A}\n  - {name: b, label: B, model: "
                                       "{options: {dropout: 0.5}}}\n", "variants: 3\n"),
     ["variants: must be a valid list"]),
    ("wrong-type-title", study_with("title: A study", "title: 5"), ["title: must be a valid string"]),
    ("epochs-zero", study_with("epochs: 2", "epochs: 0"), ["training.epochs: must be greater than 0 (got 0)"]),
    ("epochs-negative", study_with("epochs: 2", "epochs: -3"), ["training.epochs: must be greater than 0"]),
    ("batch-size-zero", study_with("batch_size: 64", "batch_size: 0"), ["training.batch_size: must be greater than 0"]),
    ("lr-zero", study_with("lr: 1.0e-3", "lr: 0"), ["training.lr: must be greater than 0"]),
    ("lr-negative", study_with("lr: 1.0e-3", "lr: -0.1"), ["training.lr: must be greater than 0"]),
    ("lr-nan", study_with("lr: 1.0e-3", "lr: .nan"), ["training.lr: must be a finite number"]),
    ("lr-inf", study_with("lr: 1.0e-3", "lr: .inf"), ["training.lr: must be a finite number"]),
    ("lr-minus-inf", study_with("lr: 1.0e-3", "lr: -.inf"), ["training.lr: must be a finite number"]),
    ("dropout-one", study_with("dropout: 0.5", "dropout: 1.0"),
     ["variants[1].model.options.dropout: must be less than 1"]),
    ("dropout-negative", STUDY + "model: {name: lenet, options: {dropout: -0.1}}\n",
     ["model.options.dropout: must be greater than or equal to 0"]),
    ("num-classes", study_with("{dropout: 0.5}", "{num_classes: 5}"),
     ["variants[1].model.options.num_classes: must be 10"]),  # before: IndexError mid-training
    ("in-channels", STUDY + "model: {name: tiny, options: {in_channels: 3}}\n",
     ["model.options.in_channels: must be 1"]),  # before: RuntimeError mid-training
    ("seeds-empty", STUDY + "profiles: {quick: {seeds: []}}\n", ["profiles.quick.seeds: seed list must not be empty"]),
    ("seeds-duplicate", STUDY + "profiles: {quick: {seeds: [1, 1]}}\n",
     ["profiles.quick.seeds: seeds must be distinct"]),
    ("profile-unknown", STUDY + "profiles: {quik: {seeds: [1]}}\n",
     ["profiles.quik: 'quik' is not allowed; choose from smoke, quick, full; did you mean 'quick'?"]),
    ("variant-duplicate", study_with("{name: b, label: B", "{name: a, label: B"),
     ["variants: duplicate variant name 'a'"]),
    ("variant-epochs", study_with("{name: a, label: A}", "{name: a, label: A, training: {epochs: 3}}"),
     ["variants[0].training: a variant's epochs are set per profile by its own epochs"]),
    ("variants-none", study_with("variants:\n  - {name: a, label: A}\n  - {name: b, label: B, model: "
                                 "{options: {dropout: 0.5}}}\n", ""), ["variants: at least one variant is required"]),
    ("baseline-unknown", STUDY + "baseline: c\n", ["baseline: 'c' is not a variant name"]),
    ("model-unknown", STUDY + "model: {name: lenett}\n",
     ["model.name: 'lenett' is not allowed", "choose from lenet, tiny, deep_pool, fcnn", "did you mean 'lenet'?"]),
    ("variant-model-unknown", study_with("model: {options:", "model: {name: deep-pool, options:"),
     ["variants[1].model.name: 'deep-pool' is not allowed", "did you mean 'deep_pool'?"]),
    ("dataset-unknown", study_with("dataset: fashion-mnist", "dataset: fashion_mnist"),
     ["dataset: 'fashion_mnist' is not allowed", "did you mean 'fashion-mnist'?"]),
    ("variant-dataset-unknown", study_with("{name: a, label: A}", "{name: a, label: A, dataset: kmnsit}"),
     ["variants[0].dataset: 'kmnsit' is not allowed", "did you mean 'kmnist'?"]),
    ("optimizer-unknown", study_with("optimizer: adam", "optimizer: sdg"),
     ["training.optimizer: 'sdg' is not allowed; choose from sgd, adam; did you mean 'sgd'?"]),
    ("schedule-unknown", study_with("epochs: 2}", "epochs: 2, schedule: cosin}"), ["did you mean 'cosine'?"]),
    ("analysis-unknown", STUDY + "analyses: [curves, confusoin]\n",
     ["analyses[1]: 'confusoin' is not allowed", "did you mean 'confusion'?"]),
    ("id-parent", study_with("id: study", "id: ../x"), ["id: must be lower-case letters", "'../x'"]),
    ("id-absolute", study_with("id: study", "id: /tmp/x"), ["id: must be lower-case letters", "'/tmp/x'"]),
    ("id-separator", study_with("id: study", "id: a/b"), ["id: must be lower-case letters"]),
    ("id-backslash", study_with("id: study", "id: 'a\\\\b'"), ["id: must be lower-case letters"]),
    ("id-dots", study_with("id: study", "id: '..'"), ["id: must be lower-case letters"]),
    ("variant-name-path", study_with("{name: a,", "{name: ../a,"), ["variants[0].name: must be lower-case letters"]),
    ("template-path", STUDY + "template: ../../../etc/passwd\n",
     ["template: must be the id of another study whose prose file this one uses"]),
    ("template-unknown", STUDY + "template: dropuot\n", ["template: no prose file dropuot.md beside it"]),
    ("python-tag", "!!python/object/apply:os.system ['echo pwned']\n",
     ["line 1", "tag '!!python/object/apply:os.system' is not allowed"]),
    ("python-name-tag", STUDY + "order: !!python/name:os.system\n", ["tag '!!python/name:os.system' is not allowed"]),
]


@pytest.mark.parametrize("case, text, fragments", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_experiment_file_is_one_line_exit_2_and_changes_nothing(isolated, rg, case, text, fragments):
    (isolated / "experiments" / "study.yaml").write_text(text)
    keep = isolated / "results" / "keep" / "a" / "seed-0"
    keep.mkdir(parents=True)
    (keep / "metrics.json").write_text("{}")
    before = tree_hash(isolated / "results")
    for command in (["list"], ["run", "--profile", "smoke"], ["render", "--profile", "smoke"]):
        line = one_line_error(rg(*command), 2, "experiments/study.yaml: ", *fragments, only_line=True)
        assert len(line) < 400, line
    assert tree_hash(isolated / "results") == before and not (isolated / "docs").exists()


def test_yaml_python_tags_execute_nothing(isolated, rg, tmp_path):
    pwned = tmp_path / "pwned"
    (isolated / "experiments" / "study.yaml").write_text(
        f"!!python/object/apply:os.system ['touch {pwned}']\n")
    (isolated / "experiments" / "other.yaml").write_text(
        STUDY.replace("id: study", "id: other")
        + f"description: !!python/object/apply:subprocess.call [[touch, '{pwned}']]\n")
    one_line_error(rg("list"), 2, "is not allowed", only_line=True)
    (isolated / "experiments" / "study.yaml").unlink()
    one_line_error(rg("run"), 2, "other.yaml", "is not allowed", only_line=True)
    assert not pwned.exists()


def test_non_utf8_file_names_the_byte_and_line(isolated, rg):
    (isolated / "experiments" / "study.yaml").write_bytes(STUDY.replace("A study", "caf\xe9").encode("latin-1"))
    one_line_error(rg("list"), 2, "experiments/study.yaml: not UTF-8 text (byte 0xe9 on line 2)", only_line=True)


def test_exponent_numbers_are_numbers(isolated, rg):
    """YAML 1.1 reads `1e-3` as a string; the strict schema would then refuse the most common way to write a
    learning rate, so the loader reads it as a number."""
    from reportgen.config import load_study
    path = isolated / "experiments" / "study.yaml"
    path.write_text(study_with("lr: 1.0e-3", "lr: 1e-3"))
    assert load_study(path).training.lr == 0.001


def test_two_files_with_the_same_id(isolated, rg):
    (isolated / "experiments" / "a.yaml").write_text(STUDY)
    (isolated / "experiments" / "b.yaml").write_text(STUDY)
    one_line_error(rg("list"), 2, "experiments/b.yaml: id 'study' is already used by experiments/a.yaml",
                   only_line=True)


def test_empty_or_missing_experiments_directory(isolated, rg):
    for command in (["list"], ["run"], ["render"], ["data", "fetch"]):
        one_line_error(rg(*command), 2, "experiments: no study files", only_line=True)
    one_line_error(rg("--experiments", "nowhere", "list"), 2, "nowhere: studies directory not found",
                   only_line=True)


def test_editor_lock_files_are_not_experiments(isolated, rg):
    (isolated / "experiments" / "study.yaml").write_text(STUDY)
    os.symlink("user@host.1234:1", isolated / "experiments" / ".#study.yaml")  # Emacs' lock file: a dangling link
    result = rg("list")
    assert result.code == 0 and "study" in result.out, result


def test_bad_file_through_the_console_script(isolated, tmp_path):
    """The same path as a user's shell: a subprocess, exit status 2, one line on stderr, nothing on stdout."""
    (isolated / "experiments" / "study.yaml").write_text(STUDY + "  bad indent: [\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "reportgen.cli", "run", "--profile", "smoke"], cwd=isolated,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == "", proc
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: experiments/study.yaml: YAML syntax error")


# ---- bad command lines --------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, fragments", [
    (["run", "dropuot"], ["unknown study 'dropuot'; did you mean 'dropout'?", "declared: dropout"]),
    (["render", "dropot"], ["unknown study 'dropot'; did you mean 'dropout'?"]),
    (["run", "--profile", "smok"], ["'smok' is not one of", "did you mean 'smoke'?", "reportgen run --help"]),
    (["rn"], ["No such command 'rn'", "run"]),
    (["run", "--device", "gpu"], ["'gpu' is not one of"]),
    (["data", "fetch", "fashion"], ["'fashion' is not one of", "did you mean 'fashion-mnist'?"]),
    (["data", "fetch", "--from", "somewhere"], ["--from DIR needs exactly one dataset NAME"]),
    (["data", "fetch", "fashion-mnist", "--from", "nowhere"], ["--from nowhere: no such directory"]),
    (["run", "--frce"], ["No such option", "--frce", "--force"]),
])
def test_usage_errors_are_one_line_exit_2(isolated, rg, args, fragments):
    write_study(isolated, shipped_study())
    one_line_error(rg(*args), 2, *fragments, only_line=True)


def test_device_cuda_without_cuda(isolated, rg, monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    write_study(isolated, shipped_study())
    one_line_error(rg("run", "--device", "cuda", "--profile", "smoke"), 2, "--device cuda: no CUDA device",
                   "use --device cpu", only_line=True)
    assert not (isolated / "results").exists()


def test_render_without_results_names_missing_runs_and_the_command(isolated, rg):
    study = shipped_study()
    write_study(isolated, study)
    line = one_line_error(rg("render", "--profile", "smoke"), 1,
                          "reportgen run dropout --profile smoke", only_line=True)
    for variant in study["variants"]:
        assert f"{variant['name']}/seed-0 (missing)" in line
    assert not (isolated / "docs" / "blog" / "posts" / "dropout.md").exists()


def test_template_naming_no_prose_file_is_one_line_exit_2_with_the_closest(isolated, rg):
    """``template:`` names another study whose prose is reused; a name with no prose file beside it is refused
    before anything is trained or written, with the closest prose file."""
    (isolated / "experiments" / "study.yaml").write_text(STUDY + "template: dropuot\n")
    shutil.copy(ROOT / "experiments" / "dropout.md", isolated / "experiments" / "dropout.md")
    for command in (["list"], ["run", "--profile", "smoke"], ["render", "--profile", "smoke"]):
        one_line_error(rg(*command), 2, "experiments/study.yaml: template: no prose file dropuot.md beside it",
                       "did you mean 'dropout'?", "(prose files: dropout)", only_line=True)
    assert not (isolated / "results").exists() and not (isolated / "docs").exists()


def test_study_without_prose_or_template_renders_a_complete_post(isolated, rg):
    """There are no per-study templates: a study that is only a YAML file renders (here an illustration, which
    trains nothing; a trained one is in test_render.py) with the generic frame and its declared analyses."""
    (isolated / "experiments" / "nopost.yaml").write_text(
        "id: nopost\ntitle: No prose yet\ndescription: Only YAML.\ntrains: false\nanalyses: [output_size]\n")
    result = rg("render", "nopost")
    assert result.code == 0 and "error" not in result.err, result.err
    post = (isolated / "docs" / "blog" / "posts" / "nopost.md").read_text()
    front = yaml.safe_load(post.split("---\n")[1])
    assert front["title"] == "No prose yet" and front["slug"] == "nopost" and front["description"] == "Only YAML."
    assert post.index("# No prose yet") < post.index("### Output size of every layer") < post.index(
        "## Reproduce this post")
    assert "reportgen render nopost --profile quick" in post and "nothing is trained for this post" in post
    assert "## Setup" not in post and "| Test accuracy (%) |" not in post  # nothing was trained
    assert "[No prose yet](blog/posts/nopost.md)" in (isolated / "docs" / "index.md").read_text()


# ---- bad data -----------------------------------------------------------------------------------------------
def _corrupt(d: Path, case: str) -> str:
    """Damage the IDX files in ``d`` one way; returns the file the message must name."""
    images, labels = d / "train-images-idx3-ubyte", d / "train-labels-idx1-ubyte"
    if case == "missing-file":
        labels.unlink()
        return "train-labels-idx1-ubyte[.gz]"
    if case == "wrong-magic":  # a labels file under the images name
        shutil.copy(labels, images)
        return "train-images-idx3-ubyte has IDX magic number 2049, expected 2051"
    if case == "truncated":
        images.write_bytes(images.read_bytes()[:5000])
        return "train-images-idx3-ubyte is truncated"
    if case == "too-long":
        images.write_bytes(images.read_bytes() + b"\0" * 100)
        return "train-images-idx3-ubyte is too long"
    if case == "header-only":
        images.write_bytes(images.read_bytes()[:10])
        return "shorter than the IDX header"
    if case == "bad-label":
        raw = bytearray(labels.read_bytes())
        raw[20] = 200
        labels.write_bytes(bytes(raw))
        return "contains label 200"
    if case == "truncated-gz":
        blob = gzip.compress(images.read_bytes())
        images.unlink()
        (d / "train-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 2])
        return "train-images-idx3-ubyte.gz"
    if case == "not-gzip":
        images.unlink()
        (d / "train-images-idx3-ubyte.gz").write_bytes(b"this is not gzip data")
        return "train-images-idx3-ubyte.gz"
    if case == "count-mismatch":
        write_idx_dataset(d / "other", n_train=200, n_test=100)
        shutil.copy(d / "other" / "train-labels-idx1-ubyte", labels)
        return "train-images has 300 images but train-labels has 200 labels"
    raise AssertionError(case)


DATA_FAULTS = ["missing-file", "wrong-magic", "truncated", "too-long", "header-only", "bad-label", "truncated-gz",
               "not-gzip", "count-mismatch"]


@pytest.mark.parametrize("case", DATA_FAULTS)
def test_fetch_from_a_damaged_directory_keeps_the_previous_copy(isolated, rg, idx, tmp_path, case):
    """A previous good copy is installed; fetching a damaged one fails in one line and leaves the good one."""
    good = tmp_path / "good"
    write_idx_dataset(good, n_train=120, n_test=40, seed=7)
    assert rg("data", "fetch", "fashion-mnist", "--from", str(good)).code == 0
    root = Path(os.environ["REPORTGEN_DATA"])
    before = tree_hash(root)
    expected = _corrupt(idx, case)
    one_line_error(rg("data", "fetch", "fashion-mnist", "--from", str(idx)), 1, expected)
    assert tree_hash(root) == before
    assert data_mod.is_prepared("fashion-mnist") and data_mod.dataset_checksum("fashion-mnist")


def _hashes(d: Path) -> dict[str, str]:
    return {f: hashlib.sha256((d / f).read_bytes()).hexdigest() for f in RAW_FILES}


def test_checksum_mismatch_says_how_to_override(isolated, rg, idx, monkeypatch):
    monkeypatch.delenv("REPORTGEN_SKIP_CHECKSUM")
    monkeypatch.setitem(data_mod.DATASETS, "fashion-mnist", dataclasses.replace(
        data_mod.DATASETS["fashion-mnist"], raw_sha256={f: "0" * 64 for f in RAW_FILES}))
    one_line_error(rg("data", "fetch", "fashion-mnist", "--from", str(idx)), 1, "sha256", "--skip-checksum")
    assert not data_mod.is_prepared("fashion-mnist")
    assert rg("data", "fetch", "fashion-mnist", "--from", str(idx), "--skip-checksum").code == 0


def test_from_directory_holding_another_dataset(isolated, rg, idx, monkeypatch):
    monkeypatch.setitem(data_mod.DATASETS, "mnist", dataclasses.replace(data_mod.DATASETS["mnist"],
                                                                       raw_sha256=_hashes(idx)))
    for extra in ([], ["--skip-checksum"]):
        one_line_error(rg("data", "fetch", "fashion-mnist", "--from", str(idx), *extra), 1,
                       "it holds MNIST, not Fashion-MNIST")
    assert not data_mod.is_prepared("fashion-mnist")


def test_no_network_and_no_offline_source_lists_every_source_and_fix(isolated, rg, monkeypatch):
    monkeypatch.delenv("REPORTGEN_OFFLINE")

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(provision_mod.shutil, "which", lambda name: None)  # no apt-get, no npm on this machine
    started = time.perf_counter()
    line = one_line_error(rg("data", "fetch", "fashion-mnist"), 1, "could not provision Fashion-MNIST; tried: ",
                          "system directories: none of", "torchvision download: ", "Fix: pass --from DIR",
                          "dataset-fashion-mnist", "internet access")
    assert "Name or service not known" in line and time.perf_counter() - started < 30
    root = Path(os.environ["REPORTGEN_DATA"])
    assert not any(p.name.startswith(".") for p in root.rglob("*")), "a failed download left scratch files"


def test_run_without_data_offline_says_how_to_fix(isolated, rg):
    write_study(isolated, shipped_study())
    one_line_error(rg("run", "--profile", "smoke"), 1, "could not provision Fashion-MNIST", "--from DIR")
    assert not list((isolated / "results").rglob(MARKER))


@pytest.mark.parametrize("damage", ["flipped-byte", "deleted-file", "legacy-processed-cache"])
def test_damaged_provisioned_data_is_caught_before_training(isolated, rg, idx, damage):
    write_study(isolated, shipped_study())
    assert rg("data", "fetch", "fashion-mnist", "--from", str(idx)).code == 0
    raw = data_mod.raw_dir("fashion-mnist")
    if damage == "flipped-byte":
        blob = bytearray((raw / "t10k-images-idx3-ubyte").read_bytes())
        blob[-1] ^= 0xFF
        (raw / "t10k-images-idx3-ubyte").write_bytes(bytes(blob))
        one_line_error(rg("list", "--profile", "smoke"), 1, "t10k-images-idx3-ubyte changed since it was provisioned")
        result = rg("run", "--profile", "smoke")
        one_line_error(result, 1, "could not provision Fashion-MNIST")
        assert "existing copy is damaged" in result.err
    elif damage == "deleted-file":
        (raw / "train-labels-idx1-ubyte").unlink()
        result = rg("run", "--profile", "smoke")
        one_line_error(result, 1, "could not provision Fashion-MNIST")
        assert "existing copy in" in result.err and "is incomplete" in result.err
    else:  # torchvision reads processed/*.pt instead of raw/ when it exists: refuse rather than train on it
        (raw.parent / "processed").mkdir()
        for name in ("training.pt", "test.pt"):
            (raw.parent / "processed" / name).write_bytes(b"not the verified data")
        one_line_error(rg("run", "--profile", "smoke"), 1, "processed", "would be read instead of the verified")
    assert not list((isolated / "results").rglob(MARKER))


def _deny_writes_under(monkeypatch, root: Path, error: int = errno.EACCES) -> None:
    """Fault injection at the OS layer: creating directories or opening files for writing under ``root`` fails
    with ``error`` (like a read-only mount; chmod alone does not stop root, which CI may run as)."""
    root = str(root.resolve())
    real_mkdir, real_open = os.mkdir, os.open

    def inside(path) -> bool:
        return os.path.abspath(os.fsdecode(path)).startswith(root)

    def mkdir(path, mode=0o777, *, dir_fd=None):
        if inside(path):
            raise OSError(error, os.strerror(error), os.fsdecode(path))
        return real_mkdir(path, mode) if dir_fd is None else real_mkdir(path, mode, dir_fd=dir_fd)

    def open_(path, flags, mode=0o777, *, dir_fd=None):
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(error, os.strerror(error), os.fsdecode(path))
        return real_open(path, flags, mode) if dir_fd is None else real_open(path, flags, mode, dir_fd=dir_fd)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)


@pytest.mark.slow
def test_read_only_data_root(isolated, rg, idx, monkeypatch):
    write_study(isolated, shipped_study())
    root = Path(os.environ["REPORTGEN_DATA"])
    root.mkdir()
    with monkeypatch.context() as m:
        _deny_writes_under(m, root, errno.EROFS)
        one_line_error(rg("data", "fetch", "fashion-mnist", "--from", str(idx)), 1,
                       "cannot write Fashion-MNIST under", "Read-only file system", "set REPORTGEN_DATA")
    assert rg("data", "fetch", "fashion-mnist", "--from", str(idx)).code == 0
    with monkeypatch.context() as m:  # provisioned, then read-only: training (in this process) only reads it
        _deny_writes_under(m, root, errno.EROFS)
        result = rg("run", "--profile", "smoke", "--workers", "1")
    assert result.code == 0, result.err


# ---- results directory faults (in-process) ------------------------------------------------------------------
@pytest.fixture
def study(isolated, idx, rg) -> Path:
    """The shipped dropout study, smoke profile, data provisioned from the synthetic files."""
    write_study(isolated, shipped_study())
    assert rg("data", "fetch", "fashion-mnist", "--from", str(idx)).code == 0
    return isolated


def test_results_path_unusable(study, rg, monkeypatch):
    (study / "results").write_text("not a directory")
    one_line_error(rg("run", "--profile", "smoke"), 1, "cannot lock the results directory results",
                   only_line=False)
    (study / "results").unlink()
    (study / "results").mkdir()
    with monkeypatch.context() as m:
        _deny_writes_under(m, study / "results")
        one_line_error(rg("run", "--profile", "smoke"), 1, "cannot lock the results directory", "Permission denied")
    assert tree_hash(study / "results") == {}


@pytest.mark.slow
def test_disk_full_while_writing_keeps_finished_runs(study, rg, monkeypatch):
    """(One worker: the fault is injected into this process, where the runs are then written.)"""
    from reportgen import store
    variants = [v["name"] for v in shipped_study()["variants"]]
    real = store.atomic_write

    def full_disk(path: Path, data: bytes) -> None:
        if path.parent.parent.name == variants[1] and path.name == "predictions.npz":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)
    with monkeypatch.context() as m:
        m.setattr(store, "atomic_write", full_disk)
        line = one_line_error(rg("run", "--profile", "smoke", "--workers", "1"), 1, "No space left on device",
                              "finished runs are kept")
    assert variants[1] in line
    results = study / "results" / "dropout"
    assert check_run(results / variants[0] / "seed-0").status == "complete"
    assert not (results / variants[1] / "seed-0").exists()
    assert not list(results.rglob(".seed-*")), "a staging directory was left behind"
    result = rg("run", "--profile", "smoke")
    assert result.code == 0 and "1 of 2 runs cached; 1 to run" in result.err


def test_unexpected_exception_is_one_line_and_debug_shows_it(study, rg, monkeypatch):
    from reportgen import train

    def boom(*args, **kwargs):
        raise ValueError("boom\nsecond line")
    monkeypatch.setattr(train, "train_run", boom)
    one_line_error(rg("run", "--profile", "smoke", "--workers", "1"), 1,
                   "internal error: ValueError: boom second line", "REPORTGEN_DEBUG=1")
    monkeypatch.setenv("REPORTGEN_DEBUG", "1")
    with pytest.raises(ValueError, match="boom"):
        from reportgen.cli import main
        main(["run", "--profile", "smoke", "--workers", "1"])


@pytest.mark.slow
def test_corrupt_cached_runs_are_detected_said_and_rerun(study, rg):
    write_study(study, shipped_study(profiles={"smoke": {"seeds": [0, 1]}}))
    assert rg("run", "--profile", "smoke").code == 0
    results = study / "results" / "dropout"
    slots = sorted(p for p in results.glob("*/seed-*"))
    assert len(slots) == 4
    numbers = {p: run_numbers(p) for p in slots}
    edited, truncated, deleted, marker = slots
    metrics = (edited / "metrics.json").read_text()
    (edited / "metrics.json").write_text(metrics.replace('"test_acc": 0.', '"test_acc": 1.'))
    blob = (truncated / "predictions.npz").read_bytes()
    (truncated / "predictions.npz").write_bytes(blob[: len(blob) // 2])
    (deleted / "weights.safetensors").unlink()
    (marker / MARKER).write_text('{"cache_key": "x", "files": ')
    listed = rg("list", "--profile", "smoke")
    assert listed.code == 0 and listed.out.count(":corrupt") == 4, listed.out
    result = rg("run", "--profile", "smoke")
    assert result.code == 0 and "0 of 4 runs cached; 4 to run" in result.err, result.err
    for slot, reason in ((edited, "metrics.json was modified or truncated"),
                         (truncated, "predictions.npz was modified or truncated"),
                         (deleted, "weights.safetensors was deleted"), (marker, f"{MARKER} is unreadable")):
        name = "/".join(slot.parts[-3:])
        assert f"{name}: corrupt ({reason}" in result.err and "rerunning" in result.err
        assert check_run(slot).status == "complete" and run_numbers(slot) == numbers[slot]


# ---- render and build never modify results; failures keep the previous output ------------------------------
MALICIOUS = {
    "title": "{{ 7*7 }} <script>alert(1)</script> & co",
    "description": "desc {% raw %} <img src=x onerror=alert(2)>",
    "question": "q <b>bold</b> {{ 8*8 }} </textarea>",
    "label": "L<script>alert(3)</script>{{ 9*9 }}",
    "label2": 'M" onmouseover="alert(5)',
    "vdesc": "d<script>alert(4)</script>",
}
MINIMAL_MKDOCS = "site_name: t\ndocs_dir: docs\ntheme:\n  name: mkdocs\n  highlightjs: false\n"


class _Html(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.scripts: list[str] = []
        self.handlers: list[tuple[str, str]] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        self.handlers += [(tag, k) for k, _ in attrs if k.lower().startswith("on")]
        if tag == "img":
            self.handlers += [(tag, f"src={v}") for k, v in attrs if k == "src" and v == "x"]

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)


@pytest.mark.slow
def test_experiment_text_renders_literally_and_render_build_never_touch_results(study, rg):
    spec = shipped_study(title=MALICIOUS["title"], description=MALICIOUS["description"],
                         question=MALICIOUS["question"])
    spec["variants"][0].update(label=MALICIOUS["label"], description=MALICIOUS["vdesc"])
    spec["variants"][1].update(label=MALICIOUS["label2"])
    write_study(study, spec)
    (study / "mkdocs.yml").write_text(MINIMAL_MKDOCS)
    for asset in NPM_ASSETS:
        (study / "docs" / asset.directory / asset.entry).parent.mkdir(parents=True)
        (study / "docs" / asset.directory / asset.entry).write_text("/* stand-in: this test builds offline */\n")
    for page in ("about.md", "how-to-read.md"):  # the pages the generated home page and every post link to
        (study / "docs" / page).write_text(f"# {page}\n")
    (study / "docs" / "blog").mkdir()
    (study / "docs" / "blog" / "index.md").write_text("# Blog\n")
    assert rg("run", "--profile", "smoke").code == 0
    results = tree_hash(study / "results")

    built = rg("build", "--profile", "smoke")
    assert built.code == 0, built.err
    assert tree_hash(study / "results") == results
    post = (study / "docs" / "blog" / "posts" / "dropout.md").read_text()
    front = yaml.safe_load(post.split("---\n")[1])
    assert "<script" not in front["title"] and "{{" in front["title"] and "49" not in front["title"]
    for html_file in (study / "site").rglob("*.html"):  # the post, the home page, the 404 page ...
        page = _Html()
        page.feed(html_file.read_text())
        assert not page.handlers, (html_file, page.handlers)
        assert not any("alert" in s for s in page.scripts), (html_file, page.scripts)
    page = _Html()
    page.feed((study / "site" / "blog" / "posts" / "dropout" / "index.html").read_text())
    text = " ".join(" ".join(page.text).split())
    for value in ("{{ 7*7 }} <script>alert(1)</script> & co", "<img src=x onerror=alert(2)>", "<b>bold</b>",
                  "{{ 8*8 }}", "L<script>alert(3)</script>{{ 9*9 }}", 'M" onmouseover="alert(5)'):
        assert value in text, value
    page_html = (study / "site" / "blog" / "posts" / "dropout" / "index.html").read_text()
    for tag in ("title", "h1"):  # the page title and the heading are the title, verbatim
        shown = html.unescape(re.search(rf"<{tag}[^>]*>(.*?)</{tag}>", page_html, re.S).group(1)).strip()
        assert shown.startswith(MALICIOUS["title"]), (tag, shown)

    # a failed build leaves the previous site; a failed render leaves the previous post; results never change
    site = tree_hash(study / "site")
    (study / "mkdocs.yml").write_text(MINIMAL_MKDOCS + "nav:\n  - missing.md\n")
    failed = rg("build", "--profile", "smoke")
    assert failed.code == 1 and "Traceback" not in failed.err
    assert failed.err.splitlines()[-1].startswith("error:") or "error: mkdocs" in failed.err
    assert tree_hash(study / "site") == site and tree_hash(study / "results") == results

    posts = tree_hash(study / "docs")
    victim = next((study / "results" / "dropout").glob("*/seed-0"))
    (victim / "history.json").write_text("{}")
    results = tree_hash(study / "results")
    one_line_error(rg("render", "--profile", "smoke"), 1, "history.json was modified or truncated",
                   "reportgen run dropout --profile smoke")
    assert tree_hash(study / "docs") == posts and tree_hash(study / "results") == results


# ---- security: nothing in the package can unpickle --------------------------------------------------------------
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal", "joblib"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _is_safe_loader(module: Any, node: ast.AST | None) -> bool:
    """Is the Loader named by ``node`` (resolved in ``module``) built on PyYAML's safe constructor only?"""
    import yaml.constructor as yc
    if node is None or not _dotted(node):
        return False
    first, *rest = _dotted(node).split(".")
    obj = getattr(module, first, None)
    for part in rest:
        obj = getattr(obj, part, None)
    return isinstance(obj, type) and issubclass(obj, yc.SafeConstructor) and not issubclass(obj, yc.FullConstructor)


def unsafe_calls(source: str, module: Any = None) -> list[str]:
    """Every way ``source`` could deserialise code: pickle-family imports, torch.load without weights_only=True,
    np.load without allow_pickle=False, yaml loads without a safe loader, eval/exec."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            problems += [f"line {node.lineno}: import {a.name}" for a in node.names
                         if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in UNSAFE_MODULES:
                problems.append(f"line {node.lineno}: from {node.module} import")
            if node.module in ("torch", "numpy", "yaml") and any(a.name in ("load", "unsafe_load", "full_load")
                                                                  for a in node.names):
                problems.append(f"line {node.lineno}: from {node.module} import load")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            kw = {k.arg: k.value for k in node.keywords}

            def const(key: str) -> Any:
                value = kw.get(key)
                return value.value if isinstance(value, ast.Constant) else "not a constant"
            if name in ("eval", "exec"):
                problems.append(f"line {node.lineno}: {name}()")
            elif name == "torch.load" and const("weights_only") is not True:
                problems.append(f"line {node.lineno}: torch.load without weights_only=True")
            elif name in ("np.load", "numpy.load") and const("allow_pickle") is not False:
                problems.append(f"line {node.lineno}: {name} without allow_pickle=False")
            elif name in ("yaml.unsafe_load", "yaml.full_load", "yaml.unsafe_load_all", "yaml.full_load_all"):
                problems.append(f"line {node.lineno}: {name}")
            elif name in ("yaml.load", "yaml.load_all"):
                loader = kw.get("Loader", node.args[1] if len(node.args) > 1 else None)
                if not _is_safe_loader(module, loader):
                    problems.append(f"line {node.lineno}: {name} without a safe Loader")
    return problems


def test_the_unsafe_call_scanner_catches_what_it_should():
    bad = ("import pickle\nfrom joblib import load\nimport torch, numpy as np, yaml\ntorch.load('x')\n"
           "torch.load('x', weights_only=False)\nnp.load('x')\nnp.load('x', allow_pickle=True)\n"
           "yaml.load(s)\nyaml.load(s, Loader=yaml.Loader)\nyaml.load(s, Loader=yaml.FullLoader)\n"
           "yaml.unsafe_load(s)\neval('1')\n")
    assert len(unsafe_calls(bad, sys.modules[__name__])) == 11
    good = ("import torch, numpy as np, yaml\ntorch.load('x', weights_only=True)\n"
            "np.load('x', allow_pickle=False)\nyaml.safe_load(s)\nyaml.load(s, Loader=yaml.SafeLoader)\n")
    assert unsafe_calls(good, sys.modules[__name__]) == []


def test_package_never_unpickles():
    import importlib
    problems = []
    for path in sorted((ROOT / "reportgen").rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        module = importlib.import_module(name)
        problems += [f"{path.relative_to(ROOT)} {p}" for p in unsafe_calls(path.read_text(), module)]
    assert problems == []
