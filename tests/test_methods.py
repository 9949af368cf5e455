"""The Methods page (issue 12, "order and weight"): the method every post shares — splits, checkpoint, seeds,
intervals, the convergence rule, the gap, the shift grid — said once, on a page generated from the code, so every
number on it is the constant the pipeline uses. The posts link to it (tests/test_wordcount.py checks the links in
a built site)."""
from __future__ import annotations

import re

import pytest

from reportgen import methods, settings
from reportgen.methods import methods_markdown, write_methods
from reportgen.pipeline import Workspace, render
from reportgen.schema import DEFAULT_PROFILES
from reportgen.store import Store


def section(text: str, heading: str) -> str:
    return text.split(f"## {heading}\n")[1].split("\n## ")[0]


def test_its_numbers_are_the_constants_of_the_code():
    text = methods_markdown()
    data = " ".join(section(text, "Data and splits").split())
    assert f"an official training set of {settings.DATASET_TRAIN_SIZE:,} images" in data
    assert f"{settings.VAL_SIZE:,} images are held out" in data
    assert f"split seed {settings.SPLIT_SEED}," in data
    assert f"trains on the remaining {settings.DATASET_TRAIN_SIZE - settings.VAL_SIZE:,}" in data
    assert f"{settings.NUM_CLASSES} classes of {settings.IMAGE_SIZE} × {settings.IMAGE_SIZE}" in data
    intervals = " ".join(section(text, "Accuracy and intervals").split())
    assert intervals.count(f"{round(100 * settings.CONFIDENCE)}%") == 3
    checkpoint = " ".join(section(text, "The checkpoint").split())
    assert (f"more than {settings.VAL_LOSS_EPOCH_TOLERANCE} epochs away from the checkpoint and the loss at the "
            f"checkpoint is more than {round(100 * settings.VAL_LOSS_RISE_FRACTION)}% above") in checkpoint.replace("*", "")
    gap = " ".join(section(text, "Training accuracy and the gap").split())
    assert f"the first {settings.TRAIN_EVAL_IMAGES:,} of the training images" in gap
    shifts = " ".join(section(text, "Shifted images").split())
    r = settings.SHIFT_RADIUS
    assert f"from −{r} to +{r} ({(2 * r + 1) ** 2} shifts)" in shifts
    confounds = " ".join(section(text, "What a comparison may differ in").split())
    assert f"more than {round(100 * settings.PARAMETER_TOLERANCE)}% away" in confounds
    rows = [line for line in section(text, "Profiles").splitlines() if line.startswith("| `")]
    assert [re.match(r"\| `(\w+)` \| ([\d, ]+) \|", row).groups() for row in rows] == \
        [(name, ", ".join(map(str, p["seeds"]))) for name, p in DEFAULT_PROFILES.items()]


def test_a_changed_constant_changes_the_page(monkeypatch):
    """Nothing is typed in: the page follows the settings module."""
    monkeypatch.setattr(settings, "VAL_SIZE", 4321)
    monkeypatch.setattr(settings, "CONVERGENCE_WINDOW", 7)
    text = methods_markdown()
    assert "4,321 images are held out" in text and "**7 epochs**" in text
    assert "5,000" not in text


def test_the_template_types_in_no_number():
    """Outside its Jinja expressions the page's template holds no digit but a few pieces of notation and names."""
    source = (methods.Path(methods.__file__).parent / "templates" / "_methods.md.j2").read_text()
    prose = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", "", source, flags=re.S)
    prose = prose.replace("n − 1 degrees", "").replace("0–1", "").replace("\\(1 - ", "")
    prose = re.sub(r"LeNet-5|conv[12]|fc[123]", "", prose)  # names, not numbers
    assert not re.findall(r".{20}\d.{20}", prose)


def test_render_writes_the_page_beside_the_posts(tmp_path, monkeypatch):
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "note.yaml").write_text("id: note\ntitle: A note\ntrains: false\n")
    monkeypatch.chdir(tmp_path)
    ws = Workspace(studies_dir=tmp_path / "experiments", store=Store(tmp_path / "results"), docs=tmp_path / "docs")
    render(ws, [], "quick", log=lambda *_: None)
    assert (tmp_path / "docs" / "methods.md").read_text() == methods_markdown()
    assert write_methods(tmp_path / "other").read_text() == methods_markdown()


def test_the_standard_recipe_is_the_one_most_training_studies_share():
    """The Methods page states the recipe most studies train with, not the first study's (a bug once picked the
    first, so the page said label smoothing 0 while five of seven setup tables said 0.1)."""
    from types import SimpleNamespace
    from reportgen.schema import TrainingConfig

    def study(**training):
        return None, SimpleNamespace(trains=True, training=TrainingConfig(**training))
    studies = {"first": study(lr=0.01), "a": study(label_smoothing=0.1, weight_decay=0.0005),
               "b": study(label_smoothing=0.1, weight_decay=0.0005, epochs=3), "c": study(lr=0.02)}
    recipe = methods.standard_recipe(studies)
    assert (recipe.label_smoothing, recipe.weight_decay) == (0.1, 0.0005)
    assert "label smoothing 0.1 and weight\ndecay 0.0005" in methods_markdown(recipe)
    assert "(91% here)" in methods_markdown(recipe)


def test_the_training_loss_floor_under_label_smoothing_is_the_smoothed_target_s_entropy():
    """The floor the page states is where the loss really bottoms out: a network that outputs the smoothed target
    scores it, and any other output scores more (cross-entropy against a fixed target is smallest there)."""
    import torch
    from reportgen.schema import TrainingConfig
    eps, k = 0.1, settings.NUM_CLASSES
    target = torch.full((1, k), eps / k)
    target[0, 0] += 1 - eps
    loss = torch.nn.CrossEntropyLoss(label_smoothing=eps)
    at_target = loss(target.log(), torch.tensor([0])).item()
    assert methods.loss_floor(eps) == pytest.approx(at_target, abs=1e-6)
    sharper = torch.tensor([[8.0] + [0.0] * (k - 1)])
    assert loss(sharper, torch.tensor([0])).item() > at_target
    text = " ".join(methods_markdown(TrainingConfig(label_smoothing=eps)).split())
    assert f"cannot fall below the entropy of that target, {methods.loss_floor(eps):.2f} here" in text
    assert "cannot fall below" not in methods_markdown(TrainingConfig(label_smoothing=0.0))
