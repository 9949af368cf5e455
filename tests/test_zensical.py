"""`reportgen build --engine zensical`: the same site built by Zensical instead of MkDocs + Material.

One module-scoped project (the hand-written site, the shipped illustration ``convolution`` and the study ``beta``,
whose prose uses every Markdown feature the posts use: a snippet of the project's source, math, an admonition, a
collapsible block and tabs) is trained once with the smoke profile on synthetic data and built once by each engine
through the command line. The read-only checks compare those two builds; the browser check runs on the Zensical
one (MkDocs's builds are checked page by page in tests/test_e2e.py and tests/test_site.py); the failure checks build
copies of the project.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from reportgen import engines
from reportgen.engines import EngineError, write_zensical_config
from reportgen.site import SiteError, build_site, external_resources, missing_resources
from tests.browser import BrowserUnavailable, check_site_in_browser
from tests.conftest import ROOT, copy_project, copy_site_sources, run_main

BETA = """\
id: beta
title: Beta, built by either engine
description: Two small LeNets whose post is built by MkDocs and by Zensical.
question: Does the post read the same whichever engine builds it?
date: 2026-03-02
order: 5
categories: [Tests]
tags: [engines, build]
dataset: fashion-mnist
model: {name: lenet}
training: {optimizer: adam, lr: 0.001, batch_size: 64, epochs: 1}
profiles:
  smoke: {epochs: 1, seeds: [0], train_limit: 256, eval_limit: 100}
baseline: plain
variants:
  - {name: plain, label: Plain, description: no dropout}
  - {name: dropout, label: Dropout, description: dropout 0.5, model: {options: {dropout: 0.5}}}
analyses: [curves]
"""
BETA_PROSE = """\
## Every feature a post uses

The model, from the project's source:

```python
--8<-- "reportgen/models.py:lenet"
```

A weighted sum, \\(y = \\sum_i w_i x_i\\), and the same as a display:

$$
y = \\sum_{i=1}^{n} w_i x_i
$$

!!! note "An admonition"
    Both engines draw it.

??? info "A collapsible block"
    Closed until the reader opens it.

=== "First tab"
    One.

=== "Second tab"
    Two.

{{ analysis("curves") }}
"""
STUDIES = ("beta", "convolution")
ENV = {"REPORTGEN_OFFLINE": "1", "REPORTGEN_SKIP_CHECKSUM": "1"}
# What a post's article holds, counted the same way in both builds (class names are Material's, which Zensical's
# classic variant keeps).
FEATURES = {"admonition": r'class="admonition ', "details": r"<details", "tabs": r'class="tabbed-set',
            "math": r'class="arithmatex"', "code": r'class="highlight"', "img": r"<img ", "tag": r'class="md-tag"',
            "date": r"<time ", "readtime": r"min read"}


def listing(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*")} if directory.exists() else set()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_idx):
    """A project whose only results are beta's smoke runs; the environment points at the synthetic data."""
    from reportgen.provision import provision
    base = tmp_path_factory.mktemp("zensical")
    project, data = base / "project", base / "data"
    (project / "experiments").mkdir(parents=True)
    (project / "experiments" / "beta.yaml").write_text(BETA)
    (project / "experiments" / "beta.md").write_text(BETA_PROSE)
    for suffix in (".yaml", ".md"):
        shutil.copy(ROOT / "experiments" / f"convolution{suffix}", project / "experiments")
    copy_site_sources(project)
    patch = pytest.MonkeyPatch()
    patch.setenv("REPORTGEN_DATA", str(data))
    for key, value in ENV.items():
        patch.setenv(key, value)
    for key in ("REPORTGEN_RESULTS", "REPORTGEN_DEBUG", "REPORTGEN_CACHE"):
        patch.delenv(key, raising=False)
    provision("fashion-mnist", data, from_dir=synthetic_idx, skip_checksum=True, allow_download=False,
              allow_install=False, log=lambda *_: None)
    patch.chdir(project)
    code, _, err = run_main("run", "beta", "--profile", "smoke", "--device", "cpu")
    assert code == 0, err
    yield project
    patch.undo()


@pytest.fixture(scope="module")
def sites(trained, tmp_path_factory) -> dict[str, dict]:
    """Each engine's `reportgen build --profile smoke --engine E` of the project: its exit code, stderr, a copy of
    site/, and the project's .cache (reportgen's analysis and figure cache) before and after the build."""
    out = tmp_path_factory.mktemp("sites")
    built = {}
    for engine in engines.ENGINES:
        cache_before = listing(trained / ".cache")
        code, stdout, err = run_main("build", "--profile", "smoke", "--engine", engine)
        site = out / engine
        if (trained / "site").is_dir():
            copy_project(trained / "site", site)
        built[engine] = {"code": code, "out": stdout, "err": err, "site": site, "cache_before": cache_before,
                         "cache_after": listing(trained / ".cache"), "leftovers": sorted(trained.glob(".site-*"))}
    return built


@pytest.fixture
def project(trained, sites, tmp_path, monkeypatch) -> Path:
    """A copy of the trained project, its posts rendered and site/ built by Zensical, as the working directory."""
    assert sites["zensical"]["code"] == 0, sites["zensical"]["err"]
    copy = tmp_path / "project"
    copy_project(trained, copy)
    monkeypatch.chdir(copy)
    return copy


def article(html: str) -> str:
    match = re.search(r"<article\b.*?</article>", html, re.DOTALL)
    assert match, "no <article> in the page"
    return match.group(0)


# ---- the build -------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_zensical_builds_every_post(sites, trained):
    zensical = sites["zensical"]
    assert zensical["code"] == 0, zensical["err"]
    assert "site built" in zensical["out"] and "error" not in zensical["err"]
    site = zensical["site"]
    posts = sorted(p.stem for p in (trained / "docs" / "blog" / "posts").glob("*.md"))
    assert posts == sorted(STUDIES)
    for post in posts:
        html = (site / "blog" / post / "index.html").read_text(encoding="utf-8")
        assert "md-sidebar--post" in html, post  # a blog post page, with its date, category and reading time
    assert (site / "index.html").is_file() and (site / "about" / "index.html").is_file()
    assert (site / "blog" / "index.html").is_file() and (site / "blog" / "category" / "tests" / "index.html").is_file()
    assert external_resources(site) == [] and missing_resources(site) == []
    assert zensical["leftovers"] == []  # the build's temporary directory is gone
    # Zensical keeps a cache in <config dir>/.cache and its --clean deletes that folder: it must never be the
    # project's, which holds reportgen's own analysis and figure cache.
    assert zensical["cache_after"] == zensical["cache_before"]
    assert any(name.startswith("figures") for name in zensical["cache_before"])


@pytest.mark.slow
def test_both_engines_build_the_same_pages_and_post_features(sites):
    for engine, built in sites.items():
        assert built["code"] == 0, (engine, built["err"])
    mkdocs, zensical = sites["mkdocs"]["site"], sites["zensical"]["site"]
    pages = sorted(p.relative_to(mkdocs).as_posix() for p in mkdocs.rglob("*.html")
                   if not p.relative_to(mkdocs).as_posix().startswith("assets/"))
    assert pages == sorted(p.relative_to(zensical).as_posix() for p in zensical.rglob("*.html")
                           if not p.relative_to(zensical).as_posix().startswith("assets/"))
    for post in STUDIES:
        counts = {}
        for engine, site in (("mkdocs", mkdocs), ("zensical", zensical)):
            html = (site / "blog" / post / "index.html").read_text(encoding="utf-8")
            counts[engine] = {name: len(re.findall(pattern, html)) for name, pattern in FEATURES.items()}
            text = re.sub(r'<nav class="md-tags".*?</nav>', "", article(html), flags=re.DOTALL)  # above or below
            counts[engine]["words"] = len(re.sub(r"<[^>]+>", " ", text).split())
        assert counts["mkdocs"] == counts["zensical"], post
    html = (zensical / "blog" / "beta" / "index.html").read_text(encoding="utf-8")
    beta = {name: len(re.findall(pattern, html)) for name, pattern in FEATURES.items()}
    assert all(beta[name] > 0 for name in FEATURES), beta  # the comparison saw every feature
    assert "def lenet(" in re.sub(r"<[^>]+>", "", html)  # the snippet was included


@pytest.mark.slow
def test_the_browser_checks_pass_on_the_zensical_build(sites):
    """The MkDocs build of the same kind of site is checked page by page in tests/test_e2e.py (every shipped study,
    both editions) and tests/test_site.py: here, the Zensical build."""
    site_engine = "zensical"
    built = sites[site_engine]
    assert built["code"] == 0, built["err"]
    try:
        report = check_site_in_browser(built["site"], ROOT / "test-artifacts" / site_engine)
    except BrowserUnavailable as exc:
        pytest.skip(f"browser check skipped: {exc}")
    assert report["problems"] == [], report["problems"]
    # both editions' posts: the browser checks the Portuguese pages too (issue 18)
    assert sorted(report["posts"]) == [f"{edition}blog/{post}/" for edition in ("", "pt/") for post in sorted(STUDIES)]
    assert "blog/beta/" in report["math_pages"] and "pt/blog/beta/" in report["math_pages"] and report["links_checked"] > 0


def test_a_wrong_engine_is_one_line_exit_2():
    code, out, err = run_main("build", "--profile", "smoke", "--engine", "zensicle")
    assert code == 2 and out == "", (code, out, err)
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert "'zensicle' is not one of 'mkdocs', 'zensical'" in err and "did you mean 'zensical'" in err


# ---- failures ----------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("breakage, expected", [
    ("Read [the missing page](missing.md) first.", "WARNING: page does not exist (about.md:"),
    ("![a figure that is not there](nothing.png)", "about/index.html: ../nothing.png"),
    ('```python\n--8<-- "reportgen/nothing.py"\n```', "Snippet at path 'reportgen/nothing.py' could not be found"),
])
def test_a_failed_zensical_build_keeps_the_previous_site(project, breakage, expected):
    site = project / "site"
    (site / "SENTINEL").write_text("previous build", encoding="utf-8")
    before = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    about = project / "docs" / "about.md"
    about.write_text(about.read_text(encoding="utf-8") + "\n" + breakage + "\n", encoding="utf-8")
    with pytest.raises(SiteError) as info:
        build_site(project, engine="zensical")
    message = str(info.value)
    assert message.splitlines()[0].startswith("zensical strict build failed"), message
    assert "the previous site/ is unchanged" in message.splitlines()[0]
    assert expected in message and "Traceback" not in message and 'File "' not in message, message
    assert "\x1b[" not in message  # Zensical's colours are stripped
    assert {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()} == before
    assert not list(project.glob(".site-build-*"))


@pytest.mark.slow
def test_an_offsite_resource_fails_a_zensical_build(project):
    about = project / "docs" / "about.md"
    about.write_text(about.read_text(encoding="utf-8") + "\n![remote](https://example.com/x.png)\n", "utf-8")
    before = listing(project / "site")
    with pytest.raises(SiteError, match=r"other hosts.*about/index\.html: https://example\.com/x\.png"):
        build_site(project, engine="zensical")
    assert listing(project / "site") == before


@pytest.mark.slow
def test_zensical_not_installed_is_one_clear_line(project, monkeypatch):
    real = engines.importlib.util.find_spec
    monkeypatch.setattr(engines.importlib.util, "find_spec", lambda name: None if name == "zensical" else real(name))
    with pytest.raises(SiteError) as info:
        build_site(project, engine="zensical")
    assert str(info.value) == ("--engine zensical: Zensical is not installed; install it with "
                               "`pip install -e '.[zensical]'`")
    assert not list(project.glob(".site-build-*"))


# ---- the configuration Zensical reads ----------------------------------------------------------------------------
def test_the_config_zensical_reads_has_no_mkdocs_only_tags(tmp_path, monkeypatch):
    project, work = tmp_path / "project", tmp_path / "work"
    (project / "pages" / "sub").mkdir(parents=True)
    (project / "pages" / "sub" / "index.md").write_text("# Hello\n")
    work.mkdir()
    (project / "mkdocs.yml").write_text(
        "site_name: t\ndocs_dir: pages\nsite_url: !ENV [REPORTGEN_TEST_URL, 'https://example.org/']\n"
        "theme: material\nmarkdown_extensions:\n  - pymdownx.snippets:\n"
        "      base_path: [!relative $config_dir, !relative $docs_dir/sub]\n")
    monkeypatch.delenv("REPORTGEN_TEST_URL", raising=False)
    written = write_zensical_config(project, project / "mkdocs.yml", work)
    config = yaml.safe_load(written.read_text(encoding="utf-8"))  # plain YAML: no tag left
    assert written == work / "mkdocs.yml" and "!" not in written.read_text(encoding="utf-8")
    assert config["markdown_extensions"][0]["pymdownx.snippets"]["base_path"] == [
        str(project), str(project / "pages" / "sub")]
    assert config["site_url"] == "https://example.org/"  # !ENV's default, as MkDocs reads it
    assert config["docs_dir"] == "docs" and config["site_dir"] == "site"
    assert config["theme"] == {"name": "material", "variant": engines.ZENSICAL_VARIANT}
    assert (work / "docs" / "sub" / "index.md").read_text() == "# Hello\n"  # the docs, linked beside it
    monkeypatch.setenv("REPORTGEN_TEST_URL", "https://example.com/site/")
    (work / "again").mkdir()
    config = yaml.safe_load(write_zensical_config(project, project / "mkdocs.yml", work / "again").read_text())
    assert config["site_url"] == "https://example.com/site/"


def test_a_tag_zensical_cannot_read_is_one_line(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nextra:\n  here: !relative\n")
    with pytest.raises(EngineError) as info:
        write_zensical_config(tmp_path, tmp_path / "mkdocs.yml", tmp_path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'mkdocs.yml'}: line 3: ")
    assert "`!relative` has no Zensical equivalent" in message


def test_missing_resources_sees_local_loads_only(tmp_path):
    (tmp_path / "blog" / "post").mkdir(parents=True)
    (tmp_path / "ok.png").write_bytes(b"png")
    (tmp_path / "blog" / "post" / "index.html").write_text(
        '<img src="../../ok.png"><img src="../../gone.png"><script src="/ok.png"></script>'
        '<script src="/gone.js"></script><a href="../../missing/">a link, not a load</a>'
        '<img src="data:image/png;base64,AAAA"><img src="https://example.com/x.png"><use href="#icon"></use>'
        '<img src="../../ok.png?v=1#x">', encoding="utf-8")
    assert missing_resources(tmp_path) == [("blog/post/index.html", "../../gone.png"),
                                           ("blog/post/index.html", "/gone.js")]


def test_missing_resources_reads_absolute_links_under_the_site_url_path(tmp_path):
    # A site served under a sub-path (GitHub Pages: /repo/) links its own files as /repo/...; those are present.
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "x.css").write_text("")
    (tmp_path / "404.html").write_text('<link rel="stylesheet" href="/sub/path/assets/x.css">'
                                       '<script src="/sub/path/assets/gone.js"></script>')
    assert missing_resources(tmp_path, "/sub/path/") == [("404.html", "/sub/path/assets/gone.js")]
    assert len(missing_resources(tmp_path)) == 2  # without the base path both links point outside the site
