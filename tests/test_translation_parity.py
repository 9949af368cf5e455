"""Each study's Portuguese prose keeps the Jinja of its English prose; its .pt.yaml names only what the study
declares; the Portuguese static pages keep their English pages' anchors and links."""

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_translation_parity",
                                               ROOT / "scripts" / "check_translation_parity.py")
parity = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(parity)  # type: ignore[union-attr]

STUDIES = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml") if "." not in p.stem)


@pytest.mark.parametrize("study", STUDIES)
def test_portuguese_prose_keeps_the_jinja_and_names_only_declared_keys(study):
    assert parity.check(study)


@pytest.mark.parametrize("page", sorted((ROOT / "docs").rglob("*.pt.md")), ids=lambda p: p.name)
def test_portuguese_page_keeps_the_anchors_and_links(page):
    assert parity.check_page(page)


def test_a_changed_variable_or_filter_is_caught_and_a_translated_sentence_is_not():
    english = '{{ diff("dropout").mean|signed(1) }} points{% call takeaway(figure="curves") %}x{% endcall %}'
    assert parity.compare_prose(english, english.replace("points", "pontos")) == ([], [])
    problems, _ = parity.compare_prose(english, english.replace('"dropout"', '"no-dropout"'))
    assert problems
    problems, _ = parity.compare_prose(english, english.replace("signed(1)", "signed(2)"))
    assert problems
    problems, _ = parity.compare_prose(english, english.replace("{% call", "{%- call"))
    assert problems
    problems, translated = parity.compare_prose('{{ a if b else "all the" }}', '{{ a if b else "todas as" }}')
    assert not problems and translated == [('"all the"', '"todas as"')]


def test_a_misspelt_key_or_undeclared_variant_in_a_pt_yaml_is_reported():
    study = yaml.safe_load((ROOT / "experiments" / "dropout.yaml").read_text())
    assert parity.check_yaml(study, {"title": "x", "variants": {"dropout": {"label": "y"}}}) == []
    assert parity.check_yaml(study, {"titel": "x"})
    assert parity.check_yaml(study, {"variants": {"dropuot": {"label": "y"}}})
    assert parity.check_yaml(study, {"exercises": {"p-half": {"hint": "h", "prediction": {"accuracy": "lower"}}}})
