"""The whole pipeline, as a user runs it, on synthetic data: every shipped study (its YAML and its prose) under the
`smoke` profile, run, rendered and built with `mkdocs build --strict`, then opened in headless Chromium.

The project is the session fixture ``smoke_site`` (tests/conftest.py), which tests/test_wordcount.py reads too."""
from __future__ import annotations

import re

import pytest

from tests.browser import BrowserUnavailable, check_site_in_browser
from tests.conftest import ROOT


@pytest.mark.slow
def test_smoke_profile_runs_renders_and_builds_every_study(smoke_site):
    full_project = smoke_site.project
    assert "not run in the" not in smoke_site.build_output, smoke_site.build_output
    assert "removed the post" not in smoke_site.build_output, smoke_site.build_output

    site = full_project / "site"
    assert (site / "index.html").exists()
    experiments = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml") if "." not in p.stem)
    home = (full_project / "docs" / "index.md").read_text()
    assert "not run in the" not in home and "not in this build" not in home
    for exp in experiments:
        post = full_project / "docs" / "blog" / "posts" / f"{exp}.md"
        assert post.exists(), f"no post for {exp}"
        assert f"](blog/posts/{exp}.md)" in home, exp
        assert (site / "blog" / exp / "index.html").is_file(), exp
        text = post.read_text()
        assert "## Reproduce this post" in text and "--profile smoke" in text, exp
        if (ROOT / "experiments" / f"{exp}.md").exists():  # the prose is in the post: its first heading
            heading = re.search(r"^#+ [^{\n]+$", (ROOT / "experiments" / f"{exp}.md").read_text(), re.M)
            assert heading is None or heading.group(0) in text, (exp, heading)
    try:
        # Every English page in the browser but the category and archive listings, which Material builds from the
        # blog index's template (that one is opened). Of the Portuguese edition, which shares the English pages'
        # templates, scripts and styles, three pages in the browser (the home page, a post with math and a live
        # model, a listing). The links and images of the pages left out are checked over HTTP, read from their HTML.
        sample = {"pt/", "pt/blog/pooling/", "pt/blog/"}

        def visit(page: str) -> bool:
            if page.startswith("pt/"):
                return page in sample
            return not page.startswith(("blog/category/", "blog/archive/"))
        report = check_site_in_browser(site, ROOT / "test-artifacts" / "e2e", visit=visit)  # apart from test_site.py's
    except BrowserUnavailable as exc:
        pytest.skip(f"browser check skipped: {exc}")
    assert report["problems"] == [], report["problems"]
