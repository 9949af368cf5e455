"""The site: strict MkDocs build into site/ (atomically), nothing loaded from other hosts, MathJax local, and
a headless-Chromium check of what a reader sees (skipped only when Chromium/chromedriver are not installed).

A fixture copies the hand-written site (mkdocs.yml, docs/) into a temporary project, adds a fake generated
home page and one post, and builds it with :func:`reportgen.site.build_site`. The npm packages are vendored once per
session (``npm pack`` the first time, into the project's gitignored docs/assets/vendor/) and hard-linked.
"""
from __future__ import annotations

import html as html_module
import io
import re
import struct
import tarfile
import zlib
from pathlib import Path

import pytest

from reportgen import site as site_mod
from reportgen.methods import write_methods
from reportgen.scaffold import write_guide
from reportgen.site import SiteError, build_site, external_resources, vendor_assets

from tests.browser import check_site_in_browser, find_browser, orphaned_browsers, seconds_since_boot
from tests.conftest import copy_site_sources

PROJECT = Path(__file__).resolve().parents[1]
ARTIFACTS = PROJECT / "test-artifacts"
SNIPPET = "reportgen/models.py"

HOME = """\
# What a CNN does, measured

| Study | Question | Best variant | Test accuracy |
|---|---|---|---|
| [Example](blog/posts/example.md) | How big is a convolution's output? | k=3 | 99.10% |
"""

POST = """\
---
title: "Example: the output size of a convolution"
description: A fake generated post for the site tests.
date: 2024-05-01
slug: example
authors:
  - reportgen
categories:
  - Convolutions
tags:
  - basics
---

# Example: the output size of a convolution

A convolution with kernel $k$, padding $p$ and stride $s$ over $n$ pixels.

<!-- more -->

## The formula

$$
\\lfloor (n+2p-k)/s \\rfloor + 1
$$

![A 4x3 test figure](example/figure.png)

!!! note "Why the floor"
    A kernel that would hang over the edge is not applied. Back to the [summary](../../index.md).

```python
--8<-- "{snippet}:1:3"
```
""".replace("{snippet}", SNIPPET)


def tiny_png(width: int = 4, height: int = 3) -> bytes:
    """A valid RGB PNG, made with zlib and struct (no imaging library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + b"".join(bytes((40 * x % 256, 80, (200 - 40 * y) % 256)) for x in range(width))
                   for y in range(height))  # each row: filter type 0, then RGB pixels
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def make_project(root: Path, vendored: Path) -> Path:
    """A copy of the hand-written site (the vendored packages linked) plus a fake generated home page and post,
    ready to build."""
    copy_site_sources(root, model_source=SNIPPET)
    docs = root / "docs"
    write_guide(docs)
    write_methods(docs)  # the generated pages the nav lists
    (docs / "index.md").write_text(HOME, encoding="utf-8")
    posts = docs / "blog" / "posts"
    (posts / "example").mkdir(parents=True)
    (posts / "example" / "figure.png").write_bytes(tiny_png())
    (posts / "example.md").write_text(POST, encoding="utf-8")
    return root


@pytest.fixture()
def project(tmp_path, vendored) -> Path:
    return make_project(tmp_path / "project", vendored)


@pytest.fixture(scope="module")
def built(tmp_path_factory, vendored) -> Path:
    """One successful build shared by the read-only checks."""
    root = make_project(tmp_path_factory.mktemp("built") / "project", vendored)
    return build_site(root)


def html_files(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


# ---- the build ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_strict_build_passes(built: Path):
    assert built.name == "site" and (built / "index.html").is_file()
    post = built / "blog" / "example" / "index.html"  # post_url_format "{slug}": a clean URL, no date
    assert post.is_file()
    html = post.read_text(encoding="utf-8")
    assert "Why the floor" in html and 'class="admonition note"' in html
    first_line = (PROJECT / SNIPPET).read_text(encoding="utf-8").splitlines()[0].strip()
    assert first_line in html_module.unescape(re.sub(r"<[^>]+>", "", html))  # the snippet was included
    assert 'class="arithmatex"' in html
    assert (built / "blog" / "index.html").is_file() and (built / "about" / "index.html").is_file()
    assert "Write your own study" in (built / "write-your-own" / "index.html").read_text(encoding="utf-8")
    assert (built / "blog" / "category" / "convolutions" / "index.html").is_file()
    assert (built / "blog" / "archive" / "2024" / "index.html").is_file()
    assert "Example: the output size of a convolution" in (built / "blog" / "index.html").read_text("utf-8")
    # the figure is published where the post's <img> points
    src = re.search(r'<img alt="A 4x3 test figure" src="([^"]+)"', html).group(1)
    assert (post.parent / src).resolve().read_bytes() == tiny_png()
    assert not list(built.parent.glob(".site-build-*")) and not list(built.parent.glob(".site-old-*"))


@pytest.mark.slow
@pytest.mark.parametrize("breakage, expected", [
    ("Read [the missing post](missing.md) first.", "missing.md"),          # a warning: fails only under strict
    ('```python\n--8<-- "reportgen/nothing.py"\n```', "nothing.py"),         # snippets check_paths: an error
])
def test_failed_build_keeps_previous_site(project: Path, breakage: str, expected: str):
    site = build_site(project)
    (site / "SENTINEL").write_text("previous build", encoding="utf-8")
    before = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    post = project / "docs" / "blog" / "posts" / "example.md"
    post.write_text(post.read_text(encoding="utf-8") + "\n" + breakage + "\n", encoding="utf-8")
    with pytest.raises(SiteError) as info:
        build_site(project)
    message = str(info.value)
    assert message.splitlines()[0].startswith("mkdocs strict build failed")
    assert expected in message and "Traceback" not in message and 'File "' not in message
    after = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    assert after == before  # untouched, sentinel included
    assert not list(project.glob(".site-build-*"))


@pytest.mark.slow
def test_warnings_fail_only_strict_builds(project: Path):
    post = project / "docs" / "blog" / "posts" / "example.md"
    post.write_text(post.read_text(encoding="utf-8") + "\nSee [nowhere](nowhere.md).\n", encoding="utf-8")
    with pytest.raises(SiteError, match="nowhere.md"):
        build_site(project)
    assert (build_site(project, strict=False) / "blog" / "example" / "index.html").is_file()


def test_missing_config_is_a_site_error(tmp_path: Path):
    with pytest.raises(SiteError, match="no mkdocs.yml"):
        build_site(tmp_path)


# ---- offline -----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_no_resource_from_another_host(built: Path):
    assert external_resources(built) == []
    for page in html_files(built):
        html = page.read_text(encoding="utf-8")
        assert "fonts.googleapis.com" not in html and "fonts.gstatic.com" not in html, page
        for url in re.findall(r'<(?:script|img|iframe|source)\b[^>]*\bsrc="([^"]+)"', html):
            assert not re.match(r"(https?:)?//", url), (page, url)
        for tag in re.findall(r"<link\b[^>]*>", html):
            if 'rel="canonical"' not in tag and 'rel="alternate"' not in tag:
                assert not re.search(r'href="(https?:)?//', tag), (page, tag)


@pytest.mark.slow
def test_an_offsite_resource_fails_the_build(project: Path):
    site = build_site(project)
    post = project / "docs" / "blog" / "posts" / "example.md"
    post.write_text(post.read_text(encoding="utf-8") + "\n![remote](https://example.com/x.png)\n", "utf-8")
    with pytest.raises(SiteError, match=r"other hosts.*https://example\.com/x\.png"):
        build_site(project)
    assert "example.com" not in (site / "blog" / "example" / "index.html").read_text(encoding="utf-8")


def test_external_resources_sees_loads_not_links(tmp_path: Path):
    (tmp_path / "index.html").write_text(
        '<link rel="canonical" href="https://example.org/"><a href="https://example.org/read">read</a>'
        '<link rel="stylesheet" href="https://cdn.example.com/a.css"><script src="//cdn.example.com/b.js"></script>'
        '<img srcset="local.png 1x, https://img.example.com/c.png 2x"><style>@import "https://x.example/d.css";'
        '</style><div style="background:url(https://x.example/e.png)"></div><img src="http://127.0.0.1:8000/ok.png">',
        encoding="utf-8")
    urls = [url for _, url in external_resources(tmp_path)]
    assert sorted(urls) == sorted(["https://cdn.example.com/a.css", "//cdn.example.com/b.js",
                                   "https://img.example.com/c.png", "https://x.example/d.css",
                                   "https://x.example/e.png"])


@pytest.mark.slow
def test_mathjax_is_local(built: Path):
    html = (built / "blog" / "example" / "index.html").read_text(encoding="utf-8")
    scripts = re.findall(r'<script src="([^"]+)"', html)
    config = [s for s in scripts if s.endswith("javascripts/mathjax-config.js")]
    mathjax = [s for s in scripts if s.endswith("assets/vendor/mathjax/tex-mml-chtml.js")]
    assert config and mathjax and scripts.index(config[0]) < scripts.index(mathjax[0])  # config first
    page_dir = built / "blog" / "example"
    assert (page_dir / mathjax[0]).resolve().is_file()
    vendor = built / "assets" / "vendor" / "mathjax"
    assert (vendor / "output" / "chtml" / "fonts" / "woff-v2" / "MathJax_Main-Regular.woff").is_file()
    assert (vendor / "input" / "tex" / "extensions" / "physics.js").is_file()  # for \require / autoload
    config_js = (built / "javascripts" / "mathjax-config.js").read_text(encoding="utf-8")
    assert "fontURL" in config_js and "output/chtml/fonts/woff-v2" in config_js and "http" not in config_js


def test_vendor_assets_without_npm_is_one_clear_line(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(site_mod.shutil, "which", lambda name: None)
    with pytest.raises(SiteError) as info:
        vendor_assets(tmp_path / "docs")
    message = str(info.value)
    assert "\n" not in message and "npm" in message and "install" in message
    assert not (tmp_path / "docs" / "assets" / "vendor" / "mathjax").exists()


def test_vendor_assets_keeps_an_existing_copy(tmp_path: Path, monkeypatch):
    scripts = [tmp_path / "docs" / asset.directory / asset.entry for asset in site_mod.NPM_ASSETS]
    assert any(s.as_posix().endswith("assets/vendor/mathjax/tex-mml-chtml.js") for s in scripts)
    for script in scripts:
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text("// already here", encoding="utf-8")
    monkeypatch.setattr(site_mod.shutil, "which", lambda name: None)  # would fail if it tried npm
    vendor_assets(tmp_path / "docs")
    assert all(script.read_text(encoding="utf-8") == "// already here" for script in scripts)


def fake_npm(bin_dir: Path, files: dict[str, str]) -> None:
    """An ``npm`` on PATH whose ``npm pack SPEC`` writes a tarball of ``package/<path>`` files, as npm does."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "fake.tgz.bin").write_bytes(buf.getvalue())
    npm = bin_dir / "npm"
    npm.write_text(f'#!/bin/sh\ncp "{bin_dir / "fake.tgz.bin"}" "$PWD/fakepkg-1.0.0.tgz"\n')
    npm.chmod(0o755)


def test_vendor_npm_copies_the_parts_of_any_table_entry(tmp_path: Path, monkeypatch):
    """One implementation for every package: the parts under the entry's root, its LICENSE, nothing else."""
    fake_npm(tmp_path / "bin", {"dist/lib.min.js": "lib()", "dist/wasm/a.wasm": "w", "dist/other.js": "x",
                                "LICENSE": "MIT", "package.json": "{}"})
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    asset = site_mod.NpmAsset(name="fakepkg", spec="fakepkg@1.0.0", root="dist", parts=("lib.min.js", "wasm"))
    target = site_mod.vendor_npm(tmp_path / "docs", asset)
    assert target == tmp_path / "docs" / "assets" / "vendor" / "fakepkg"
    found = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert found == ["LICENSE", "lib.min.js", "package.json", "wasm/a.wasm"]
    assert [p.name for p in target.parent.iterdir()] == ["fakepkg"]  # no staging folder left behind


def test_vendor_npm_names_a_missing_part_in_one_line(tmp_path: Path, monkeypatch):
    fake_npm(tmp_path / "bin", {"dist/lib.min.js": "lib()"})
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    asset = site_mod.NpmAsset(name="fakepkg", spec="fakepkg@1.0.0", root="dist", parts=("lib.min.js", "gone.js"))
    with pytest.raises(SiteError) as info:
        site_mod.vendor_npm(tmp_path / "docs", asset)
    message = str(info.value)
    assert "\n" not in message and "dist/gone.js" in message and "fakepkg@1.0.0" in message
    assert not (tmp_path / "docs" / "assets" / "vendor" / "fakepkg").exists()


# ---- in a browser ------------------------------------------------------------------------------------------
def require_browser() -> None:
    if find_browser() is None:
        pytest.skip("browser test skipped: chromium and chromedriver are not installed "
                    "(apt-get install chromium chromium-driver, or set CHROME_BIN and CHROMEDRIVER)")


@pytest.mark.slow
def test_site_in_browser(built: Path):
    require_browser()
    started = seconds_since_boot()
    report = check_site_in_browser(built, ARTIFACTS)
    assert orphaned_browsers(started) == [], "the browser outlived its session"
    assert report["problems"] == []
    assert report["pages"][0] == "" and "blog/example/" in report["posts"]
    assert "blog/example/" in report["math_pages"] and report["links_checked"] > 0
    names = sorted(Path(p).name for p in report["screenshots"])
    assert names == ["home.png", "post-blog-example.png"]
    assert all((ARTIFACTS / n).stat().st_size > 0 for n in names)


@pytest.mark.slow
def test_browser_check_catches_a_broken_site(tmp_path: Path):
    """The checker is not vacuous: a missing image, an off-site load, a broken link and failed math are found."""
    require_browser()
    (tmp_path / "ok.png").write_bytes(tiny_png())
    (tmp_path / "index.html").write_text(
        '<!doctype html><html><head><title>t</title><link rel="icon" href="ok.png"></head><body>'
        '<img src="ok.png"><img src="missing.png"><img src="https://example.com/remote.png">'
        '<a href="gone/">gone</a><a href="./">home</a><div class="arithmatex">\\(x\\)</div>'
        '</body></html>', encoding="utf-8")
    report = check_site_in_browser(tmp_path, tmp_path / "artifacts", timeout=3)
    text = "\n".join(report["problems"])
    assert "image did not load" in text and "missing.png" in text
    assert "example.com/remote.png" in text
    assert "link /gone/ answers HTTP 404" in text
    assert "MathJax did not typeset" in text
    assert "console error" in text

    # a page left out of the browser visit still has its links and images checked, from its HTML
    (tmp_path / "pt").mkdir()
    (tmp_path / "pt" / "index.html").write_text(
        '<!doctype html><html><body><img src="lost.png"><a href="../ok.png">ok</a><a href="away/">away</a>'
        '<a href="regularização/">é</a></body></html>', encoding="utf-8")
    report = check_site_in_browser(tmp_path, tmp_path / "artifacts", timeout=3, visit=lambda page: page == "")
    text = "\n".join(report["problems"])
    assert "pt/: link /pt/lost.png answers HTTP 404" in text and "pt/: link /pt/away/ answers HTTP 404" in text
    assert "pt/: link /pt/regulariza%C3%A7%C3%A3o/ answers HTTP 404" in text  # percent-encoded, as a browser asks
    assert len([p for p in report["problems"] if p.startswith("pt/")]) == 3  # and ../ok.png was found
