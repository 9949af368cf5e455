"""Plots: matplotlib figures with one consistent look, saved as PNG under the post's folder.

Each analysis module draws its own figures; this module holds their shared look and helpers. Every figure is written through
:class:`FigureWriter`, which gives it a deterministic file name (``<analysis>-<variant>[-<layer>].png``) and records
its alt text. Drawing is the slow part of a render, so a figure whose inputs and drawing code (the module that draws
it, the package code it calls, this file and matplotlib) did not change is copied from ``.cache/figures/`` instead of
being drawn again; the bytes are identical either way.

Image grids are drawn as tiles in one axes (one ``imshow`` per tile or one mosaic), not one axes per tile: the same
picture, many times faster to draw.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import io
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib import ticker  # noqa: E402

from . import i18n, numbers  # noqa: E402
from .fsutil import atomic_write, cache_root  # noqa: E402
from .settings import SOURCE_LANGUAGE  # noqa: E402

DPI = 150  # sharp on a laptop screen at the post's column width
WIDTH = 7.5
STYLE = {
    "figure.figsize": (WIDTH, 4.0), "figure.dpi": DPI, "savefig.dpi": DPI, "font.size": 10,
    "axes.titlesize": 11, "axes.labelsize": 10, "axes.grid": True, "grid.alpha": 0.3,
    "axes.spines.top": False, "axes.spines.right": False, "legend.fontsize": 9, "legend.frameon": False,
    "image.cmap": "viridis", "savefig.bbox": "tight", "svg.hashsalt": "reportgen",
}
PALETTE = plt.get_cmap("tab10").colors
IMAGE_CMAP = "gray"        # input images as the network sees them: 0 = black
SEQUENTIAL = "viridis"     # activations that are never negative (after ReLU, pooling of ReLU)
DIVERGING = "RdBu_r"       # weights and signed activations: blue negative, white zero, red positive
HEAT = "Blues"             # counts and rates
TEXT_DARK, TEXT_LIGHT, MUTED = "#222222", "#ffffff", "#666666"
WRONG = "#c0392b"


def _edition_salt() -> str:
    """The edition a figure is drawn for, in its cache key: its titles, labels and numbers are translated. Empty for
    English, so the English figures keep the keys they had before the site had two editions."""
    lang = i18n.current()
    return "" if lang == SOURCE_LANGUAGE else f":{lang}:{i18n.catalog_digest(lang)}"


def _code_version() -> str:
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(matplotlib.__version__.encode())
    return h.hexdigest()[:16]


CODE_VERSION = _code_version()


def _feed(h: "hashlib._Hash", obj: Any) -> None:
    """Hash plain data (arrays, numbers, strings, nested lists/dicts/tuples) unambiguously."""
    if isinstance(obj, np.ndarray) or hasattr(obj, "numpy") and callable(obj.numpy):
        a = np.ascontiguousarray(obj if isinstance(obj, np.ndarray) else obj.numpy())
        h.update(f"A{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for k in sorted(obj, key=str):
            _feed(h, str(k))
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}".encode())
        for item in obj:
            _feed(h, item)
    else:
        h.update(f"S{type(obj).__name__}:{obj!r}".encode())


@dataclass
class Figure:
    path: str   # relative to the post (what the Markdown links to)
    alt: str

    def markdown(self) -> str:
        return f"![{self.alt}]({self.path})"


@dataclass
class FigureWriter:
    """Saves figures into ``directory`` (the post's asset folder) as ``<name>.png``."""
    directory: Path
    link_prefix: str           # how the post refers to the folder, e.g. 'dropout'
    written: list[Path] = field(default_factory=list)
    cache_dir: Path | None = field(default_factory=lambda: cache_root() / "figures")  # None: always draw
    drawn: int = 0
    reused: int = 0

    @staticmethod
    def _png(fig: plt.Figure) -> bytes:
        buf = io.BytesIO()
        # No timestamps or software tags in the PNG: the same numbers give byte-identical files.
        fig.savefig(buf, format="png", metadata={"Software": None})
        plt.close(fig)
        return buf.getvalue()

    def _write(self, name: str, alt: str, data: bytes) -> Figure:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{name}.png"
        if not target.exists() or target.read_bytes() != data:
            target.write_bytes(data)
        self.written.append(target)
        alt = " ".join(alt.split()).replace("[", "(").replace("]", ")")  # brackets would end the image syntax
        return Figure(path=f"{self.link_prefix}/{name}.png", alt=alt)

    def emit(self, name: str, alt: str, payload: Any, draw: Callable[[], plt.Figure]) -> Figure:
        """Save ``draw()`` as ``<name>.png`` with ``alt`` text, or copy the PNG cached for the same drawing code
        and ``payload``. The cache key is everything the drawing depends on in the package (:func:`drawing_code`:
        the whole module that owns ``draw``, with its helpers and constants, and every package module whose code
        ``draw`` calls), this module (the shared style and helpers), matplotlib's version and the payload: editing
        an analysis module redraws its figures. Everything ``draw`` reads that is not code must be in
        ``payload``."""
        kind = drawing_code(draw)
        cached = None
        if self.cache_dir is not None:
            h = hashlib.sha256(f"{CODE_VERSION}:{kind}:{DPI}{_edition_salt()}".encode())
            _feed(h, payload)
            key = h.hexdigest()[:32]
            cached = self.cache_dir / key[:2] / f"{key}.png"
            try:
                data = cached.read_bytes()
                self.reused += 1
                return self._write(name, alt, data)
            except OSError:
                pass
        with plt.rc_context(STYLE):
            fig = draw()
            if i18n.current() != SOURCE_LANGUAGE:
                _localize_ticks(fig)
            data = self._png(fig)
        self.drawn += 1
        if cached is not None:
            try:
                atomic_write(cached, data)
            except OSError:
                pass  # a read-only cache only costs time
        return self._write(name, alt, data)


class _LocalizedTicks(ticker.ScalarFormatter):
    """matplotlib's plain tick labels with the edition's decimal sign ('0,25')."""
    decimal = "."

    def __call__(self, x: float, pos: int | None = None) -> str:
        return super().__call__(x, pos).replace(".", self.decimal)


def _localize_ticks(fig: plt.Figure) -> None:
    """Every plain numeric axis of ``fig`` (colour bars included) labelled with the edition's decimal sign; log and
    category axes keep their own formatters. The English figures are drawn without it, byte for byte as before."""
    from babel.numbers import get_decimal_symbol
    decimal = get_decimal_symbol(i18n.babel_locale())
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            formatter = axis.get_major_formatter()
            if type(formatter) is ticker.ScalarFormatter:
                formatter.__class__ = _LocalizedTicks  # keeps the formatter's settings and state
                formatter.decimal = decimal


# ---- helpers ------------------------------------------------------------------------------------------------
def _number_text(w: float) -> str:
    """A kernel weight as a reader writes it: 2, -1, 1/9, 0.25."""
    from fractions import Fraction
    if abs(w - round(w)) < 1e-9:
        return str(int(round(w)))
    f = Fraction(w).limit_denominator(64)
    return f"{f.numerator}/{f.denominator}" if abs(float(f) - w) < 1e-6 else numbers.plain(w, 2)


def cell_labels(ax: plt.Axes, cells: list[tuple[float, float, str, str]], fontsize: float) -> None:
    """Short labels centred on points in data coordinates (a heatmap's values: ``(x, y, text, colour)``), drawn as
    one collection of glyph outlines rather than one ``Text`` per cell: a 13 × 13 heatmap's 169 numbers cost one
    draw call instead of 169 text layouts, done twice (once to lay the figure out). The labels take no part in the
    layout, like ``in_layout=False`` text."""
    from matplotlib.collections import PathCollection
    from matplotlib.transforms import Affine2D
    points = Affine2D().scale(1 / 72) + ax.figure.dpi_scale_trans  # the glyphs' size in points, at any dpi
    labels = PathCollection([_glyphs(c[2], fontsize) for c in cells], offsets=[(c[0], c[1]) for c in cells],
                            offset_transform=ax.transData, transform=points,
                            facecolors=[c[3] for c in cells], edgecolors="none", linewidths=0, zorder=3)
    labels.set_in_layout(False)
    ax.add_collection(labels, autolim=False)


@functools.lru_cache(maxsize=4096)
def _glyphs(text: str, fontsize: float) -> "matplotlib.path.Path":
    """``text``'s outline in points, in matplotlib's default font (the figures' only one), its ink centred on
    (0, 0): shaped once per text and size. Centring the ink suits numbers, what the helper is for; a text with a
    descender or a lone minus sign would sit a little off its line."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath
    from matplotlib.transforms import Affine2D
    path = TextPath((0, 0), text, prop=FontProperties(size=fontsize))
    ink = path.get_extents()
    return path.transformed(Affine2D().translate(-(ink.x0 + ink.x1) / 2, -(ink.y0 + ink.y1) / 2))


def _mosaic(tiles: np.ndarray, ncols: int, gap: int = 1) -> np.ndarray:
    """[n, h, w] tiles -> one 2-D array, ``ncols`` per row, separated by NaN gaps (drawn as background)."""
    n, h, w = tiles.shape
    rows = math.ceil(n / ncols)
    out = np.full((rows * (h + gap) - gap, ncols * (w + gap) - gap), np.nan)
    for k in range(n):
        r, c = divmod(k, ncols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tiles[k]
    return out


def _with_bad(cmap: str) -> mcolors.Colormap:
    """The colormap with NaN drawn as the page background (white)."""
    return plt.get_cmap(cmap).with_extremes(bad="white")


def _activation_scale(values: np.ndarray) -> tuple[str, mcolors.Normalize]:
    """Non-negative activations: viridis from 0; signed ones: a diverging map centred on 0."""
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if low >= 0:
        return SEQUENTIAL, mcolors.Normalize(0, high if high > 0 else 1.0)
    limit = max(abs(low), abs(high)) or 1.0
    return DIVERGING, mcolors.Normalize(-limit, limit)


def _tile_grid(ax: plt.Axes, tiles: np.ndarray, cols: int, pitch: tuple[float, float], cmap, norm,
               label: Callable[[int], str], fontsize: float):
    """2-D tiles in rows of ``cols`` on one colour scale, each labelled above (when there is more than one);
    returns the last image, for the colour bar."""
    pitch_x, pitch_y = pitch
    rows = math.ceil(len(tiles) / cols)
    for k, tile in enumerate(tiles):
        x0, y0 = (k % cols) * pitch_x, (k // cols) * pitch_y
        image = ax.imshow(tile, cmap=cmap, norm=norm, extent=(x0, x0 + 1, y0 + 1, y0), interpolation="nearest")
        if len(tiles) > 1:
            ax.text(x0 + 0.5, y0 - 0.03, label(k), ha="center", va="bottom", fontsize=fontsize, color=MUTED)
    _tile_axes(ax, cols * pitch_x - (pitch_x - 1), rows * pitch_y - (pitch_y - 1), top=-0.2)
    return image


def _tile_axes(ax: plt.Axes, width: float, height: float, top: float = -0.1, left: float = -0.02) -> None:
    """An axes used as a canvas for tiles placed with ``extent``: equal aspect, y down, no ticks or frame."""
    ax.set_xlim(left, width + 0.02)
    ax.set_ylim(height - 0.05, top)
    ax.set_aspect("equal")
    ax.axis("off")


def _frameless(ax: plt.Axes, tick_marks: bool = True) -> None:
    """An axes that shows an image or a mosaic: no frame and no grid; ``tick_marks=False`` also drops the tick
    marks (their labels stay)."""
    if not tick_marks:
        ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def drawing_code(draw: Callable[..., Any]) -> str:
    """A hash of the source of every file of the package that ``draw``'s drawing depends on: the module that
    defines ``draw`` and each package module holding a function, class or module that its code names, followed
    through the package functions those call. Files count by content, not by path; a drawing whose source cannot
    be read (built at run time) gets a key of its own, never a shared one."""
    code = draw.__code__
    where = (code.co_filename, code)  # equal code objects in two files are two drawings
    if where not in _DRAWINGS:
        _DRAWINGS[where] = sorted(_files_of(draw))
    try:
        digests = sorted({_file_digest(path) for path in _DRAWINGS[where]})
    except OSError:
        digests = [f"{code.co_filename}:{code.co_firstlineno}:{id(code)}"]
    return "code:" + hashlib.sha256("\n".join(digests).encode()).hexdigest()[:16]


def _files_of(draw: Callable[..., Any]) -> set[str]:
    """The source files of the package code that ``draw`` names, directly or through package functions."""
    files: set[str] = set()
    seen: set[Any] = set()
    todo: list[Any] = [draw]
    while todo:
        function = todo.pop()
        code = getattr(function, "__code__", None)
        if code is None or code in seen:
            continue
        seen.add(code)
        files.add(code.co_filename)
        namespace = getattr(function, "__globals__", {})
        cells = [cell.cell_contents for cell in getattr(function, "__closure__", None) or ()
                 if not _empty(cell)]
        for target in [namespace.get(name) for name in _names(code)] + cells:
            module = _package_module(target)
            if module is None:
                continue
            files.add(module.__file__)
            if inspect.isfunction(target):
                todo.append(target)
            elif inspect.isclass(target):
                todo += [v for v in vars(target).values() if inspect.isfunction(v)]
    return files


def _names(code: Any) -> set[str]:
    """The global names a code object (and the functions and comprehensions nested in it) refers to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _names(const)
    return names


def _empty(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # a closure variable not yet assigned
        return True
    return False


def _package_module(target: Any) -> Any:
    """The module of this package that defines ``target`` (or is ``target``), if it has a source file."""
    name = target.__name__ if inspect.ismodule(target) else getattr(target, "__module__", None)
    if not isinstance(name, str) or name.split(".")[0] != _PACKAGE:
        return None
    module = sys.modules.get(name)
    return module if getattr(module, "__file__", None) else None


def _file_digest(path: str) -> str:
    """The SHA-256 of a source file, cached while its size and modification time stay the same."""
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _FILES:
        _FILES[key] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return _FILES[key]


_PACKAGE = __name__.split(".")[0]
_DRAWINGS: dict[tuple[str, Any], list[str]] = {}  # the files each drawing depends on
_FILES: dict[tuple[str, int, int], str] = {}
