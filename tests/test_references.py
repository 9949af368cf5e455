"""The reference numbers (reportgen/references.yaml) and the `references` analysis: the shipped file loads and every
entry names a checkable source, references are matched by dataset and model family, the partial shows our interval
and a link per reference, and a bad entry is one line naming the file and the entry. No training: the study's runs
are stand-ins carrying only what the analysis reads."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from reportgen import analyses
from reportgen.analyses import AnalysisError
from reportgen.analyses import references as refs
from reportgen.markdown import package_environment
from reportgen.study import Study, VariantResults
from tests.synthetic import stored


def _run(model: str, seed: int, acc: float, epochs: int = 3) -> SimpleNamespace:
    history, metrics, _ = stored([{"epoch": e} for e in range(1, epochs + 1)], test_acc=acc)
    return SimpleNamespace(seed=seed, config={"model": {"name": model, "options": {}}}, metrics=metrics,
                           history=history)


def _variant(name: str, dataset: str, model: str, accs: list[float]) -> VariantResults:
    return VariantResults(name=name, label=name.upper(), description="", dataset=dataset,
                          runs=[_run(model, seed, acc) for seed, acc in enumerate(accs)])


def _study(*variants: VariantResults) -> Study:
    return Study(id="compare", config=SimpleNamespace(), profile="smoke", variants=list(variants))


def _render(result: refs.ReferencesResult) -> str:
    return package_environment().get_template(analyses.get("references").template).render(a=result)


def _write(tmp_path: Path, entries: list[dict]) -> Path:
    path = tmp_path / "references.yaml"
    path.write_text(yaml.safe_dump({"references": entries}, allow_unicode=True), encoding="utf-8")
    return path


GOOD = {"dataset": "mnist", "family": "lenet", "value": 99.05, "stated": "0.95% test error",
        "model": "Convolutional net LeNet-5", "source": "http://yann.lecun.com/exdb/mnist/",
        "measured": "LeCun et al. 1998"}


# ---- the data file ------------------------------------------------------------------------------------------------
def test_the_shipped_file_loads_and_every_entry_has_a_source_and_a_measurement():
    entries = refs.load_references()
    assert entries, "reportgen/references.yaml holds no reference"
    for e in entries:
        assert re.match(r"^https?://", e.source) and e.measured.strip() and e.model.strip()
        assert 0 < e.value <= 100
    assert {e.dataset for e in entries} <= {"mnist", "fashion-mnist", "kmnist"}
    # LeCun's MNIST page states LeNet-5's test error, 0.95%: the entry keeps the stated number beside the accuracy
    lenet5 = [e for e in entries if e.dataset == "mnist" and e.model.startswith("Convolutional net LeNet-5")]
    assert [(e.value, e.stated) for e in lenet5] == [(99.05, "0.95% test error")]


def test_references_are_matched_by_dataset_and_model_family():
    entries = [refs.Reference(**{**GOOD, "value": 99.05}),
               refs.Reference(**{**GOOD, "family": "mlp", "model": "2-layer NN", "value": 95.3}),
               refs.Reference(**{**GOOD, "dataset": "fashion-mnist", "model": "2 Conv+pooling", "value": 91.6}),
               refs.Reference(**{**GOOD, "model": "LeNet-4", "value": 98.9})]
    assert [e.model for e in refs.matching(entries, "mnist", "lenet")] == ["Convolutional net LeNet-5", "LeNet-4"]
    assert [e.model for e in refs.matching(entries, "mnist", "mlp")] == ["2-layer NN"]
    assert [e.model for e in refs.matching(entries, "fashion-mnist", "lenet")] == ["2 Conv+pooling"]
    assert refs.matching(entries, "kmnist", "lenet") == []
    assert refs.family_of("lenet") == "lenet" and refs.family_of("fcnn") == "mlp"
    assert refs.family_of("tiny") == "cnn" and refs.family_of("deep_pool") == "cnn"


# ---- the analysis and its partial ---------------------------------------------------------------------------------
def test_each_variant_sits_beside_the_references_of_its_dataset_and_family_with_a_link_each():
    study = _study(_variant("lenet", "fashion-mnist", "lenet", [0.90, 0.91]),
                   _variant("fc", "fashion-mnist", "fcnn", [0.88, 0.87]),
                   _variant("mnist-lenet", "mnist", "lenet", [0.99]))
    result = refs.compute(study, figures=None)
    shipped = refs.load_references()
    assert [(g.dataset, g.family) for g in result.groups] == [("fashion-mnist", "lenet"), ("fashion-mnist", "mlp"),
                                                              ("mnist", "lenet")]
    for g in result.groups:
        assert [r.model for r in g.references] == [e.model for e in refs.matching(shipped, g.dataset, g.family)]
    lenet = result.groups[0].ours[0]
    assert lenet.acc.n == 2 and lenet.acc.mean == pytest.approx(90.5) and lenet.epochs == 3

    text = _render(result)
    assert "come from other networks and training budgets" in " ".join(text.split())
    assert "90.5" in text and "—" in text  # our mean (one decimal: its interval is wider than 0.1); the single MNIST seed has no interval
    lines = [line.strip() for line in text.splitlines()]  # the tables sit in a collapsed block, indented
    rows = [line for line in lines if line.startswith("| ") and "(ours)" not in line
            and not line.startswith("| Model") and "This post's network" not in line]
    n_refs = sum(len(g.references) for g in result.groups)
    assert len(rows) == n_refs and n_refs > 0
    for g in result.groups:
        for r in g.references:
            source = next(e.source for e in shipped if e.model == r.model and e.dataset == g.dataset)
            assert f"]({source})" in text
    assert all(re.search(r"\]\(https?://[^)\s]+\)", row) for row in rows), "every reference row links its source"


def test_a_variant_without_references_says_so_and_a_study_without_results_renders():
    text = _render(refs.compute(_study(_variant("fc", "kmnist", "fcnn", [0.8, 0.82])), figures=None))
    assert "No published number for fully connected networks on KMNIST" in text
    assert "No variant of this study has results" in _render(refs.compute(_study(), figures=None))


def test_the_analysis_is_registered_and_needs_training():
    analysis = analyses.get("references")
    assert analysis.needs_training and not analysis.needs_convolution and analysis.template == "references.md.j2"


# ---- a bad file ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, expected", [
    ({"value": 0.95}, None),  # a plausible-looking fraction is still a number in range: accepted
    ({"value": 101}, "value"),
    ({"family": "resnet"}, "family"),
    ({"dataset": "cifar10"}, "dataset"),
    ({"source": "see the paper"}, "source"),
    ({"source": "https://example.org/a (b)"}, "source"),
    ({"colour": "red"}, "colour"),
])
def test_a_bad_entry_is_one_line_naming_the_file_and_the_entry(tmp_path, change, expected):
    path = _write(tmp_path, [GOOD, {**GOOD, **change}])
    if expected is None:
        assert len(refs.load_references(path)) == 2
        return
    with pytest.raises(AnalysisError) as info:
        refs.load_references(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: entry 2 ('Convolutional net LeNet-5'): {expected}")


def test_a_missing_field_and_a_broken_file_are_one_line(tmp_path):
    path = _write(tmp_path, [{k: v for k, v in GOOD.items() if k != "measured"}])
    with pytest.raises(AnalysisError, match=r"entry 1 \('Convolutional net LeNet-5'\): measured: Field required$"):
        refs.load_references(path)
    path.write_text("references: [\n", encoding="utf-8")
    with pytest.raises(AnalysisError, match=r"not valid YAML \(line \d+\)") as info:
        refs.load_references(path)
    assert "\n" not in str(info.value)
    path.write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(AnalysisError) as info:
        refs.load_references(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)
