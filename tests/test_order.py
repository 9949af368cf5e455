"""The reading order (issue 12, "order and weight"): the data post first, then convolution → tiny → cnn-vs-fc →
pooling → augmentation → dropout → batchnorm → datasets. The home table follows the studies' ``order:``; the blog
plugin sorts posts by date, newest first, so the ``date:`` fields must fall as ``order:`` rises (the dates
themselves: tests/test_render.py::test_blog_dates_follow_the_reading_order). Checked on the shipped studies: the
declared order, the home table, and the blog index of a real strict build of their front matter."""
from __future__ import annotations

import re

import pytest

from reportgen.methods import write_methods

from reportgen.config import discover
from reportgen.home import render_home
from reportgen.markdown import package_environment
from reportgen.settings import DATASET_TRAIN_SIZE, VAL_SIZE
from reportgen.site import build_site
from reportgen.store import Store
from tests.conftest import ROOT, copy_site_sources
from tests.test_render import SHIPPED

READING_ORDER = SHIPPED  # one list of the shipped studies in their reading order
POST_LINK = re.compile(r'<h2 id="[^"]*"><a class="toclink" href="(?:\.\./)*([^"/]+)/">')  # a post's title


@pytest.fixture(scope="module")
def studies() -> dict:
    return discover(ROOT / "experiments")


def test_the_studies_are_declared_in_the_reading_order_with_the_data_post_first(studies):
    assert list(studies) == READING_ORDER
    first = studies[READING_ORDER[0]][1]
    assert not first.trains and first.analyses == ["dataset_overview"]
    orders = [exp.order for _, exp in studies.values()]
    assert len(set(orders)) == len(orders), "two studies share an order: their place would depend on their ids"


def home_table(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in text.splitlines()
            if re.match(r"\| \d+ \| ", line)]


def test_the_home_table_lists_every_study_in_reading_order_with_its_data_size_and_epochs(studies, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    text = render_home(studies, "quick", Store(tmp_path / "results"), docs, built=set(studies)).read_text()
    rows = home_table(text)
    assert [int(r[0]) for r in rows] == list(range(1, len(studies) + 1))
    for row, (name, (_, exp)) in zip(rows, studies.items()):
        assert row[1].startswith(f"[{exp.title}](blog/posts/{name}.md)"), (row[1], name)
        if exp.trains:
            profile = exp.profile("quick")
            size = profile.train_limit or DATASET_TRAIN_SIZE - VAL_SIZE
            epochs = f"{profile.epochs} epoch" + ("s" if profile.epochs != 1 else "")
            assert row[2] == f"{size:,} images, {epochs}", (name, row[2])
        else:  # an illustration: no training data, no results row
            assert row[2] == "—" and row[3] == "nothing is trained for this post", (name, row)


@pytest.fixture(scope="module")
def blog_index(studies, tmp_path_factory) -> list[str]:
    """The post slugs of the built blog index, page by page, in the order the reader sees them: a strict build of
    the real mkdocs.yml and hand-written pages, with one post per shipped study carrying its real front matter."""
    project = tmp_path_factory.mktemp("order") / "project"
    copy_site_sources(project)  # the Methods page quotes the model's source
    docs, front = project / "docs", package_environment().get_template("_front.md.j2")
    (docs / "blog" / "posts").mkdir(parents=True)
    for name, (_, exp) in studies.items():
        (docs / "blog" / "posts" / f"{name}.md").write_text(front.render(exp=exp) + "A post.\n")
    for page in ("index.md", "write-your-own.md"):  # the generated pages the nav lists
        (docs / page).write_text(f"# {page}\n")
    write_methods(docs)  # the real one: How to read a post links to its sections
    site = build_site(project)
    pages = [site / "blog" / "index.html"]  # then blog/page/2/, 3/, ... when the posts fill more than one page
    pages += sorted((site / "blog").glob("page/*/index.html"), key=lambda p: int(p.parent.name))
    return [slug for page in pages for slug in POST_LINK.findall(page.read_text())]


@pytest.mark.slow
def test_the_blog_index_lists_the_posts_in_reading_order(blog_index, studies):
    assert blog_index == [exp.id for _, exp in studies.values()]
