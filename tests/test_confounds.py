"""The declared factor and the confounds check: a study says what it varies (``varies:``), a variant declares the
other differences it has on purpose (``intended:``), and `reportgen list` warns about every other one — parameter
count beyond the tolerance, training-set size, dataset, recipe, epochs — without changing its exit code."""
from __future__ import annotations

from pathlib import Path

import pytest

from reportgen import confounds
from reportgen.config import discover, load_study
from reportgen.models import build_model, count_parameters
from reportgen.settings import PARAMETER_TOLERANCE
from tests.conftest import ROOT, run_main

STUDY = """\
id: study
title: A study
varies: "{varies}"
model: {{name: lenet}}
training: {{epochs: 2, lr: 0.001}}
profiles: {{smoke: {{epochs: 1, seeds: [0], train_limit: 128, eval_limit: 100}}}}
baseline: plain
variants:
  - {{name: plain, label: Plain}}
  - name: other
    label: Other
{other}
"""


def write(directory: Path, other: str, varies: str = "the convolution widths") -> Path:
    path = directory / "study.yaml"
    path.write_text(STUDY.format(varies=varies, other=other))
    return path


@pytest.fixture
def studies(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "experiments"
    directory.mkdir()
    monkeypatch.chdir(tmp_path)
    return directory


def warnings_of(*args: str) -> tuple[int, list[str], str]:
    code, out, err = run_main(*args)
    return code, [line for line in err.splitlines() if line.startswith("warning:")], err + out


# ---- the comparison itself -----------------------------------------------------------------------------------
def resolved(**changes):
    base = {"dataset": "fashion-mnist", "model": {"name": "lenet", "options": {}}, "train_limit": None,
            "training": {"optimizer": "adam", "lr": 0.001, "epochs": 10}}
    return base, {**base, **changes}


def test_each_kind_of_difference_is_found_with_both_values():
    base, same = resolved()
    assert confounds.compare(base, same, 1000, 1000) == {}
    _, other = resolved(train_limit=2000, dataset="mnist", training={"optimizer": "sgd", "lr": 0.001, "epochs": 40})
    found = confounds.compare(base, other, 1000, 1000)
    assert found["data"] == ("the first 2,000 training images", "all training images")
    assert found["dataset"] == ("MNIST", "Fashion-MNIST")
    assert found["recipe"] == ("optimizer: sgd", "optimizer: adam")  # epochs are their own kind, not the recipe
    assert found["epochs"] == ("40", "10")
    assert set(found) == {"data", "dataset", "recipe", "epochs"}


def test_parameter_count_differs_only_beyond_the_tolerance():
    base, same = resolved()
    inside = round(1000 * (1 + PARAMETER_TOLERANCE))  # exactly at the tolerance: still the same size
    assert "parameters" not in confounds.compare(base, same, 1000, inside)
    found = confounds.compare(base, same, 1000, inside + 1)
    assert found["parameters"][1] == "1,000" and found["parameters"][0].startswith(f"{inside + 1:,} (+")


def test_augmentation_is_named_in_words():
    base, _ = resolved()
    _, other = resolved(training={**base["training"], "augment": {"rotation": 10.0, "translate": 0.0,
                                                                  "scale": [1.0, 1.0], "shear": 0.0}})
    assert confounds.compare(base, other, 1, 1)["recipe"] == ("augment: rotation ±10°", "augment: none")


# ---- reportgen list ------------------------------------------------------------------------------------------
WIDER = "    model: {options: {channels: [16, 32]}}"
CASES = [
    ("parameters", WIDER, "parameter count", ["61,706"]),
    ("recipe", "    training: {lr: 0.01}", "training recipe", ["lr: 0.01 vs lr: 0.001"]),
    ("dataset", "    dataset: mnist", "dataset", ["MNIST vs Fashion-MNIST"]),
]


@pytest.mark.parametrize("kind, override, what, values", CASES, ids=[c[0] for c in CASES])
def test_list_warns_about_an_undeclared_difference_until_it_is_declared(studies, kind, override, what, values):
    path = write(studies, override)
    code, warned, output = warnings_of("list", "--profile", "smoke")
    assert code == 0, output
    assert len(warned) == 1, output
    line = warned[0]
    assert line.startswith(f"warning: {Path('experiments/study.yaml')}: variants[1] 'other' differs from the "
                           f"baseline 'plain' in {what}"), line
    assert all(v in line for v in values) and f"intended: [{kind}]" in line, line
    write(studies, override + f"\n    intended: [{kind}]\n    intended_reason: on purpose")
    code, warned, output = warnings_of("list", "--profile", "smoke")
    assert code == 0 and warned == [], output
    assert load_study(path).variant("other").intended == [kind]


def test_a_difference_the_variant_does_not_have_is_a_stale_declaration(studies):
    write(studies, "    model: {options: {channels: [6, 17]}}\n    intended: [parameters]")
    code, warned, output = warnings_of("list", "--profile", "smoke")
    assert code == 0 and len(warned) == 1, output
    assert "variants[1] 'other': intended: lists 'parameters'" in warned[0] and "remove it" in warned[0]


def test_a_variant_s_own_epochs_are_used_under_their_profile_and_must_be_declared(studies):
    """``epochs: {full: 4}`` trains that variant 4 epochs under full only; the difference is a confound until
    declared, and a declaration that holds under one profile only is not stale under the others."""
    path = write(studies, "    epochs: {full: 4}")
    exp = load_study(path)
    assert exp.resolve(exp.variant("other"), 0, "full")["training"]["epochs"] == 4
    assert exp.resolve(exp.variant("other"), 0, "quick")["training"]["epochs"] == 2
    assert exp.resolve(exp.variant("plain"), 0, "full")["training"]["epochs"] == 2
    code, warned, output = warnings_of("list", "--profile", "full")
    assert code == 0 and len(warned) == 1 and "number of epochs" in warned[0] and "4 vs 2" in warned[0], output
    assert "intended: [epochs]" in warned[0], output
    write(studies, "    epochs: {full: 4}\n    intended: [epochs]\n    intended_reason: to converge")
    for profile in ("smoke", "quick", "full"):
        code, warned, output = warnings_of("list", "--profile", profile)
        assert code == 0 and warned == [], (profile, output)


@pytest.mark.parametrize("other, fragments", [
    ("    epochs: {full: 0}", ["variants[1].epochs.full", "greater than 0"]),
    ("    epochs: {ful: 4}", ["variants[1].epochs", "'ful'", "full"]),
    ("    training: {epochs: 4}", ["variants[1].training", "epochs: {<profile>: N}"]),
])
def test_a_bad_variant_epochs_is_one_line_exit_2(studies, other, fragments):
    write(studies, other)
    code, out, err = run_main("list", "--profile", "smoke")
    assert code == 2 and out == "" and "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert all(f in err for f in fragments), err


def test_the_study_s_own_factor_is_neither_warned_nor_declared(studies):
    """``factor: dataset`` in a study of datasets: the dataset difference is the comparison itself, so it is no
    confound; a variant that still declares it is told to remove the declaration."""
    path = write(studies, "    dataset: mnist")
    text = path.read_text().replace('varies: "the convolution widths"', 'varies: "the dataset"\nfactor: dataset')
    path.write_text(text)
    code, warned, output = warnings_of("list", "--profile", "smoke")
    assert code == 0 and warned == [], output
    assert confounds.differences(load_study(path), "smoke") == []
    path.write_text(text + "    intended: [dataset]\n")
    code, out, err = run_main("list", "--profile", "smoke")
    assert code == 2 and err.count("\n") == 1 and "intended: lists 'dataset', the study's factor" in err, err


def test_a_study_that_does_not_say_what_it_varies_is_warned(studies):
    write(studies, "    model: {options: {dropout: 0.5}}", varies="")
    code, warned, output = warnings_of("list", "--profile", "smoke")
    assert code == 0 and len(warned) == 1 and "varies: is not set" in warned[0], output


@pytest.mark.parametrize("other, fragments", [
    ("    intended: [paramters]", ["variants[1].intended[0]: 'paramters' is not allowed",
                                   "choose from parameters, data, dataset, recipe, epochs",
                                   "did you mean 'parameters'?"]),
    ("    intended: [recipe, recipe]", ["variants[1]: intended: 'recipe' is listed twice"]),
    ("    intended_reason: because", ["variants[1]: intended_reason explains intended differences"]),
    ("    varies: dropout", ["unknown field 'variants[1].varies'", "intended, intended_reason"]),
])
def test_a_bad_declaration_is_one_line_exit_2(studies, other, fragments):
    write(studies, other)
    code, out, err = run_main("list", "--profile", "smoke")
    assert code == 2 and out == "" and "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert all(f in err for f in fragments), err


def test_the_declared_factor_does_not_enter_any_cache_key(studies):
    """varies, intended and intended_reason describe a study; they do not change what is trained."""
    plain = load_study(write(studies, WIDER))
    declared = load_study(write(studies, WIDER + "\n    intended: [parameters]\n    intended_reason: wider",
                                varies="something else entirely"))
    for profile in ("smoke", "quick", "full"):
        for v in plain.variants:
            assert plain.resolve(v, 0, profile) == declared.resolve(declared.variant(v.name), 0, profile)


# ---- the shipped studies -------------------------------------------------------------------------------------
def test_shipped_studies_declare_their_factor_and_every_difference():
    """`reportgen list` on the shipped studies warns about nothing: each says what it varies, and each variant
    that differs from its baseline in more than that says so, with a reason."""
    for exp_id, (path, exp) in discover(ROOT / "experiments").items():
        for profile in ("smoke", "quick", "full"):
            assert confounds.warnings(path, exp, profile) == [], (exp_id, profile)
        for d in confounds.differences(exp, "full"):
            assert d.intended and d.reason, (exp_id, d)


def test_the_pooling_comparison_matches_parameters_except_global_average_pooling():
    """The pooling study's point: strided LeNet has exactly LeNet's parameters; only the GAP variant differs, by
    design."""
    _, exp = discover(ROOT / "experiments")["pooling"]
    found = {(d.variant, d.kind) for d in confounds.differences(exp, "full")}
    assert found == {("gap", "parameters"), ("gap", "epochs")}
    assert {(d.variant, d.kind) for d in confounds.differences(exp, "quick")} == {("gap", "parameters")}
    models = {v.name: exp.resolve(v, 0, "full")["model"] for v in exp.variants}
    counts = {name: count_parameters(build_model(m["name"], **m["options"])) for name, m in models.items()}
    assert counts["strided"] == counts["pool"] > counts["gap"]
