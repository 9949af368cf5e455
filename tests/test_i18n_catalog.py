"""The Brazilian Portuguese catalog of the generic text (reportgen/locale/pt_BR/LC_MESSAGES/messages.po): in step with
the code (``make messages``), every message translated, and translated text rendered like the English text."""
from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from reportgen import i18n, numbers
from reportgen.markdown import package_environment, prose_environment

ROOT = Path(__file__).resolve().parents[1]


def _extracted() -> set[str | tuple[str, str]]:
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    out: set[str | tuple[str, str]] = set()
    for _file, _line, message, _comments, context in extract_from_dir(str(ROOT / "reportgen"), method_map,
                                                                       options_map):
        msgid = message if isinstance(message, str) else message[0]
        out.add((context, msgid) if context else msgid)
    return out


def _catalog():
    with i18n.catalog_path("pt").open("rb") as f:
        return read_po(f, locale="pt_BR")


def _key(message) -> str | tuple[str, str]:
    msgid = message.id if isinstance(message.id, str) else message.id[0]
    return (message.context, msgid) if message.context else msgid


def test_the_catalog_has_every_message_of_the_code_and_no_other():
    in_code = _extracted()
    in_po = {_key(m) for m in _catalog() if m.id}
    assert not in_code - in_po, f"run `make messages`: the catalog lacks {sorted(map(str, in_code - in_po))[:5]}"
    assert not in_po - in_code, f"run `make messages`: the code no longer has {sorted(map(str, in_po - in_code))[:5]}"


def test_every_message_is_translated_and_none_is_fuzzy():
    catalog = _catalog()
    untranslated = [m.id for m in catalog if m.id and (not m.string or not all(
        m.string if isinstance(m.string, tuple) else [m.string]))]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not untranslated, f"{len(untranslated)} messages have no translation, e.g. {untranslated[:3]}"
    assert not fuzzy, f"{len(fuzzy)} fuzzy translations, e.g. {fuzzy[:3]}"


def test_every_translation_keeps_its_placeholders():
    problems = [(m.id, [str(e) for e in errors]) for m, errors in _catalog().check()]
    assert not problems, problems[:3]


def test_the_portuguese_edition_formats_numbers_by_its_locale():
    ci = {"mean": 91.5649, "low": 90.77, "high": 91.45, "n": 3, "std": 0.2}
    with i18n.active("pt"):
        assert numbers.fixed(91.5649, 2) == "91,56"
        assert numbers.thousands(61706) == "61.706"
        assert numbers.interval(ci, 2) == "90,77 a 91,45"
        assert numbers.measured(ci).startswith("91,6% (IC 95% ")
    assert numbers.fixed(91.5649, 2) == "91.56" and numbers.thousands(61706) == "61,706"
    assert numbers.interval(ci, 2) == "90.77 to 91.45"


def test_study_prose_has_no_gettext_since_it_is_written_in_each_language():
    with pytest.raises(jinja2.TemplateSyntaxError):
        prose_environment("pt").from_string("{% trans %}x{% endtrans %}")
    assert prose_environment("pt").globals == {}


@pytest.mark.parametrize("environment", [package_environment])
def test_translated_text_keeps_its_markdown_and_escapes_its_values_like_the_english(environment):
    source = ('{% trans label=label %}**{{ label }}** scores higher{% endtrans %}|'
              '{{ gettext("**%(label)s** scores higher", label=label) }}|{{ label }}')
    label = "a *label* <b>"
    english = environment("en").from_string(source).render(label=label)
    assert english == ("**a \\*label\\* &lt;b&gt;** scores higher|" * 2) + "a \\*label\\* &lt;b&gt;"
    assert environment("pt").from_string(source).render(label=label).split("|")[2] == english.split("|")[2]


def test_the_active_edition_chooses_the_catalog():
    assert i18n._("95% CI") == "95% CI"
    with i18n.active("pt"):
        assert i18n._("95% CI") == "IC 95%"
        assert package_environment().from_string('{{ _("%(low)s to %(high)s", low=1, high=2) }}').render() == "1 a 2"


def test_a_translated_heading_keeps_its_english_anchor_so_links_into_the_page_still_land():
    source = '## {{ _("The checkpoint") | anchored }}\n## {{ _("Converged or still learning?") | anchored }}'
    assert package_environment("en").from_string(source).render() == (
        "## The checkpoint\n## Converged or still learning?")
    with i18n.active("pt"):
        pt = package_environment().from_string(source).render()
    assert pt.splitlines()[0].endswith(" { #the-checkpoint }") and not pt.startswith("## The checkpoint")
    assert pt.splitlines()[1].endswith(" { #converged-or-still-learning }")


def test_text_written_from_python_carries_no_markdown_emphasis_the_english_lacks():
    """Figures, chart labels and values a template escapes would show a translation's `*batch*` as asterisks."""
    with i18n.active("pt"):
        assert "*" not in i18n._("Feature maps of ") and "Feature maps" in i18n._("Feature maps of ")
        assert "*" not in i18n._("batch size %(n)s")
    assert i18n._plain("**Bold** in English", "**Negrito** em português") == "**Negrito** em português"
    assert i18n._plain("2 x 3", "*kernel* 2 × 3 e *feature map*") == "kernel 2 × 3 e feature map"


def test_a_filters_orientation_is_printed_in_the_editions_words():
    from reportgen.analyses.filters import FilterReading
    f = FilterReading(index=0, sum=0.0, balance=0.0, near_zero_sum=True, flat_black=0.0,
                      orientation="rising diagonal", coherence=0.9)
    assert f.orientation_words == "rising diagonal"
    with i18n.active("pt"):
        assert f.orientation_words == "diagonal ascendente" and f.orientation == "rising diagonal"
