"""Open a built site in headless Chromium and check what a reader would see.

:func:`check_site_in_browser` serves ``site_dir`` over HTTP on 127.0.0.1, visits every page (the home page, the
blog views and every post) and returns a report whose ``problems`` list is empty when the site is good:

- every ``<img>`` loaded (``naturalWidth > 0``);
- no SEVERE browser console message (a 404 for a script, stylesheet, font or image is one);
- nothing was requested from another host (Chromium cannot resolve any host but 127.0.0.1, and the
  Performance API's resource list is checked too);
- every page with math (``.arithmatex``) was typeset by MathJax (``mjx-container``, no ``mjx-merror``);
- every internal link (``a[href]`` into the site) answers HTTP 200.

Screenshots of the home page and the first post go to ``artifacts_dir``. Used by tests/test_site.py on a small
fixture site, and usable by an end-to-end test on the real ``site/``.

:func:`site_engine` is a fixture that runs a test once per site generator (``mkdocs``, ``zensical``): import it
into a test module (``from tests.browser import site_engine``) and build with ``build_site(..., engine=site_engine)``
or ``reportgen build --engine <site_engine>``; tests/test_zensical.py runs the checks above against both builds.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.util
import os
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urldefrag, urljoin, urlsplit

import pytest

from reportgen.engines import ENGINES, ZENSICAL_INSTALL

# The headless shell first (Debian's chromium-headless-shell, Chrome for Testing's chrome-headless-shell): the same
# engine without the desktop browser around it, about a sixth less CPU per page here.
CHROMIUM_NAMES = ("chromium-headless-shell", "chrome-headless-shell", "chromium", "chromium-browser", "google-chrome",
                  "google-chrome-stable")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,1600",
                  # Nothing but the local server can be reached: an off-site load fails loudly.
                  "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
POST_MARKER = "md-sidebar--post"  # Material's blog-post.html; not on the index, archive or category views
WAIT_S = 30


class BrowserUnavailable(Exception):
    """Chromium or chromedriver is not installed."""


@pytest.fixture(params=ENGINES)
def site_engine(request) -> str:
    """Each site generator in turn (reportgen.engines.ENGINES); a test that takes it runs once per engine.

    Zensical is an optional extra that `make venv` and CI install: missing, the test fails and says how to
    install it, rather than passing without having built anything."""
    if request.param == "zensical" and importlib.util.find_spec("zensical") is None:
        pytest.fail(f"zensical is not installed: {ZENSICAL_INSTALL} (or make venv)", pytrace=False)
    return request.param


# Where Debian keeps the headless shell itself: its /usr/bin/chromium-headless-shell is a shell script that starts
# the shell without exec, so chromedriver's quit would stop the script and leave the browser running, orphaned.
SHELL_DIRS = ("/usr/lib/chromium",)


def _which(name: str) -> str | None:
    if "headless-shell" in name:
        return shutil.which(name, path=os.pathsep.join([*SHELL_DIRS, os.environ.get("PATH", "")]))
    return shutil.which(name)


def find_browser() -> tuple[str, str] | None:
    """(chromium, chromedriver) paths, from $CHROME_BIN / $CHROMEDRIVER or the PATH; None if either is absent."""
    chrome = os.environ.get("CHROME_BIN") or next(filter(None, map(_which, CHROMIUM_NAMES)), None)
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    return (chrome, driver) if chrome and driver else None


def seconds_since_boot() -> float:
    """The clock of /proc/<pid>/stat's start times (0 without /proc)."""
    try:
        with open("/proc/uptime") as handle:
            return float(handle.read().split()[0])
    except OSError:
        return 0.0


def orphaned_browsers(since: float) -> list[str]:
    """Browsers started by chromedriver (``--enable-automation``) after ``since`` (seconds since boot) that outlived
    it: their parent is init. Linux only (/proc); empty elsewhere."""
    if not Path("/proc/self/stat").is_file():
        return []
    found, ticks = [], os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # not a process, or gone meanwhile
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after the command name, which may hold spaces
        parent, started = int(fields[1]), int(fields[19]) / ticks
        if "--enable-automation" in command and parent == 1 and started >= since:
            found.append(f"{entry.name}: {command[:120]}")
    return found


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves as GitHub Pages does, with ten minutes of caching, so a page's scripts load from the browser's cache
    after the first page that uses them."""

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "max-age=600")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass


def _serve(site_dir: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _pages(site_dir: Path) -> tuple[list[str], list[str]]:
    """(all page paths, post page paths) relative to the site root, as URLs: 'blog/x/' for blog/x/index.html."""
    pages, posts = [], []
    for html in sorted(site_dir.rglob("*.html")):
        rel = html.relative_to(site_dir).as_posix()
        if rel == "404.html" or rel.startswith("assets/"):
            continue
        url = rel[: -len("index.html")] if rel.endswith("index.html") else rel
        pages.append(url)
        if POST_MARKER in html.read_text(encoding="utf-8", errors="replace"):
            posts.append(url)
    pages.sort(key=lambda u: (u != "", u))  # the home page first
    return pages, posts


def _driver(chrome: str, chromedriver: str, profile_dir: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    if "headless-shell" not in Path(chrome).name:  # the shell cannot start on a given profile; chromedriver makes one
        options.add_argument(f"--user-data-dir={profile_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(WAIT_S)
    return driver


@contextlib.contextmanager
def _session(found: tuple[str, str], site_dir: Path):
    """``site_dir`` served on a free local port and a headless Chromium with a fresh profile: yields (driver, base
    URL ending in '/'); both go away, with the profile, however the block ends."""
    server, base = _serve(site_dir)
    profile = tempfile.mkdtemp(prefix="reportgen-chromium-")
    driver = None
    try:
        driver = _driver(*found, profile)
        yield driver, base
    finally:
        if driver is not None:
            driver.quit()
        server.shutdown()
        server.server_close()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, script: str, timeout: float = WAIT_S) -> bool:
    """Poll a JavaScript expression until it is truthy; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.execute_script(f"return !!({script});"):
            return True
        time.sleep(0.1)
    return False


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=WAIT_S) as resp:  # follows the dir -> dir/ redirect
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


_IMAGES = """return Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth]);"""
_RESOURCES = """return performance.getEntriesByType('resource').map(e => e.name);"""
_LINKS = """return Array.from(document.querySelectorAll('a[href]')).map(a => a.href);"""


class _Targets(HTMLParser):
    """The ``href`` of every link and the ``src`` of every image of a page, as written."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        wanted = {"a": "href", "img": "src"}.get(tag)
        value = dict(attrs).get(wanted) if wanted else None
        if value:
            self.found.append(value)


def _static_targets(site_dir: Path, page: str, base: str) -> list[str]:
    """For a page not visited in the browser: its links and images read from its HTML, resolved to URLs."""
    html = site_dir / (page + "index.html" if page == "" or page.endswith("/") else page)
    parser = _Targets()
    parser.feed(html.read_text(encoding="utf-8", errors="replace"))
    urls = [urlsplit(urldefrag(urljoin(base + page, target))[0]) for target in parser.found]
    return [url._replace(path=quote(url.path, safe="/%")).geturl() for url in urls]  # as the browser sends them


def check_site_in_browser(site_dir: Path, artifacts_dir: Path, timeout: float = WAIT_S,
                          visit: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """Visit every page of the built site ``site_dir`` in headless Chromium; see the module docstring.

    With ``visit``, only the pages it accepts are opened in the browser; the links and images of the others are
    read from their HTML and checked over HTTP like the rest.

    Raises :class:`BrowserUnavailable` when Chromium or chromedriver is not installed. Returns a dict with
    ``base_url``, ``pages``, ``posts``, ``math_pages``, ``links_checked``, ``screenshots`` and ``problems``
    (human-readable strings; empty when everything passed). ``timeout`` bounds each wait (page load, images,
    MathJax) in seconds.
    """
    site_dir, artifacts_dir = Path(site_dir), Path(artifacts_dir)
    found = find_browser()
    if found is None:
        raise BrowserUnavailable("chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
    if not (site_dir / "index.html").is_file():
        raise FileNotFoundError(f"no built site in {site_dir} (index.html is missing)")
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    pages, posts = _pages(site_dir)
    problems: list[str] = []
    links: dict[str, str] = {}  # internal link (without fragment) -> first page linking to it
    math_pages: list[str] = []
    screenshots: list[str] = []
    with _session(found, site_dir) as (driver, base):
        origin = base.rstrip("/")
        for page in pages:
            if visit is not None and not visit(page):
                for url in _static_targets(site_dir, page, base):
                    if url.startswith(origin + "/"):
                        links.setdefault(url, page)
                continue
            driver.get(base + page)
            _wait(driver, "document.readyState === 'complete'", timeout)
            # Lazy images below the fold would never load in a screenshot-sized window: load them all.
            driver.execute_script("document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager');")
            _wait(driver, "Array.from(document.images).every(i => i.complete)", timeout)
            for src, complete, width in driver.execute_script(_IMAGES):
                if not complete or not width:
                    problems.append(f"{page or '/'}: image did not load: {src}")
            if driver.execute_script("return document.querySelector('.arithmatex') !== null;"):
                math_pages.append(page)
                if not _wait(driver, "document.querySelector('mjx-container') !== null", timeout):
                    problems.append(f"{page or '/'}: MathJax did not typeset the math (no mjx-container)")
                elif driver.execute_script("return document.querySelector('mjx-merror') !== null;"):
                    problems.append(f"{page or '/'}: MathJax reported a TeX error (mjx-merror)")
                else:  # the math fonts are web fonts: wait for them, so a font 404 shows up in the log below
                    driver.execute_script("return document.fonts.ready.then(() => true);")
            for url in driver.execute_script(_RESOURCES):
                if not url.startswith((origin + "/", "data:", "blob:")):
                    problems.append(f"{page or '/'}: loaded a resource from another host: {url}")
            for entry in driver.get_log("browser"):
                if entry.get("level") == "SEVERE":
                    problems.append(f"{page or '/'}: console error: {entry.get('message')}")
            for href in driver.execute_script(_LINKS):
                url, _fragment = urldefrag(href)
                if urlsplit(url).scheme in ("http", "https") and url.startswith(origin + "/"):
                    links.setdefault(url, page)
            if page == "" or (posts and page == posts[0]):
                shot = artifacts_dir / ("home.png" if page == "" else f"post-{page.strip('/').replace('/', '-')}.png")
                driver.save_screenshot(str(shot))
                screenshots.append(str(shot))
        for url, page in sorted(links.items()):
            status = _status(url)
            if status != 200:
                problems.append(f"{page or '/'}: link {url[len(origin):]} answers HTTP {status or 'no response'}")
    return {"base_url": base, "pages": pages, "posts": posts, "math_pages": math_pages,
            "links_checked": len(links), "screenshots": screenshots, "problems": problems}
