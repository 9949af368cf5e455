"""Issue 18, "a Brazilian reader finds no English sentence outside code and glossary terms": the Portuguese edition
of the smoke site (every shipped study, built by :func:`tests.conftest.smoke_site`) is read page by page, and no
paragraph, list item, heading or table cell of its posts, home page, Methods, About or How to read a post reads as
English.

A block **reads as English** when it holds two or more of :data:`FUNCTION_WORDS` (the, of, is, to, ...: words that
no Portuguese sentence uses, while any English sentence of a few words uses several), once these are left out:

- code (``<pre>``, ``<code>``), math (MathJax's ``arithmatex`` spans and blocks), ``<script>``, ``<style>``,
  ``<svg>`` and images (a figure's drawn text is checked with the figures);
- the theme's navigation, header and footer (Material translates them itself: ``theme.language``);
- text in double quotes, which quotes English on purpose ("On this page");
- the glossary's English terms (reportgen/locale/glossary.yaml) and :data:`ALLOWED` proper names.

The pages "Write your own study" and the blog's archive and category pages are not checked here.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

FUNCTION_WORDS = frozenset(
    "the of and is are was were to with which that this from than not into each by its it what".split())
# Proper names and titles that hold English function words, as the sources print them.
ALLOWED = ("Gradient-based learning applied to document recognition",)
SKIPPED = frozenset({"pre", "code", "script", "style", "svg", "nav", "header", "footer", "math", "noscript"})
BLOCKS = frozenset({"p", "li", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "figcaption", "summary",
                    "blockquote", "div", "table", "tr", "ul", "ol", "details"})
VOID = frozenset({"br", "img", "hr", "input", "meta", "link", "source", "wbr", "area", "col", "embed", "track"})


class _Blocks(HTMLParser):
    """The text blocks of a page, outside :data:`SKIPPED` elements, and the ``lang`` of its ``<html>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang: str | None = None
        self.blocks: list[str] = []
        self._stack: list[bool] = []   # per open element: does it hide its text?
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "html":
            self.lang = values.get("lang")
        if tag in BLOCKS:
            self._flush()
        if tag in VOID:
            return
        hidden = tag in SKIPPED or "arithmatex" in (values.get("class") or "")
        self._stack.append(hidden or bool(self._stack and self._stack[-1]))

    def handle_startendtag(self, tag, attrs):
        if tag in BLOCKS:
            self._flush()

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if tag in BLOCKS:
            self._flush()
        if self._stack:
            self._stack.pop()

    def handle_data(self, data):
        if not (self._stack and self._stack[-1]):
            self._text.append(data)

    def _flush(self) -> None:
        text = " ".join("".join(self._text).split())
        self._text = []
        if text:
            self.blocks.append(text)


def read_page(page: Path) -> _Blocks:
    parser = _Blocks()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    parser._flush()
    return parser


def kept_terms() -> list[str]:
    """The glossary's English terms, longest first (so "max pooling" goes before "pooling")."""
    glossary = yaml.safe_load((ROOT / "reportgen" / "locale" / "glossary.yaml").read_text(encoding="utf-8"))
    return sorted(glossary["keep"], key=len, reverse=True)


def english_words(text: str, terms: list[str]) -> list[str]:
    """The function words of ``text`` once quotes, glossary terms and allowed names are taken out."""
    text = re.sub(r'"[^"]*"|“[^”]*”', " ", text)
    for name in (*ALLOWED, *terms):
        text = re.sub(rf"\b{re.escape(name)}\b", " ", text, flags=re.IGNORECASE)
    return [w for w in re.findall(r"[A-Za-z]+", text) if w.lower() in FUNCTION_WORDS]


def english_blocks(page: Path, terms: list[str]) -> list[str]:
    return [text for text in read_page(page).blocks if len(english_words(text, terms)) >= 2]


def checked_pages(site_pt: Path) -> list[Path]:
    """The pt edition's posts, home page, Methods, About and How to read a post."""
    posts = [p for p in sorted((site_pt / "blog").glob("*/index.html"))
             if p.parent.name not in ("archive", "category", "page")]
    return [site_pt / "index.html", *posts,
            *(site_pt / name / "index.html" for name in ("methods", "about", "how-to-read"))]


def test_english_blocks_are_found_and_portuguese_ones_pass(tmp_path):
    page = tmp_path / "index.html"
    page.write_text('<html lang="pt-BR"><body><nav><p>Skip to the content of this page</p></nav><article>'
                    "<p>A rede erra 12% das imagens de teste com <em>dropout</em>.</p>"
                    "<p>The layers add up to <code>61706</code> trainable parameters.</p>"
                    "<table><tr><td>Predicted with ≥ 90% confidence</td><td>…of which wrong</td></tr></table>"
                    '<p>O rodapé traz "Made with the theme of this site"; <code>for x in the list</code>.</p>'
                    '<p>Um <span class="arithmatex">\\(x \\text{ is the input to it}\\)</span> qualquer.</p>'
                    "<ul><li>LeCun et al. 1998 (Gradient-based learning applied to document recognition)</li>"
                    "<li>It is the number of the filters</li></ul></article></body></html>")
    assert read_page(page).lang == "pt-BR"
    assert english_blocks(page, kept_terms()) == ["The layers add up to trainable parameters.", "…of which wrong",
                                                  "It is the number of the filters"]


@pytest.mark.slow
def test_the_portuguese_edition_reads_as_portuguese(smoke_site):
    """Every checked page of site/pt declares pt-BR, and none of its blocks reads as English."""
    site_pt = smoke_site.project / "site" / "pt"
    pages = checked_pages(site_pt)
    assert len(pages) > 8 and all(p.is_file() for p in pages), pages
    assert {str(p.relative_to(site_pt)): read_page(p).lang for p in pages} == {
        str(p.relative_to(site_pt)): "pt-BR" for p in pages}
    terms = kept_terms()
    english = {str(p.relative_to(site_pt)): english_blocks(p, terms) for p in pages}
    assert {page: blocks for page, blocks in english.items() if blocks} == {}


@pytest.mark.slow
def test_the_portuguese_edition_prints_the_same_numbers_with_the_decimal_comma(smoke_site):
    """Each training post's results table: the English row `| LeNet | 90.0 | 85.1 to 93.4 | 61,706 |` is the
    Portuguese row `| LeNet | 90,0 | 85,1 a 93,4 | 61.706 |` — the same measurements, in Brazilian format — and no
    Portuguese post shows a Markdown asterisk that was meant as emphasis."""
    import re
    english_rows = re.compile(r"^\| [^|]+ \| (\d+)\.(\d+) \| (\d+)\.(\d+) to (\d+)\.(\d+) \| (\d+),?(\d*) \|", re.M)
    portuguese_rows = re.compile(r"^\| [^|]+ \| (\d+),(\d+) \| (\d+),(\d+) a (\d+),(\d+) \| (\d+)\.?(\d*) \|", re.M)
    english_posts = smoke_site.project / "docs" / "blog" / "posts"
    portuguese_posts = smoke_site.project / ".editions" / "pt" / "docs" / "blog" / "posts"
    compared = 0
    for post in sorted(english_posts.glob("*.md")):
        portuguese = (portuguese_posts / post.name).read_text()
        english = english_rows.findall(post.read_text())
        assert english == portuguese_rows.findall(portuguese), post.name
        assert "\\*" not in portuguese, (post.name, portuguese[portuguese.index("\\*") - 60:][:120])
        compared += len(english)
    assert compared >= 10
