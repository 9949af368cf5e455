"""No post runs over MAX_PROSE_WORDS words of visible prose (issue 22, "teach it in fewer words"): every shipped
study is run with the `smoke` profile on synthetic data, built into the site, and each post's rendered HTML is
counted. The same posts are checked to link to the Methods page and to How to read a post, at sections they have.

**Visible prose**, as :func:`visible_text` reads it, is the running text a reader sees when the page opens, inside
the page's article: paragraphs, list items, headings and open admonitions. Left out:

- tables, code (``<pre>``, ``<code>``) and math (MathJax's ``arithmatex`` spans and blocks);
- collapsed blocks (``<details>`` without ``open``): a reader opens them on purpose;
- every tab of a tab group but the first: hidden until clicked;
- hidden elements (the interactive charts' data), images (their alt text too), ``<script>``, ``<noscript>``,
  ``<style>``, ``<svg>``;
- the post's header (authors, date, reading time) and the headings' permalink marks.

A word is then a whitespace-separated token with at least one letter or digit.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import ROOT

MAX_PROSE_WORDS = 1500

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_SKIPPED_TAGS = {"table", "pre", "code", "script", "style", "svg", "nav", "button", "noscript"}
_SKIPPED_CLASSES = {"arithmatex", "headerlink", "md-post__header", "md-source-file", "md-meta"}
_WORD = re.compile(r"[^\W_]")  # a letter or a digit


class _Visible(HTMLParser):
    """Collects the visible prose of the page's article (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []  # (tag, whether this element hides its content)
        self.article_depth: int | None = None
        self.tab_groups: list[int] = []  # per open tab group: how many tab blocks it has shown so far
        self.words: list[str] = []

    def _hides(self, tag: str, attrs: dict[str, str | None]) -> bool:
        classes = set((attrs.get("class") or "").split())
        if tag in _SKIPPED_TAGS or classes & _SKIPPED_CLASSES or "hidden" in attrs:
            return True
        if tag == "details" and "open" not in attrs:
            return True
        if "tabbed-block" in classes and self.tab_groups:
            self.tab_groups[-1] += 1
            return self.tab_groups[-1] > 1
        return False

    def handle_starttag(self, tag: str, attrs_list: list) -> None:
        attrs = dict(attrs_list)
        if tag in _VOID:
            return
        if self.article_depth is None:
            if tag == "article" and "md-content__inner" in (attrs.get("class") or ""):
                self.article_depth = len(self.stack)
            self.stack.append((tag, False))
            return
        if "tabbed-content" in (attrs.get("class") or "").split():
            self.tab_groups.append(0)
            self.stack.append((tag + ":tabs", self._hidden()))
            return
        self.stack.append((tag, self._hidden() or self._hides(tag, attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        while self.stack:
            open_tag, _ = self.stack.pop()
            if open_tag.endswith(":tabs"):
                self.tab_groups.pop()
            if open_tag.split(":")[0] == tag:
                break
        if self.article_depth is not None and len(self.stack) <= self.article_depth:
            self.article_depth = -1  # the article is over: nothing after it counts

    def _hidden(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def handle_data(self, data: str) -> None:
        if self.article_depth is not None and self.article_depth >= 0 and not self._hidden():
            self.words.extend(data.split())


def visible_text(html: str) -> list[str]:
    """The tokens of a built page's visible prose."""
    parser = _Visible()
    parser.feed(html)
    parser.close()
    return parser.words


def visible_words(html: str) -> int:
    return sum(1 for token in visible_text(html) if _WORD.search(token))


# ---- the counter itself ----------------------------------------------------------------------------------------
PAGE = """<html><body><nav>Menu words</nav><div class="md-content"><article class="md-content__inner md-typeset">
<header class="md-post__header"><span>5 min read</span></header>
<h1 id="t">One two<a class="headerlink" href="#t">¶</a></h1>
<p>Three <a href="x">four</a> <code>code words</code> <span class="arithmatex">\\(x + y\\)</span>.</p>
<table><tr><td>seven</td></tr></table><pre><code>nine = ten</code></pre>
<p><img alt="eleven twelve" src="f.png"></p>
<div class="arithmatex">\\[thirteen\\]</div>
<details class="note"><summary>fourteen</summary><p>fifteen sixteen</p></details>
<details class="note" open><summary>Open</summary><p>shown</p></details>
<div class="admonition note"><p class="admonition-title">Twenty</p><p>Twenty-one.</p></div>
<div class="rg-chart" data-chart="{}" hidden>chart data</div>
<div class="tabbed-set"><div class="tabbed-labels"><label>A</label><label>B</label></div>
<div class="tabbed-content"><div class="tabbed-block"><p>first tab</p></div><div class="tabbed-block"><p>second tab</p></div></div></div>
<p>Last — words.</p>
</article></div><footer>Footer words</footer></body></html>"""


def test_visible_words_count_the_running_text_of_the_article_only():
    assert visible_text(PAGE) == ["One", "two", "Three", "four", ".", "Open", "shown", "Twenty",
                                       "Twenty-one.", "A", "B", "first", "tab", "Last", "—", "words."]
    assert visible_words(PAGE) == 14  # "." and "—" are not words


# ---- every shipped study, built with the smoke profile ----------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_site(smoke_site) -> Path:
    """The project of the session fixture ``smoke_site`` (tests/conftest.py: every shipped study run and built with
    the `smoke` profile on synthetic Fashion-MNIST; MNIST and KMNIST are not provisioned), shared with
    tests/test_e2e.py."""
    return smoke_site.project


def shipped_studies() -> list[str]:
    return sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml") if "." not in p.stem)  # not <id>.pt.yaml


@pytest.mark.slow
def test_the_tab_counter_follows_material_s_markup(smoke_site):
    """The built tab groups carry the classes the counter reads (a Material upgrade that renames them fails here)."""
    pages = [p.read_text() for p in (smoke_site / "site" / "blog").glob("*/index.html")]
    tabbed = [p for p in pages if "tabbed-set" in p]
    assert tabbed and all("tabbed-content" in p and "tabbed-block" in p for p in tabbed)


@pytest.mark.slow
def test_no_post_has_more_visible_prose_than_the_limit_in_either_edition(smoke_site):
    """The limit holds for the Portuguese posts too, although the same content takes more words in Portuguese."""
    pages = {f"{edition}{name}": smoke_site / "site" / edition / "blog" / name / "index.html"
             for name in shipped_studies() for edition in ("", "pt/")}
    assert all(p.is_file() for p in pages.values()), [n for n, p in pages.items() if not p.is_file()]
    counts = {name: visible_words(p.read_text()) for name, p in pages.items()}
    print("visible prose words per post:", counts)
    assert all(n > 100 for n in counts.values()), counts  # the counter reads the article, not nothing
    over = {name: n for name, n in counts.items() if n > MAX_PROSE_WORDS}
    assert not over, f"posts over {MAX_PROSE_WORDS} words of visible prose: {over}"


@pytest.mark.slow
@pytest.mark.parametrize("study", shipped_studies())
def test_every_post_links_to_how_to_read_and_methods_at_sections_they_have(smoke_site, study):
    from markdown.extensions.toc import slugify
    docs = smoke_site / "docs"
    text = (docs / "blog" / "posts" / f"{study}.md").read_text()
    assert "](../../how-to-read.md" in text, study
    for page in ("methods.md", "how-to-read.md"):
        targets = re.findall(rf"\]\(\.\./\.\./{re.escape(page)}(?:#([\w-]+))?\)", text)
        headings = re.findall(r"^#+ (.+)$", (docs / page).read_text(), re.M)
        anchors = {slugify(h, "-") for h in headings}
        assert {t for t in targets if t} <= anchors, (study, page, set(targets) - anchors)
    if study != "data" and "trains: false" not in (ROOT / "experiments" / f"{study}.yaml").read_text():
        assert "](../../methods.md" in text, f"{study} does not link to the Methods page"
