"""The whole pipeline, as a user runs it, on synthetic data: every shipped study under the `smoke` profile,
rendered and built with `mkdocs build --strict`, then opened in headless Chromium."""
from __future__ import annotations

import shutil
import time

import pytest

from tests.browser import BrowserUnavailable, check_site_in_browser
from tests.conftest import ROOT, invoke


@pytest.fixture
def full_project(project):
    """The `project` fixture plus every shipped experiment, mkdocs.yml, docs/ and the model source (snippets)."""
    for path in (ROOT / "experiments").glob("*.yaml"):
        shutil.copy(path, project / "experiments")
    shutil.copy(ROOT / "mkdocs.yml", project)
    shutil.copytree(ROOT / "docs", project / "docs", ignore=shutil.ignore_patterns("posts", "index.md"))
    (project / "docs" / "blog" / "posts").mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "reportgen", project / "reportgen", ignore=shutil.ignore_patterns("__pycache__"))
    return project


def test_smoke_profile_runs_renders_and_builds_every_study(full_project, tmp_path):
    started = time.perf_counter()
    result = invoke("run", "--profile", "smoke")
    assert result.exit_code == 0, result.output
    result = invoke("build", "--profile", "smoke")
    assert result.exit_code == 0, result.output
    elapsed = time.perf_counter() - started

    site = full_project / "site"
    assert (site / "index.html").exists()
    experiments = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))
    for exp in experiments:
        post = full_project / "docs" / "blog" / "posts" / f"{exp}.md"
        assert post.exists(), f"no post for {exp}"
    try:
        report = check_site_in_browser(site, ROOT / "test-artifacts")
    except BrowserUnavailable as exc:
        pytest.skip(f"browser check skipped: {exc}")
    assert report["problems"] == [], report["problems"]
    print(f"smoke pipeline over {len(experiments)} studies: {elapsed:.1f}s")
