"""The data post (issue 12, "order and weight"): the shipped study `data` trains nothing and shows every dataset
reportgen can train on — samples of each class, the class names, the split sizes the runs use and the pixel
statistics they are normalised with. A dataset that is not provisioned gets a visible note, and the post still
renders. Synthetic IDX files stand in for Fashion-MNIST and MNIST; KMNIST is not provisioned."""
from __future__ import annotations

import re
import shutil

import pytest

from reportgen.data import DATASETS, load_splits
from reportgen.loader import Normalization
from tests.conftest import ROOT, run_main

SHOWN = ("fashion-mnist", "mnist")
MISSING = "kmnist"


@pytest.fixture(scope="module")
def data_post(tmp_path_factory, synthetic_idx):
    """The rendered data post (rendered once) of a project holding the shipped `data` study, with Fashion-MNIST and
    MNIST provisioned from the same synthetic files and KMNIST left out."""
    from reportgen.provision import provision
    base = tmp_path_factory.mktemp("data-post")
    project, data = base / "project", base / "data"
    (project / "experiments").mkdir(parents=True)
    for suffix in (".yaml", ".md"):
        shutil.copy(ROOT / "experiments" / f"data{suffix}", project / "experiments")
    patch = pytest.MonkeyPatch()
    for key, value in {"REPORTGEN_DATA": str(data), "REPORTGEN_CACHE": str(base / "cache"),
                       "REPORTGEN_OFFLINE": "1", "REPORTGEN_SKIP_CHECKSUM": "1"}.items():
        patch.setenv(key, value)
    patch.delenv("REPORTGEN_RESULTS", raising=False)
    patch.chdir(project)
    try:
        for name in SHOWN:
            provision(name, data, from_dir=synthetic_idx, skip_checksum=True, allow_download=False,
                      allow_install=False, log=lambda *_: None)
        code, _, err = run_main("render", "data", "--profile", "quick")
        assert code == 0, err
        assert not (project / "results").exists()  # nothing was trained
        yield project / "docs" / "blog" / "posts"
    finally:
        patch.undo()


def test_the_data_post_shows_samples_classes_splits_and_statistics_of_each_provisioned_dataset(data_post):
    text = (data_post / "data.md").read_text()
    for name in SHOWN:
        title, splits = DATASETS[name].title, load_splits(name)
        for figure in (f"data/overview-samples-{name}.png", f"data/class-means-{name}.png"):
            assert f"]({figure})" in text and (data_post / figure).is_file(), figure
        tab = text.split(f'=== "{title}"')[1].split("\n=== ")[0].split("### ")[0]
        for index, cls in enumerate(splits.classes):  # every class with its images in each split
            counts = [int((labels == index).sum()) for labels in (splits.train_labels, splits.val_labels,
                                                                   splits.test_labels)]
            assert f"| {index} | {cls} | " + " | ".join(f"{n:,}" for n in counts) + " |" in tab, (title, cls)
        norm = Normalization.of(splits.train_images)
        sizes = (len(splits.train_labels), len(splits.val_labels), len(splits.test_labels))
        row = next(line for line in text.splitlines() if line.startswith(f"| {title} | {len(splits.classes)} |"))
        assert row.startswith(f"| {title} | {len(splits.classes)} | " + " | ".join(f"{n:,}" for n in sizes) + " | "), row
        scaled = next(line for line in text.splitlines() if line.startswith(f"| {title} | {norm.mean:.4f} |"))
        assert f"{(0 - norm.mean) / norm.std:+.3f}".replace("-", "\u2212") in scaled, scaled


def test_a_dataset_that_is_not_provisioned_is_a_visible_note_not_a_failure(data_post):
    text = (data_post / "data.md").read_text()
    title = DATASETS[MISSING].title
    assert f'!!! warning "{title} is not shown"' in text
    assert f"`reportgen data fetch {MISSING}`" in text
    assert f"| {title} | *not provisioned here* |" in text
    assert f'=== "{title}"' not in text and not (data_post / "data" / f"overview-samples-{MISSING}.png").exists()


def test_the_data_post_states_no_number_it_did_not_compute(data_post):
    """Every number in the prose around the blocks comes from the blocks: the study's own prose types none in."""
    prose = (ROOT / "experiments" / "data.md").read_text()
    assert not re.search(r"\d", re.sub(r"\{\{.*?\}\}", "", prose)), "a typed-in number in experiments/data.md"
