"""A warm rebuild keeps what did not change: a post whose inputs are those of its last render (and which is on disk
as written then) is not rendered again, and within one command a run file is hashed once."""
from __future__ import annotations

from pathlib import Path

import pytest

from reportgen import fsutil, stamp
from reportgen.post import render_post
from tests.test_render import two_variant_study, write_run


@pytest.fixture
def alpha(tmp_path, monkeypatch):
    """The fake two-variant study of tests/test_render.py (results written, nothing trained) and its cache."""
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REPORTGEN_DATA", str(tmp_path / "data"))
    exp, store = two_variant_study(tmp_path)
    return exp, store, tmp_path / "docs"


def render(alpha, **changes) -> tuple[Path, bool, bytes]:
    exp, store, docs = alpha
    args = {"exp": exp, "declared": None, "prose_file": None, **changes}
    path, kept = render_post("alpha", args["exp"], "quick", store, docs, args["declared"], args["prose_file"],
                             keep_unchanged=True)
    return path, kept, path.read_bytes()


def test_an_unchanged_post_is_kept_byte_for_byte(alpha):
    _, kept, first = render(alpha)
    assert not kept
    path, kept, again = render(alpha)
    assert kept and again == first
    exp, store, docs = alpha
    assert render_post("alpha", exp, "quick", store, docs)[0].read_bytes() == first  # rendered: the same bytes


def test_a_changed_input_or_output_renders_the_post_again(alpha, tmp_path):
    exp, store, docs = alpha
    _, _, first = render(alpha)
    _, kept, linked = render(alpha, declared={"alpha": exp.title, "beta": "Beta"})  # another site around it
    assert not kept
    assert render(alpha, declared={"alpha": exp.title, "beta": "Beta"})[1]
    prose = tmp_path / "alpha.md"
    prose.write_text("Some prose.\n")
    _, kept, text = render(alpha, prose_file=prose)
    assert not kept and b"Some prose." in text
    prose.write_text("Other prose.\n")
    _, kept, text = render(alpha, prose_file=prose)
    assert not kept and b"Other prose." in text
    path, kept, _ = render(alpha)
    assert not kept  # back to the first inputs: the stamp holds the last render only
    path.write_text("edited by hand\n")
    _, kept, text = render(alpha)
    assert not kept and text == first
    write_run(store, exp, "better", 0, "quick", 0.9)  # a result changed
    _, kept, text = render(alpha)
    assert not kept and text != first
    stamp.forget("alpha")
    assert not render(alpha)[1]


def test_inside_hashing_once_a_file_is_read_once_until_it_changes(tmp_path, monkeypatch):
    reads: list[Path] = []
    real = fsutil._sha256_file
    monkeypatch.setattr(fsutil, "_sha256_file", lambda path: reads.append(path) or real(path))
    file = tmp_path / "run.json"
    file.write_text("one")
    first = fsutil.sha256_file(file)
    assert fsutil.sha256_file(file) == first and len(reads) == 2  # outside: read every time
    with fsutil.hashing_once():
        assert fsutil.sha256_file(file) == first and fsutil.sha256_file(file) == first
        assert len(reads) == 3
        file.write_text("two, longer")
        assert fsutil.sha256_file(file) != first and len(reads) == 4
    assert fsutil.sha256_file(file) != first and len(reads) == 5


# ---- the other steps a warm command skips: the checks, the precompute, the site's resource check ---------------
def test_a_study_that_passed_the_checks_is_not_checked_again_until_an_input_changes(alpha, tmp_path, monkeypatch):
    from reportgen import pipeline
    exp, _, _ = alpha
    yaml_path = tmp_path / "experiments" / "alpha.yaml"
    checked = []
    monkeypatch.setattr(pipeline, "_check_study", lambda studies, name, profile, prose: checked.append(name))
    studies = {"alpha": (yaml_path, exp)}
    pipeline.preflight(studies, ["alpha"], "quick")
    pipeline.preflight(studies, ["alpha"], "quick")
    assert checked == ["alpha"]
    pipeline.preflight(studies, ["alpha"], "full")  # another profile
    yaml_path.with_suffix(".md").write_text("Some prose.\n")  # prose appears
    pipeline.preflight(studies, ["alpha"], "full")
    assert checked == ["alpha"] * 3


def test_the_precompute_key_follows_the_study_s_runs(alpha, tmp_path):
    exp, store, _ = alpha
    key = stamp.precompute_key("alpha", exp, "quick", store.root)
    assert key == stamp.precompute_key("alpha", exp, "quick", store.root)
    assert not stamp.seen(stamp.PRECOMPUTED, "alpha", key)
    stamp.remember(stamp.PRECOMPUTED, "alpha", key)
    assert stamp.seen(stamp.PRECOMPUTED, "alpha", key)
    marker = next(store.root.glob("alpha/base/seed-0/COMPLETE.json"))
    marker.write_text(marker.read_text() + " ")  # a run replaced: its marker differs
    assert stamp.precompute_key("alpha", exp, "quick", store.root) != key


def test_the_site_check_parses_a_built_page_once_while_its_bytes_stay_the_same(tmp_path, monkeypatch):
    from reportgen import site
    monkeypatch.setenv("REPORTGEN_CACHE", str(tmp_path / "cache"))
    page = tmp_path / "site" / "index.html"
    page.parent.mkdir()
    page.write_text('<img src="https://cdn.example/x.png"><script src="missing.js"></script>')
    fed = []
    original = site._ResourceParser.feed
    monkeypatch.setattr(site._ResourceParser, "feed", lambda self, text: (fed.append(1), original(self, text))[1])
    cache = site.ResourceCache.load()
    assert site.external_resources(page.parent, cache) == [("index.html", "https://cdn.example/x.png")]
    assert site.missing_resources(page.parent, "/", cache) == [("index.html", "missing.js")]
    cache.save()
    assert len(fed) == 1
    again = site.ResourceCache.load()  # the next build
    assert site.missing_resources(page.parent, "/", again) == [("index.html", "missing.js")] and len(fed) == 1
    page.write_text('<script src="index.html"></script>')
    assert site.missing_resources(page.parent, "/", again) == [] and len(fed) == 2
