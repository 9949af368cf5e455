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
