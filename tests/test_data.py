"""Dataset provisioning and reading, on synthetic IDX files only (never the real data root)."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from reportgen import data
from reportgen.provision import provision
from reportgen.data import DataError
from tests.conftest import invoke
from tests.synthetic import RAW_FILES, make_split, write_idx_dataset, write_idx_file

QUIET = {"allow_download": False, "allow_install": False, "log": lambda *a: None}


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Data root in tmp; no system directory, download or package channel can be reached by accident."""
    monkeypatch.setenv("REPORTGEN_DATA", str(tmp_path / "root"))
    monkeypatch.delenv("REPORTGEN_SKIP_CHECKSUM", raising=False)
    for name, info in list(data.DATASETS.items()):
        monkeypatch.setitem(data.DATASETS, name, dataclasses.replace(info, system_dirs=(str(tmp_path / "nosys"),)))


def _patch(monkeypatch, name: str, **changes) -> None:
    monkeypatch.setitem(data.DATASETS, name, dataclasses.replace(data.DATASETS[name], **changes))


def _hashes(directory: Path) -> dict[str, str]:
    return {f: hashlib.sha256((directory / f).read_bytes()).hexdigest() for f in RAW_FILES}


@pytest.fixture
def src(tmp_path, monkeypatch) -> Path:
    """A raw synthetic dataset whose hashes Fashion-MNIST is told to expect (so checksums really are verified)."""
    d = tmp_path / "src"
    write_idx_dataset(d, n_train=300, n_test=100)
    _patch(monkeypatch, "fashion-mnist", raw_sha256=_hashes(d))
    return d


def _flip_byte(path: Path, offset: int = -5) -> None:
    b = bytearray(path.read_bytes())
    b[offset] ^= 0xFF
    path.write_bytes(bytes(b))


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob(".*") if p.name.startswith((".staging-", ".download-", ".npm-", ".old-"))]


@pytest.mark.parametrize("gz", [False, True])
def test_provision_from_dir_then_read_with_torchvision(tmp_path, monkeypatch, gz):
    d = tmp_path / "in"
    write_idx_dataset(d, n_train=300, n_test=100, gz=gz)
    raw = tmp_path / "rawcopy"
    for f in RAW_FILES:  # expected hashes are those of the DECOMPRESSED files
        raw.mkdir(exist_ok=True)
        (raw / f).write_bytes(gzip.decompress((d / f"{f}.gz").read_bytes()) if gz else (d / f).read_bytes())
    _patch(monkeypatch, "fashion-mnist", raw_sha256=_hashes(raw))
    root = data.data_root()
    assert not data.is_prepared("fashion-mnist")
    desc = provision("fashion-mnist", from_dir=d, **QUIET)
    assert str(d) in desc and "checksums verified" in desc
    assert data.is_prepared("fashion-mnist") and data.raw_dir("fashion-mnist") == root / "FashionMNIST" / "raw"
    manifest = json.loads((root / "FashionMNIST" / data.MANIFEST).read_text())
    assert manifest["checksums_verified"] is True and manifest["files"].keys() == set(RAW_FILES)
    # the real torchvision class reads what we installed
    tv = torchvision.datasets.FashionMNIST(str(root), train=True, download=False)
    images, labels = make_split(300, 0)
    assert torch.equal(tv.data, torch.from_numpy(images)) and torch.equal(tv.targets, torch.from_numpy(labels).long())
    s = data.load_splits("fashion-mnist", val_size=50, split_seed=0)
    assert (len(s.train_images), len(s.val_images), len(s.test_images)) == (250, 50, 100)
    assert s.train_images.dtype == torch.uint8 and s.train_images.shape[1:] == (28, 28)
    assert s.train_labels.dtype == torch.int64 and s.test_labels.dtype == torch.int64
    assert s.classes[0] == "T-shirt/top" and s.checksum == data.dataset_checksum("fashion-mnist")
    # already prepared: a second call does nothing and says so
    assert provision("fashion-mnist", **QUIET).startswith("already prepared")
    assert not _leftovers(root)


def test_corrupt_file_refused_by_checksum(src):
    _flip_byte(src / "t10k-images-idx3-ubyte")  # a pixel: structure intact, only the checksum can tell
    with pytest.raises(DataError) as e:
        provision("fashion-mnist", from_dir=src, **QUIET)
    msg = str(e.value)
    assert "t10k-images-idx3-ubyte" in msg and "corrupt" in msg and "\n" not in msg
    assert not data.is_prepared("fashion-mnist") and not _leftovers(data.data_root())


def test_skip_checksum_accepts_unknown_files(tmp_path):
    d = tmp_path / "in"
    write_idx_dataset(d, n_train=100, n_test=50)
    desc = provision("kmnist", from_dir=d, skip_checksum=True, **QUIET)
    assert "checksum skipped" in desc and data.is_prepared("kmnist")
    assert data.load_splits("kmnist", val_size=20).val_labels.shape == (20,)


@pytest.mark.parametrize("file,edit,needle", [
    ("train-images-idx3-ubyte", lambda b: b[:-10], "truncated"),
    ("train-labels-idx1-ubyte", lambda b: b[:5], "truncated"),
    ("t10k-images-idx3-ubyte", lambda b: (2049).to_bytes(4, "big") + b[4:], "magic"),
    ("t10k-labels-idx1-ubyte", lambda b: b"<html>not found</html>", "magic"),
    ("train-images-idx3-ubyte", lambda b: b + b"\0" * 3, "too long"),
])
def test_structurally_bad_file_refused(src, file, edit, needle):
    path = src / file
    path.write_bytes(edit(path.read_bytes()))
    with pytest.raises(DataError) as e:
        provision("fashion-mnist", from_dir=src, skip_checksum=True, **QUIET)
    assert file in str(e.value) and needle in str(e.value) and "\n" not in str(e.value)
    assert not data.is_prepared("fashion-mnist")


def test_count_mismatch_and_bad_gzip_refused(tmp_path):
    d = tmp_path / "in"
    write_idx_dataset(d, n_train=100, n_test=50)
    write_idx_file(d / "t10k-labels-idx1-ubyte", np.zeros(40, np.uint8))
    with pytest.raises(DataError, match="50 images but t10k-labels has 40"):
        provision("kmnist", from_dir=d, skip_checksum=True, **QUIET)
    g = tmp_path / "gz"
    write_idx_dataset(g, n_train=100, n_test=50, gz=True)
    (g / "train-images-idx3-ubyte.gz").write_bytes((g / "train-images-idx3-ubyte.gz").read_bytes()[:200])
    with pytest.raises(DataError, match="cannot read .*train-images-idx3-ubyte.gz"):
        provision("kmnist", from_dir=g, skip_checksum=True, **QUIET)


def test_from_dir_missing_or_incomplete(tmp_path):
    with pytest.raises(DataError, match="no such directory"):
        provision("mnist", from_dir=tmp_path / "nope", **QUIET)
    d = tmp_path / "partial"
    write_idx_dataset(d, n_train=100, n_test=50)
    (d / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"lacks t10k-labels-idx1-ubyte\[\.gz\]"):
        provision("mnist", from_dir=d, **QUIET)


def test_from_dir_with_another_dataset_is_named(src, monkeypatch):
    # src's hashes are what "fashion-mnist" expects, so asking for MNIST from it must name the mix-up
    with pytest.raises(DataError, match="holds Fashion-MNIST, not MNIST"):
        provision("mnist", from_dir=src, skip_checksum=True, **QUIET)


def test_all_sources_failing_lists_every_source(tmp_path, monkeypatch):
    (tmp_path / "emptysys").mkdir()
    _patch(monkeypatch, "fashion-mnist", system_dirs=(str(tmp_path / "emptysys"),))
    with pytest.raises(DataError) as e:
        provision("fashion-mnist", **QUIET)
    msg = str(e.value)
    assert "system directories" in msg and "emptysys" in msg and "--from DIR" in msg
    assert "dataset-fashion-mnist" in msg and "\n" not in msg


def _fake_tv_class(write: int, fail: bool):
    """Stands in for torchvision's class: writes ``write`` raw files where torchvision would, then maybe fails."""
    def __init__(self, root, train=True, download=False):
        raw = Path(root) / "FashionMNIST" / "raw"
        write_idx_dataset(raw, n_train=100, n_test=50)
        for f in RAW_FILES[write:]:
            (raw / f).unlink()
        if fail:
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried http://mirror/, got:\n<urlopen error>")
    return type("FashionMNIST", (), {"__init__": __init__})


def test_failed_partial_download_leaves_nothing(monkeypatch):
    _patch(monkeypatch, "fashion-mnist", tv_class=_fake_tv_class(write=2, fail=True), apt_package=None,
           npm_package=None)
    with pytest.raises(DataError) as e:
        provision("fashion-mnist", allow_download=True, allow_install=True, log=lambda *a: None)
    msg = str(e.value)
    assert "system directories" in msg and "torchvision download" in msg and "RuntimeError" in msg and "\n" not in msg
    assert not data.is_prepared("fashion-mnist") and not data.raw_dir("fashion-mnist").exists()
    assert not _leftovers(data.data_root())


def test_successful_download_is_verified_and_installed(monkeypatch):
    _patch(monkeypatch, "fashion-mnist", tv_class=_fake_tv_class(write=4, fail=False), raw_sha256=None)
    desc = provision("fashion-mnist", allow_download=True, allow_install=False, log=lambda *a: None)
    assert desc.startswith("torchvision download") and "no known checksum" in desc
    assert data.is_prepared("fashion-mnist") and not _leftovers(data.data_root())


def test_half_prepared_is_not_prepared(src, monkeypatch):
    raw = data.raw_dir("fashion-mnist")
    raw.mkdir(parents=True)
    for f in RAW_FILES:  # all files in place, but no manifest: e.g. copied by hand or interrupted
        (raw / f).write_bytes((src / f).read_bytes())
    assert not data.is_prepared("fashion-mnist")
    with pytest.raises(DataError, match="not prepared"):
        data.load_splits("fashion-mnist")
    # interrupted right before the manifest is written: files renamed into place, still not prepared
    monkeypatch.setattr(data.json, "dumps", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        provision("fashion-mnist", from_dir=src, **QUIET)
    assert not data.is_prepared("fashion-mnist") and not _leftovers(data.data_root())
    monkeypatch.undo()


def test_failed_reprovision_keeps_damaged_copy_unprepared(src, tmp_path, monkeypatch):
    provision("fashion-mnist", from_dir=src, **QUIET)
    bad = tmp_path / "bad"
    write_idx_dataset(bad, n_train=100, n_test=50)
    (bad / "train-images-idx3-ubyte").write_bytes(b"junk")
    (data.raw_dir("fashion-mnist") / "t10k-labels-idx1-ubyte").write_bytes(b"x")  # damage the prepared copy
    with pytest.raises(DataError, match="truncated"):
        provision("fashion-mnist", from_dir=bad, skip_checksum=True, **QUIET)
    assert not data.is_prepared("fashion-mnist")
    assert provision("fashion-mnist", from_dir=src, **QUIET).startswith("directory")


def test_later_corruption_detected_and_repaired(src):
    provision("fashion-mnist", from_dir=src, **QUIET)
    good = data.dataset_checksum("fashion-mnist")
    target = data.raw_dir("fashion-mnist") / "train-labels-idx1-ubyte"
    _flip_byte(target)
    assert data.is_prepared("fashion-mnist")  # same size: only re-hashing can tell
    with pytest.raises(DataError) as e:
        data.dataset_checksum("fashion-mnist")
    assert "train-labels-idx1-ubyte" in str(e.value) and "reportgen data fetch fashion-mnist" in str(e.value)
    with pytest.raises(DataError):
        data.load_splits("fashion-mnist")
    logged = []
    desc = provision("fashion-mnist", from_dir=src, allow_download=False, allow_install=False, log=logged.append)
    assert desc.startswith("directory") and any("damaged" in m for m in logged)
    assert data.dataset_checksum("fashion-mnist") == good
    target.write_bytes(target.read_bytes()[:-1])  # truncation: not even is_prepared accepts it
    assert not data.is_prepared("fashion-mnist")


def test_unknown_dataset_suggests_closest():
    with pytest.raises(DataError, match="did you mean 'kmnist'"):
        data.raw_dir("kminst")


def test_validation_split_stratified_deterministic():
    rng = np.random.default_rng(1)
    labels = rng.permutation(np.repeat(np.arange(10), 600))
    tr, va = data.validation_split(torch.from_numpy(labels), 1000, seed=3)
    assert len(va) == 1000 and len(tr) == 5000
    assert np.intersect1d(tr, va).size == 0 and np.array_equal(np.union1d(tr, va), np.arange(6000))
    assert np.array_equal(np.bincount(labels[va], minlength=10), np.full(10, 100))
    tr2, va2 = data.validation_split(labels, 1000, seed=3)
    assert np.array_equal(va, va2) and np.array_equal(tr, tr2)
    assert not np.array_equal(va, data.validation_split(labels, 1000, seed=4)[1])
    # tiny synthetic sets: an oversized hold-out is clamped to a fifth
    tr, va = data.validation_split(labels[:100], 5000, seed=0)
    assert (len(tr), len(va)) == (80, 20)
    assert data.validation_split(labels[:100], 0, seed=0)[1].size == 0


@pytest.mark.slow
def test_synthetic_data_is_learnable():
    torch.manual_seed(0)
    x, y = (torch.from_numpy(a) for a in make_split(600, 0))
    xt, yt = (torch.from_numpy(a) for a in make_split(200, 1))
    norm = lambda t: (t.float().unsqueeze(1) / 255 - 0.1) / 0.2  # noqa: E731
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 12 * 12, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for i in range(0, 600, 32):  # one epoch
        loss = torch.nn.functional.cross_entropy(model(norm(x[i:i + 32])), y[i:i + 32].long())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert (model(norm(xt)).argmax(1) == yt.long()).float().mean() > 0.5


def test_scratch_folders_of_a_killed_fetch_are_removed_by_the_next_one(src):
    """A fetch killed mid-copy leaves hidden scratch folders; the next provisioning (holding the per-dataset lock,
    so they cannot belong to a running fetch) removes them, whether or not the data was already prepared."""
    root = data.data_root()
    base = root / "FashionMNIST"
    for name in (".staging-x1", ".old-x2", ".download-x3", ".npm-x4"):
        (base / name).mkdir(parents=True)
        (base / name / "train-images-idx3-ubyte").write_bytes(b"half")
    provision("fashion-mnist", from_dir=src, **QUIET)
    assert data.is_prepared("fashion-mnist") and not _leftovers(root)
    (base / ".staging-x5").mkdir()
    assert provision("fashion-mnist", **QUIET).startswith("already prepared")
    assert not _leftovers(root)


def test_a_second_provisioning_waits_for_the_first(src):
    """Two fetches into one data root never interleave: the second waits (and says so) until the first is done."""
    import fcntl
    import os
    import threading
    import time
    root = data.data_root()
    root.mkdir(parents=True)
    holder = os.open(root, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another process is provisioning
    said: list[str] = []
    worker = threading.Thread(target=lambda: provision("fashion-mnist", from_dir=src, allow_download=False,
                                                           allow_install=False, log=said.append))
    worker.start()
    deadline = time.monotonic() + 10
    while not said and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker.is_alive() and "waiting" in said[0] and not data.is_prepared("fashion-mnist")
    os.close(holder)  # the other process is done
    worker.join(30)
    assert not worker.is_alive() and data.is_prepared("fashion-mnist")


def _data_list_line(name: str) -> str:
    result = invoke("data", "list")
    assert result.exit_code == 0, result.output
    return next(line for line in result.output.splitlines() if line.split()[:1] == [name])


def test_data_list_says_checksums_verified_for_verified_data(synthetic_idx, monkeypatch):
    """`data list` reads the manifest key provisioning writes: matched checksums are reported as verified."""
    _patch(monkeypatch, "fashion-mnist", raw_sha256=_hashes(synthetic_idx))
    assert "checksums verified" in provision("fashion-mnist", from_dir=synthetic_idx, **QUIET)
    line = _data_list_line("fashion-mnist")
    assert "ready" in line and "checksums verified" in line and "NOT verified" not in line
    assert "missing" in _data_list_line("mnist")


def test_data_list_says_not_verified_when_checksums_were_skipped(data_root):
    """The conftest fixture provisions with skip_checksum: the manifest records that, and `data list` says so."""
    manifest = json.loads((data_root / "FashionMNIST" / data.MANIFEST).read_text())
    assert manifest[data.MANIFEST_VERIFIED] is False
    line = _data_list_line("fashion-mnist")
    assert "ready" in line and "checksums NOT verified" in line and "checksum skipped" in line


def test_data_list_reads_old_manifests_with_the_verified_key(src):
    provision("fashion-mnist", from_dir=src, **QUIET)
    path = data.data_root() / "FashionMNIST" / data.MANIFEST
    manifest = json.loads(path.read_text())
    del manifest[data.MANIFEST_VERIFIED]
    path.write_text(json.dumps({**manifest, "verified": True}))
    assert data.is_prepared("fashion-mnist") and "NOT verified" not in _data_list_line("fashion-mnist")
    path.write_text(json.dumps({k: v for k, v in manifest.items() if k != "verified"}))
    assert "checksums NOT verified" in _data_list_line("fashion-mnist")
