"""Build the MkDocs Material site: vendor the offline assets, build atomically, refuse off-site resource loads.

- :func:`vendor_assets` puts a local copy of MathJax 3 under ``docs/assets/vendor/mathjax/`` (from the npm
  package, fetched once with ``npm pack``); the site never loads anything from a CDN.
- :func:`build_site` runs ``mkdocs build`` into a temporary directory next to ``site/`` and swaps it in only when
  the build succeeded, so a failed build leaves the previous site untouched.
- :func:`external_resources` lists every resource a built page would load from another host.

Every failure is a :class:`SiteError` whose message is one line (plus the MkDocs log lines that explain it).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

from .fsutil import swap_dir

MATHJAX_SPEC = "mathjax@3"
MATHJAX_DIR = Path("assets") / "vendor" / "mathjax"  # relative to docs_dir
MATHJAX_SCRIPT = "tex-mml-chtml.js"
# What of the npm package's es5/ directory the site needs: the combined TeX+MathML->CHTML component, its web
# fonts (MathJax resolves them relative to the script: [mathjax]/output/chtml/fonts/woff-v2), and the
# components it loads on demand (\require'd TeX extensions, the menu's accessibility tools and speech rules).
MATHJAX_PARTS = (MATHJAX_SCRIPT, "output/chtml/fonts/woff-v2", "input/tex/extensions", "a11y", "ui", "sre")
NPM_TIMEOUT_S = 300


class SiteError(Exception):
    """A one-line, user-facing problem building the site."""


# --------------------------------------------------------------------------------------------- offline assets
def vendor_assets(docs_dir: Path) -> None:
    """Make sure ``docs_dir/assets/vendor/mathjax/tex-mml-chtml.js`` (and the files it loads) exist.

    Downloads the npm package ``mathjax@3`` with ``npm pack`` (the npm cache is used when it has it) and copies
    the parts the site needs. The copy is written next to its final place and renamed in, so an interrupted run
    never leaves a half-vendored MathJax that looks complete.
    """
    docs_dir = Path(docs_dir)
    target = docs_dir / MATHJAX_DIR
    if (target / MATHJAX_SCRIPT).is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SiteError(f"npm is not installed, so MathJax cannot be vendored into {target}: install Node.js/npm "
                        f"(e.g. `apt-get install npm`) or copy the es5/ files of the npm package {MATHJAX_SPEC} there")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".mathjax-", dir=target.parent) as tmp:
        tmp_path = Path(tmp)
        try:
            proc = subprocess.run([npm, "pack", MATHJAX_SPEC, "--prefer-offline", "--silent"], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise SiteError(f"`npm pack {MATHJAX_SPEC}` took more than {NPM_TIMEOUT_S}s: check access to the npm "
                            f"registry (npm config get registry) and run `reportgen build` again") from None
        tarballs = sorted(tmp_path.glob("mathjax-*.tgz"))
        if proc.returncode != 0 or not tarballs:
            detail = _last_line(proc.stderr) or _last_line(proc.stdout) or f"exit status {proc.returncode}"
            raise SiteError(f"`npm pack {MATHJAX_SPEC}` failed ({detail}): check access to the npm registry "
                            f"(npm config get registry) and run `reportgen build` again")
        unpacked = tmp_path / "unpacked"
        with tarfile.open(tarballs[-1]) as tar:
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.11.4
            tar.extractall(unpacked, **safe)
        es5 = unpacked / "package" / "es5"
        staging = tmp_path / "mathjax"
        for part in MATHJAX_PARTS:
            src = es5 / part
            if src.is_dir():
                shutil.copytree(src, staging / part)
            elif src.is_file():
                (staging / part).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, staging / part)
            else:
                raise SiteError(f"the npm package {tarballs[-1].name} has no es5/{part}; "
                                f"MathJax's layout changed, pin {MATHJAX_SPEC} to a 3.x version that has it")
        for name in ("LICENSE", "package.json"):
            if (unpacked / "package" / name).is_file():
                shutil.copy2(unpacked / "package" / name, staging / name)
        swap_dir(staging, target, tmp_path / "replaced")  # a partial copy without the script is replaced


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


# --------------------------------------------------------------------------------------------- the build
_LOG_LINE = re.compile(r"^\s*(WARNING|ERROR|CRITICAL)\b")


def build_site(project_dir: Path, strict: bool = True) -> Path:
    """Build ``project_dir/mkdocs.yml`` into ``site/`` atomically and return the site directory.

    The build runs in a fresh ``python -m mkdocs`` process (its working directory is the project, so snippet
    paths and the log are its own) into ``.site-build-*`` next to ``site/``; only on success is the old site
    renamed away, the new one renamed in and the old one deleted. With ``strict`` every MkDocs warning fails
    the build. A built page that would load a resource from another host also fails it.
    """
    project_dir = Path(project_dir).resolve()
    config_file = project_dir / "mkdocs.yml"
    if not config_file.is_file():
        raise SiteError(f"no mkdocs.yml in {project_dir}")
    docs_dir = project_dir / "docs"
    vendor_assets(docs_dir)
    site_dir = project_dir / "site"
    staging = Path(tempfile.mkdtemp(prefix=".site-build-", dir=project_dir))
    try:
        cmd = [sys.executable, "-m", "mkdocs", "build", "--clean", "--config-file", str(config_file),
               "--site-dir", str(staging)]
        if strict:
            cmd.append("--strict")
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "NO_COLOR": "1", "NO_MKDOCS_2_WARNING": "1"}
        proc = subprocess.run(cmd, cwd=project_dir, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise SiteError(_build_failure(proc.stdout + proc.stderr, proc.returncode, strict))
        offsite = external_resources(staging)
        if offsite:
            shown = "; ".join(f"{page}: {url}" for page, url in offsite[:5])
            more = f" (and {len(offsite) - 5} more)" if len(offsite) > 5 else ""
            raise SiteError(f"the site would load {len(offsite)} resource(s) from other hosts, "
                            f"vendor them under docs/assets/: {shown}{more}")
        swap_dir(staging, site_dir, site_dir.with_name(f".{site_dir.name}-old-{os.getpid()}"))
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return site_dir


def _build_failure(log: str, returncode: int, strict: bool) -> str:
    """One line saying the build failed and why, then the MkDocs log lines that explain it (never a traceback)."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    logged = [line for line in lines if _LOG_LINE.match(line)]
    # MkDocs's own last word ("Aborted with 2 warnings in strict mode!", "Error: ..."), or a crash's exception.
    final = [line for line in lines if not _LOG_LINE.match(line) and not line.startswith(("File ", "Traceback"))
             and not line.startswith(("INFO", "DEBUG"))][-1:]
    reason = f": {final[0].rstrip('!.')}" if final else ""
    mode = "strict " if strict else ""
    head = f"mkdocs {mode}build failed (exit status {returncode}){reason}; the previous site/ is unchanged"
    return "\n".join([head, *("  " + line for line in logged)])


# --------------------------------------------------------------------------------------------- off-site loads
# (tag, attribute) pairs through which a page *loads* something; <a href> and <link rel=canonical> do not.
_LOADING_ATTRS = {("script", "src"), ("img", "src"), ("img", "srcset"), ("source", "src"), ("source", "srcset"),
                  ("iframe", "src"), ("embed", "src"), ("object", "data"), ("video", "src"), ("video", "poster"),
                  ("audio", "src"), ("track", "src"), ("input", "src"), ("image", "href"), ("use", "href"),
                  ("image", "xlink:href"), ("use", "xlink:href")}
_LOADING_LINK_RELS = {"stylesheet", "icon", "shortcut", "apple-touch-icon", "preload", "prefetch", "preconnect",
                      "dns-prefetch", "modulepreload", "manifest", "mask-icon"}
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)""", re.I)
_CSS_IMPORT = re.compile(r"""@import\s+['"]([^'"]+)""", re.I)


def _is_offsite(url: str) -> bool:
    url = url.strip()
    if url.startswith("//"):
        return True
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and parts.hostname not in ("127.0.0.1", "localhost")


class _ResourceParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): (v or "") for k, v in attrs}
        for name, value in values.items():
            if (tag, name) in _LOADING_ATTRS:
                urls = [c.strip().split(" ")[0] for c in value.split(",")] if name.endswith("srcset") else [value]
                self.urls += urls
            elif name == "style":
                self.urls += _CSS_URL.findall(value)
        if tag == "link" and set(values.get("rel", "").lower().split()) & _LOADING_LINK_RELS:
            self.urls.append(values.get("href", ""))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls += _CSS_URL.findall(data) + _CSS_IMPORT.findall(data)


def external_resources(site_dir: Path) -> list[tuple[str, str]]:
    """(page, url) for every resource a built HTML page or stylesheet would load from another host.

    Links the reader clicks (``<a href>``, ``<link rel=canonical>``) are not loads and are not reported.
    The vendored MathJax is skipped: its code names CDNs only as fallbacks it does not use here.
    """
    site_dir = Path(site_dir)
    found: list[tuple[str, str]] = []
    for path in sorted(site_dir.rglob("*")):
        rel = path.relative_to(site_dir).as_posix()
        if rel.startswith("assets/vendor/") or not path.is_file():
            continue
        if path.suffix == ".html":
            parser = _ResourceParser()
            parser.feed(path.read_text(encoding="utf-8", errors="replace"))
            urls = parser.urls
        elif path.suffix == ".css":
            text = path.read_text(encoding="utf-8", errors="replace")
            urls = _CSS_URL.findall(text) + _CSS_IMPORT.findall(text)
        else:
            continue
        found += [(rel, url) for url in urls if _is_offsite(url)]
    return found
