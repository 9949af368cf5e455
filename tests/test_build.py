"""Issue 13, build what ran: `reportgen build` (and `make report EXPERIMENTS=...`) makes the site of the studies
that have complete results for the profile; the others get no post, and the home page lists them with the command
that runs them. One site is one profile: posts of studies that are not in the build are removed. `render` stays
explicit: a study without results is an error there.

One module-scoped project (the hand-written site, three shipped studies, the study ``alpha`` trained once with
the smoke profile on synthetic data) is copied for every test; each build is a real `mkdocs build --strict` of
the real mkdocs.yml (the npm packages vendored once and hard-linked: tests/conftest.py).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from reportgen.store import check_run
from tests.conftest import ROOT, copy_project, copy_site_sources, run_main

ALPHA = """\
id: alpha
title: Alpha, the study that ran
description: Two tiny networks that differ in their learning rate.
question: Does a larger learning rate help the tiny network in one epoch?
date: 2026-03-02
order: 5
categories: [Tests]
tags: [build]
dataset: fashion-mnist
model: {name: tiny}
training: {optimizer: adam, lr: 0.001, batch_size: 64, epochs: 1}
profiles:
  smoke: {epochs: 1, seeds: [0], train_limit: 256, eval_limit: 100}
baseline: slow
variants:
  - {name: slow, label: Slow, description: learning rate 0.001}
  - {name: fast, label: Fast, description: learning rate 0.003, training: {lr: 0.003}}
analyses: [curves, architecture]
"""
OTHERS = ("dropout", "batchnorm")  # shipped studies that are never run here
ILLUSTRATION = "convolution"     # trains nothing: always complete
ENV = {"REPORTGEN_OFFLINE": "1", "REPORTGEN_SKIP_CHECKSUM": "1"}


class Result(NamedTuple):
    code: int
    out: str
    err: str


def reportgen(*args: str) -> Result:
    """``reportgen ARGS`` in-process through the console entry point (its error handling and exit codes)."""
    return Result(*run_main(*args))


def tree_hash(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}


def posts(project: Path) -> set[str]:
    return {p.name for p in (project / "docs" / "blog" / "posts").glob("*.md")}


def home_row(project: Path, title: str) -> str:
    """The home page's table row of the study titled ``title``."""
    rows = [line for line in (project / "docs" / "index.md").read_text().splitlines()
            if line.startswith("|") and title in line]
    assert len(rows) == 1, rows
    return rows[0]


def not_run(study: str, profile: str) -> str:
    return f"**not run in the `{profile}` profile** — run `reportgen run {study} --profile {profile}`"


def title(study: str) -> str:
    import yaml
    return yaml.safe_load((ROOT / "experiments" / f"{study}.yaml").read_text())["title"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_idx):
    """(a project whose only results are alpha's smoke runs, the data root). The environment points at the
    synthetic data for the whole module."""
    from reportgen.provision import provision
    base = tmp_path_factory.mktemp("build")
    project, data = base / "project", base / "data"
    (project / "experiments").mkdir(parents=True)
    (project / "experiments" / "alpha.yaml").write_text(ALPHA)
    for name in (*OTHERS, ILLUSTRATION):
        for suffix in (".yaml", ".md"):
            shutil.copy(ROOT / "experiments" / f"{name}{suffix}", project / "experiments")
    copy_site_sources(project, model_source="reportgen/models.py")  # the posts' --8<-- snippets
    patch = pytest.MonkeyPatch()
    patch.setenv("REPORTGEN_DATA", str(data))
    patch.setenv("REPORTGEN_CACHE", str(base / "cache"))  # one cache for the module: a figure is drawn once
    for key, value in ENV.items():
        patch.setenv(key, value)
    patch.delenv("REPORTGEN_RESULTS", raising=False)
    patch.delenv("REPORTGEN_DEBUG", raising=False)
    provision("fashion-mnist", data, from_dir=synthetic_idx, skip_checksum=True, allow_download=False,
              allow_install=False, log=lambda *_: None)
    patch.chdir(project)
    result = reportgen("run", "alpha", "--profile", "smoke", "--device", "cpu")
    assert result.code == 0, result.err
    assert not (project / "docs" / "index.md").exists() and not (project / "results" / "dropout").exists()
    yield project, data
    patch.undo()


@pytest.fixture
def project(trained, tmp_path, monkeypatch) -> Path:
    """A copy of the trained project, as the working directory."""
    copy = copy_project(trained[0], tmp_path / "project")
    monkeypatch.chdir(copy)
    return copy


# ---- (a) build what ran ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_build_of_the_one_study_that_ran(project):
    results = tree_hash(project / "results")
    result = reportgen("build", "alpha", "--profile", "smoke")
    assert result.code == 0, result.err
    assert "site built" in result.out and "error" not in result.err
    assert posts(project) == {"alpha.md"}
    assert "[Alpha, the study that ran](blog/posts/alpha.md)" in home_row(project, "Alpha, the study that ran")
    for study in OTHERS:  # declared, never run: no post, the command that runs it
        row = home_row(project, title(study))
        assert not_run(study, "smoke") in row and "](" not in row
    row = home_row(project, title(ILLUSTRATION))
    assert "nothing is trained; not in this build" in row and "](" not in row
    site = project / "site"
    assert (site / "blog" / "alpha" / "index.html").is_file()
    assert not (site / "blog" / "dropout").exists() and not (site / "blog" / "convolution").exists()
    home = (site / "index.html").read_text()
    assert "not run in the" in home and "reportgen run dropout --profile smoke" in home
    assert (site / "write-your-own" / "index.html").is_file()
    assert tree_hash(project / "results") == results  # building only reads results


@pytest.mark.slow
def test_build_with_no_results_at_all_is_a_site_of_the_home_page(project):
    shutil.rmtree(project / "results")
    result = reportgen("build", "alpha", "dropout", "--profile", "smoke", "--langs", "en")  # one edition: enough here
    assert result.code == 0, result.err
    for study in ("alpha", "dropout"):
        assert (f"{study}: not run in the smoke profile; left out of the site (run: reportgen run {study} "
                f"--profile smoke)") in result.err
    assert posts(project) == set() and (project / "site" / "index.html").is_file()
    assert not_run("alpha", "smoke") in home_row(project, "Alpha, the study that ran")


# ---- (b) a partly run study is left out, not an error --------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("missing", ["second seed", "new variant"])
def test_a_partly_run_study_is_left_out_of_the_build(project, missing):
    assert reportgen("render", "alpha", "--profile", "smoke").code == 0  # a post from when it was complete
    assert posts(project) == {"alpha.md"}
    path = project / "experiments" / "alpha.yaml"
    if missing == "second seed":
        path.write_text(ALPHA.replace("seeds: [0]", "seeds: [0, 1]"))
        gap = "slow/seed-1 (missing), fast/seed-1 (missing)"
    else:
        path.write_text(ALPHA.replace("analyses:", "  - {name: faster, training: {lr: 0.01}}\nanalyses:"))
        gap = "faster/seed-0 (missing)"
    result = reportgen("build", "--profile", "smoke", "--langs", "en")  # the English edition says it all here
    assert result.code == 0, result.err
    assert "removed the post of alpha (not in this smoke site)" in result.err
    assert ("alpha: not run in the smoke profile; left out of the site (run: reportgen run alpha --profile smoke)"
            in result.err)
    assert posts(project) == {f"{ILLUSTRATION}.md"} and not (project / "docs" / "blog" / "posts" / "alpha").exists()
    assert not_run("alpha", "smoke") in home_row(project, "Alpha, the study that ran")
    assert f"[{title(ILLUSTRATION)}](blog/posts/{ILLUSTRATION}.md)" in home_row(project, title(ILLUSTRATION))
    assert (project / "site" / "blog" / ILLUSTRATION / "index.html").is_file()
    assert not (project / "site" / "blog" / "alpha").exists()
    # (c) render is explicit: the same study is an error there, one line naming what is missing and the command
    failed = reportgen("render", "alpha", "--profile", "smoke")
    errors = [line for line in failed.err.splitlines() if line.startswith("error:")]
    assert failed.code == 1 and len(errors) == 1 and "Traceback" not in failed.err, failed.err
    assert f"alpha: no results for {gap}; run: reportgen run alpha --profile smoke" in errors[0]


# ---- (c) render without results --------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("study, profile", [("dropout", "smoke"), ("alpha", "quick")])
def test_render_of_a_study_without_results_is_one_line_exit_1(project, study, profile):
    docs = tree_hash(project / "docs")
    result = reportgen("render", study, "--profile", profile)
    assert result.code == 1 and "Traceback" not in result.err, result.err
    assert result.err.count("\n") == 1 and result.err.startswith(f"error: {study}: no results for "), result.err
    assert f"; run: reportgen run {study} --profile {profile}" in result.err
    assert tree_hash(project / "docs") == docs  # nothing written


# ---- (d) make report EXPERIMENTS=... ------------------------------------------------------------------------
@pytest.mark.slow
def test_make_report_runs_and_builds_only_the_named_study(trained, tmp_path):
    """The Makefile as a user runs it, with this venv (BIN) and a stamp newer than pyproject.toml (so the venv
    is not reinstalled), in a fresh copy of the project without results."""
    make = shutil.which("make")
    assert make, "make is not installed"
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "reportgen").is_file(), f"no reportgen console script in {bin_dir}"
    proj = tmp_path / "project"
    copy_project(trained[0], proj, ignore=shutil.ignore_patterns("results"))
    shutil.copy2(ROOT / "Makefile", proj)
    shutil.copy2(ROOT / "pyproject.toml", proj)  # copy2: its old mtime, so the stamp below is newer
    stamp = proj / ".installed-stamp"
    stamp.touch()
    env = {k: v for k, v in os.environ.items()
           if k not in ("REPORTGEN_RESULTS", "REPORTGEN_DEBUG", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(ENV, REPORTGEN_DATA=str(trained[1]))
    proc = subprocess.run([make, "-C", str(proj), "report", "EXPERIMENTS=alpha", "PROFILE=smoke", "DEVICE=cpu",
                           "WORKERS=1", f"BIN={bin_dir}", f"STAMP={stamp}"], env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert f"{bin_dir}/reportgen run alpha --profile smoke --device cpu --executor local --workers 1" in output
    assert f"{bin_dir}/reportgen build alpha --profile smoke" in output and "site built" in output
    assert "pip install" not in output and not (proj / ".venv").exists()
    for variant in ("slow", "fast"):
        assert check_run(proj / "results" / "alpha" / variant / "seed-0").status == "complete"
    assert sorted(p.name for p in (proj / "results").iterdir() if not p.name.startswith(".")) == ["alpha"]
    assert posts(proj) == {"alpha.md"} and (proj / "site" / "blog" / "alpha" / "index.html").is_file()
    for study in OTHERS:
        assert not_run(study, "smoke") in home_row(proj, title(study))


# ---- (e) one site is one profile ------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_build_of_another_profile_removes_the_posts_of_the_first(project):
    leftover = project / "docs" / "blog" / "posts"
    (leftover / "gone").mkdir(parents=True)  # the post of a study that no longer exists
    (leftover / "gone.md").write_text("---\ntitle: Gone\n---\n\n# Gone\n")
    (leftover / "gone" / "figure.png").write_bytes(b"png")
    smoke = reportgen("build", "--profile", "smoke", "--langs", "en")  # the English edition says it all here
    assert smoke.code == 0, smoke.err
    assert "removed the post of gone (not in this smoke site)" in smoke.err
    assert posts(project) == {"alpha.md", f"{ILLUSTRATION}.md"} and not (leftover / "gone").exists()
    assert (project / "site" / "blog" / "alpha" / "index.html").is_file()
    assert "Profile | `smoke`" in (project / "docs" / "blog" / "posts" / "alpha.md").read_text()

    quick = reportgen("build", "--profile", "quick", "--langs", "en")
    assert quick.code == 0, quick.err
    assert "removed the post of alpha (not in this quick site)" in quick.err
    assert posts(project) == {f"{ILLUSTRATION}.md"} and not (leftover / "alpha").exists()
    assert not (project / "site" / "blog" / "alpha").exists()
    assert (project / "site" / "blog" / ILLUSTRATION / "index.html").is_file()
    row = home_row(project, "Alpha, the study that ran")
    assert not_run("alpha", "quick") in row and "](" not in row
    home = (project / "docs" / "index.md").read_text()
    assert "`smoke`" not in home and "Every number on this site comes from the `quick` profile" in home
    assert "Profile | `quick`" in (leftover / f"{ILLUSTRATION}.md").read_text()
    assert check_run(project / "results" / "alpha" / "slow" / "seed-0").status == "complete"  # results are kept
