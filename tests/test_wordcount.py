"""No post runs over MAX_PROSE_WORDS words of prose (issue 12, "order and weight"): every shipped study is run
with the `smoke` profile on synthetic data and rendered, and each rendered post's prose is counted. The same
posts are checked to link to the Methods page, at sections it has.

**Prose**, as :func:`prose_words` counts it, is what a reader reads as running text when the page opens: the
paragraphs, list items, headings and open admonitions of the rendered Markdown. Left out:

- the YAML front matter;
- fenced code blocks (```` ``` ```` or ``~~~``, at any indentation) and display math (``$$ … $$``), inline math
  (``\\( … \\)``) and inline code (`` `…` ``);
- collapsed blocks (``??? kind "title"`` and everything indented under it): a reader opens them on purpose;
- every tab of a tab group but the first (``=== "label"`` and what is indented under it): hidden until clicked,
  like a collapsed block (the first tab is what the page shows);
- table rows (lines that start with ``|``, at any indentation): tables are numbers, not prose;
- figures (``![alt](path)``, alt text included) and HTML tags with their attributes (the interactive charts);
- link targets (``[text](target)`` counts its text only) and Markdown punctuation.

A word is then a whitespace-separated token with at least one letter or digit.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, invoke

MAX_PROSE_WORDS = 2500

_FENCE = re.compile(r"^\s*(```|~~~)")
_COLLAPSED = re.compile(r"^(\s*)\?\?\?(?!\+)\s")
_TAB = re.compile(r"^(\s*)=== ")
_FIGURE = re.compile(r"!\[(?:\\.|[^\]\\])*\]\([^)]*\)(\{[^}]*\})?")
_LINK = re.compile(r"\[((?:\\.|[^\]\\])*)\]\([^)]*\)")
_TAG = re.compile(r"<!--.*?-->|<[^>]*>", re.S)
_INLINE = re.compile(r"\\\(.*?\\\)|`[^`]*`")
_WORD = re.compile(r"[^\W_]")  # a letter or a digit


def prose_text(markdown: str) -> str:
    """The prose of a rendered post (see the module docstring for what is left out)."""
    text = markdown
    if text.startswith("---\n"):
        text = text.split("\n---\n", 1)[1]
    kept, fence, math, collapsed = [], None, False, None
    tab_groups: set[int] = set()  # indentations at which a tab group is open (its first tab was seen)
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if collapsed is not None:
            if not line.strip() or indent > collapsed:
                continue
            collapsed = None
        if line.strip() and fence is None and not math:
            tab = _TAB.match(line)
            tab_groups = {i for i in tab_groups if i < indent or (tab and i == indent)}  # a group ends here
            if tab:
                if indent in tab_groups:  # a later tab of an open group: hidden like a collapsed block
                    collapsed = indent
                tab_groups.add(indent)
                continue
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            continue
        if math:
            math = not line.strip().endswith("$$")  # the line that ends the display math is left out too
            continue
        match = _FENCE.match(line)
        if match:
            fence = match.group(1)
            continue
        if line.strip().startswith("$$"):  # display math: one line ($$ x $$) or up to the closing $$
            math = line.strip() == "$$" or not line.strip().endswith("$$")
            continue
        match = _COLLAPSED.match(line)
        if match:
            collapsed = len(match.group(1))
            continue
        if line.lstrip().startswith("|"):
            continue
        kept.append(line)
    prose = "\n".join(kept)
    prose = _TAG.sub(" ", prose)
    prose = _FIGURE.sub(" ", prose)
    prose = _LINK.sub(r"\1", prose)
    return _INLINE.sub(" ", prose)


def prose_words(markdown: str) -> int:
    return sum(1 for token in prose_text(markdown).split() if _WORD.search(token))


# ---- the counter itself ----------------------------------------------------------------------------------------
def test_prose_words_counts_running_text_only():
    post = "\n".join([
        "---", "title: Not counted either", "---", "", "# One two", "",
        "Three four [five](../six.md) `code words` \\(x + y\\).", "",
        "| seven | eight |", "|---|---|", "", "```python", "nine = ten", "```", "",
        "![eleven twelve](fig.png)", "", "$$", "thirteen", "$$", "",
        '??? note "fourteen"', "    fifteen sixteen", "", "    | seventeen |", "",
        "Eighteen — nineteen.", "", '!!! note "Twenty"', "    Twenty-one.",
        '<div class="rg-chart" data-chart="{&quot;words&quot;: 1}" markdown>', "</div>",
    ])
    assert prose_text(post).split() == ["#", "One", "two", "Three", "four", "five", ".", "Eighteen", "—",
                                        "nineteen.", "!!!", "note", '"Twenty"', "Twenty-one."]
    assert prose_words(post) == 10  # "#", "—", "." and '!!!' are not words; 'note' is the admonition's kind


def test_only_the_first_tab_of_a_tab_group_counts():
    post = "\n".join(['=== "A"', "", "    first tab words", "", '=== "B"', "", "    second tab words", "",
                      "Between groups.", "", '=== "C"', "", "    third", "", '=== "D"', "    fourth"])
    assert prose_text(post).split() == ["first", "tab", "words", "Between", "groups.", "third"]


def test_a_collapsed_block_ends_at_the_first_line_that_is_not_indented_under_it():
    post = "Intro.\n\n    ??? example \"Inner\"\n        hidden words here\n\n    Visible again.\n\nEnd."
    assert prose_text(post).split() == ["Intro.", "Visible", "again.", "End."]


# ---- every shipped study, rendered with the smoke profile -------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_posts(tmp_path_factory, synthetic_idx) -> Path:
    """docs/ of a project with every shipped study (YAML and prose), run and rendered with the `smoke` profile on
    synthetic Fashion-MNIST (MNIST and KMNIST are not provisioned). The strict build of the same posts is
    tests/test_e2e.py's."""
    from reportgen.data import provision
    base = tmp_path_factory.mktemp("wordcount")
    project, data = base / "project", base / "data"
    shutil.copytree(ROOT / "experiments", project / "experiments")
    patch = pytest.MonkeyPatch()
    for key, value in {"REPORTGEN_DATA": str(data), "REPORTGEN_OFFLINE": "1", "REPORTGEN_SKIP_CHECKSUM": "1",
                       "REPORTGEN_CACHE": str(base / "cache")}.items():
        patch.setenv(key, value)
    patch.delenv("REPORTGEN_RESULTS", raising=False)
    provision("fashion-mnist", data, from_dir=synthetic_idx, skip_checksum=True, allow_download=False,
              allow_install=False, log=lambda *_: None)
    patch.chdir(project)
    try:
        for verb in ("run", "render"):
            result = invoke(verb, "--profile", "smoke")
            assert result.exit_code == 0, result.output
        yield project / "docs"
    finally:
        patch.undo()


def training_studies() -> list[str]:
    import yaml
    return sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml")
                  if yaml.safe_load(p.read_text()).get("trains", True))


@pytest.mark.slow
def test_no_post_has_more_prose_than_the_limit(smoke_posts):
    posts = sorted((smoke_posts / "blog" / "posts").glob("*.md"))
    assert {p.stem for p in posts} == {p.stem for p in (ROOT / "experiments").glob("*.yaml")}
    counts = {p.stem: prose_words(p.read_text()) for p in posts}
    print("prose words per post:", counts)
    over = {name: n for name, n in counts.items() if n > MAX_PROSE_WORDS}
    assert not over, f"posts over {MAX_PROSE_WORDS} words of prose: {over}"


@pytest.mark.slow
@pytest.mark.parametrize("study", training_studies())
def test_every_training_post_links_to_the_methods_page_and_its_sections_exist(smoke_posts, study):
    from markdown.extensions.toc import slugify
    text = (smoke_posts / "blog" / "posts" / f"{study}.md").read_text()
    targets = re.findall(r"\]\(\.\./\.\./methods\.md(?:#([\w-]+))?\)", text)
    assert targets, f"{study} does not link to the Methods page"
    headings = re.findall(r"^#+ (.+)$", (smoke_posts / "methods.md").read_text(), re.M)
    anchors = {slugify(h, "-") for h in headings}
    assert {t for t in targets if t} <= anchors, (study, set(targets) - anchors)
