"""Plots: matplotlib figures with one consistent look, saved as PNG under the post's folder.

Functions here only draw what ``reportgen.analysis`` computed. Every figure is written through
:class:`FigureWriter`, which gives it a deterministic file name (``<analysis>-<variant>[-<layer>].png``) and records
its alt text. Drawing is the slow part of a render, so a figure whose inputs (and this file, and matplotlib) did not
change is copied from ``.cache/figures/`` instead of being drawn again; the bytes are identical either way.

Image grids are drawn as tiles in one axes (one ``imshow`` per tile or one mosaic), not one axes per tile: the same
picture, many times faster to draw.
"""
from __future__ import annotations

import hashlib
import inspect
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402

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
CACHE_ENV = "REPORTGEN_CACHE"


def cache_root() -> Path:
    """Where derived numbers and drawn figures are cached: ``$REPORTGEN_CACHE`` or ``.cache`` (never results/)."""
    return Path(os.environ.get(CACHE_ENV) or ".cache")


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

    def save(self, fig: plt.Figure, name: str, alt: str) -> Figure:
        return self._write(name, alt, self._png(fig))

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

    def _emit(self, kind: str, name: str, alt: str, payload: Any, draw: Callable[[], plt.Figure]) -> Figure:
        """Draw (or reuse the cached PNG of) a figure whose look depends only on ``kind`` and ``payload``."""
        cached = None
        if self.cache_dir is not None:
            h = hashlib.sha256(f"{CODE_VERSION}:{kind}:{DPI}".encode())
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
            data = self._png(draw())
        self.drawn += 1
        if cached is not None:
            from .store import atomic_write
            try:
                atomic_write(cached, data)
            except OSError:
                pass  # a read-only cache only costs time
        return self._write(name, alt, data)

    def emit(self, name: str, alt: str, payload: Any, draw: Callable[[], plt.Figure]) -> Figure:
        """Save ``draw()`` as ``<name>.png`` with ``alt`` text, or copy the PNG cached for the same drawing code
        and ``payload``. The cache key is the source of ``draw`` itself (a closure in the analysis module that
        owns the figure), this module (the shared style and helpers), matplotlib's version and the payload: editing
        one figure redraws that figure only. Everything ``draw`` reads that is not in its source must be in
        ``payload``."""
        return self._emit(_source_key(draw), name, alt, payload, draw)

    # ---- the figures ------------------------------------------------------------------------------------
    def curves(self, series: dict[str, dict[str, np.ndarray]], title: str, name: str = "curves") -> Figure:
        """Loss and accuracy per epoch; solid = train, dashed = validation; band = min–max over seeds."""
        def draw() -> plt.Figure:
            fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(WIDTH, 3.6))
            for i, (label, s) in enumerate(series.items()):
                color = PALETTE[i % len(PALETTE)]
                epochs = np.arange(1, s["train_loss"].shape[1] + 1)
                for ax, key, scale in ((ax_loss, "loss", 1), (ax_acc, "acc", 100)):
                    for split, style in (("train", "-"), ("val", "--")):
                        values = s[f"{split}_{key}"] * scale
                        ax.plot(epochs, values.mean(0), style, color=color, marker="o", markersize=3,
                                label=f"{label} ({'train' if split == 'train' else 'validation'})")
                        if values.shape[0] > 1:
                            ax.fill_between(epochs, values.min(0), values.max(0), color=color, alpha=0.15, linewidth=0)
            ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
            ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
            for ax in (ax_loss, ax_acc):
                ax.xaxis.get_major_locator().set_params(integer=True)
            handles, labels = ax_acc.get_legend_handles_labels()
            fig.legend(handles, labels, loc="lower center", ncol=2,
                       bbox_to_anchor=(0.5, -0.02 - 0.05 * ((len(labels) + 1) // 2)))
            fig.suptitle(title)
            fig.tight_layout()
            return fig

        n_seeds = max(s["train_loss"].shape[0] for s in series.values())
        alt = (f"Training curves of {', '.join(series)}: loss and accuracy per epoch for the training set (solid) "
               f"and validation set (dashed), mean of {n_seeds} seed(s) with a min–max band")
        return self._emit("curves", name, alt, (series, title), draw)

    def confusion(self, matrix: np.ndarray, classes: list[str], normalised: bool, title: str, name: str) -> Figure:
        """A confusion matrix: rows = true class, columns = predicted class, every non-zero cell annotated."""
        matrix = np.asarray(matrix, dtype=float)
        values = matrix * 100 if normalised else matrix

        def draw() -> plt.Figure:
            n = len(classes)
            fig, ax = plt.subplots(figsize=(WIDTH, WIDTH * 0.82))
            top = values.max() if values.size else 1
            image = ax.imshow(values, cmap=HEAT, vmin=0, vmax=100 if normalised else max(top, 1))
            ax.grid(False)
            size = 8 if n <= 10 else 6
            for i in range(n):
                for j in range(n):
                    v = values[i, j]
                    if v == 0:
                        continue
                    text = (f"{v:.0f}" if v >= 9.95 else f"{v:.1f}") if normalised else f"{int(v)}"
                    dark = v > 0.55 * (100 if normalised else top)
                    ax.text(j, i, text, ha="center", va="center", fontsize=size,
                            color=TEXT_LIGHT if dark else TEXT_DARK, fontweight="bold" if i == j else "normal")
            ax.set_xticks(range(n), classes, rotation=40, ha="right", rotation_mode="anchor")
            ax.set_yticks(range(n), classes)
            ax.set(xlabel="predicted class", ylabel="true class", title=title)
            for spine in ax.spines.values():
                spine.set_visible(False)
            bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
            bar.set_label("% of the true class" if normalised else "test images")
            fig.tight_layout()
            return fig

        off = matrix.copy()
        np.fill_diagonal(off, -1)
        i, j = np.unravel_index(int(np.argmax(off)), off.shape)
        worst = (f"; the largest off-diagonal cell is true {classes[i]} predicted as {classes[j]}"
                 if off[i, j] > 0 else "")
        alt = (f"{title}. Rows are the true class, columns the predicted class"
               f"{', each row in percent of that class' if normalised else ', cells count test images'}; "
               f"the diagonal holds the correct predictions{worst}")
        return self._emit("confusion", name, alt, (values, classes, normalised, title), draw)

    def misclassified(self, images: np.ndarray, shown: list[dict[str, Any]], title: str, name: str,
                      ncols: int = 6) -> Figure:
        """A gallery of test images with their true class and the (wrong) prediction with its confidence."""
        def draw() -> plt.Figure:
            n = len(images)
            cols = min(ncols, n)
            rows = math.ceil(n / cols)
            pitch_x, pitch_y = 1.25, 1.55
            fig, ax = plt.subplots(figsize=(WIDTH, 0.5 + (rows * pitch_y - pitch_y + 1.5) * WIDTH / (cols * pitch_x)))
            for k, (img, info) in enumerate(zip(images, shown)):
                x0, y0 = (k % cols) * pitch_x, (k // cols) * pitch_y
                ax.imshow(img, cmap=IMAGE_CMAP, vmin=0, vmax=255, extent=(x0, x0 + 1, y0 + 1, y0),
                          interpolation="nearest")
                ax.text(x0 + 0.5, y0 - 0.04, f"{info['predicted']} {info['confidence_pct']:.0f}%", ha="center",
                        va="bottom", fontsize=7.5, color=WRONG, fontweight="bold")
                ax.text(x0 + 0.5, y0 - 0.22, f"true: {info['true']}", ha="center", va="bottom", fontsize=7.5,
                        color=TEXT_DARK)
            _tile_axes(ax, cols * pitch_x - (pitch_x - 1), rows * pitch_y - (pitch_y - 1), top=-0.5)
            fig.suptitle(title, y=1.0)
            fig.tight_layout()
            return fig

        pairs = ", ".join(f"{s['true']} predicted as {s['predicted']}" for s in shown[:3])
        alt = (f"{title}: {len(shown)} test images, each labelled with the wrong prediction and its confidence (red) "
               f"and the true class; the first are {pairs}")
        return self._emit("misclassified", name, alt, (images, shown, title, ncols), draw)

    def samples(self, grid: np.ndarray, classes: list[str], title: str, name: str) -> Figure:
        """Rows of training images, one row per class, the class name on the left."""
        def draw() -> plt.Figure:
            n_cls, per = grid.shape[:2]
            mosaic = _mosaic(grid.reshape(-1, *grid.shape[2:]).astype(float), per, gap=2)
            fig, ax = plt.subplots(figsize=(WIDTH * 0.8, WIDTH * 0.8 * n_cls / per + 0.4))
            ax.imshow(mosaic, cmap=_with_bad(IMAGE_CMAP), vmin=0, vmax=255, interpolation="nearest")
            step = grid.shape[2] + 2
            ax.set_yticks([c * step + grid.shape[2] / 2 for c in range(n_cls)], classes)
            ax.set_xticks([])
            ax.tick_params(length=0)
            for spine in ax.spines.values():
                spine.set_visible(False)
            ax.grid(False)
            ax.set_title(title)
            fig.tight_layout()
            return fig

        alt = f"{title}: a grid with one row per class ({', '.join(classes)})"
        return self._emit("samples", name, alt, (grid, classes, title), draw)

    def filters(self, tiles: np.ndarray, layer: str, title: str, name: str) -> Figure:
        """Learned weights as small images on one symmetric colour scale (blue negative, red positive)."""
        tiles = np.asarray(tiles, dtype=float)

        def draw() -> plt.Figure:
            n = len(tiles)
            cols = min(n, 8)
            rows = math.ceil(n / cols)
            big = tiles.shape[-1] > 8
            width = min(WIDTH, 1.8 + cols * 1.3)
            fig, ax = plt.subplots(figsize=(width, 0.6 + rows * 1.1 * (width - 1.1) / cols))
            limit = float(np.abs(tiles).max()) or 1.0
            norm = mcolors.Normalize(-limit, limit)
            image = _tile_grid(ax, tiles, cols, (1.12, 1.25), DIVERGING, norm, str, fontsize=7)
            bar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, shrink=0.9 if rows > 1 else 0.8)
            bar.set_label("weight")
            ax.set_title(title, fontsize=10 if big else 10.5)
            fig.tight_layout()
            return fig

        alt = (f"{title}. Each tile shows the weights of {layer} as an image: red pixels are positive weights, blue "
               f"negative, white near zero (range {tiles.min():.2f} to {tiles.max():.2f})")
        return self._emit("filters", name, alt, (tiles, layer, title), draw)

    def filter_detail(self, weights: np.ndarray, layer: str, title: str, name: str) -> Figure:
        """Every 2-D slice of a deeper convolution's kernels: one column per output channel, one row per input
        channel, on one symmetric colour scale."""
        weights = np.asarray(weights, dtype=float)

        def draw() -> plt.Figure:
            out_c, in_c, kh, kw = weights.shape
            limit = float(np.abs(weights).max()) or 1.0
            tiles = weights.transpose(1, 0, 2, 3).reshape(-1, kh, kw)  # row r = input channel r
            mosaic = _mosaic(tiles, out_c, gap=1)
            cell = (WIDTH - 1.6) / out_c
            fig, ax = plt.subplots(figsize=(WIDTH, 1.2 + in_c * cell))
            image = ax.imshow(mosaic, cmap=_with_bad(DIVERGING), vmin=-limit, vmax=limit, interpolation="nearest")
            ax.set_xticks([c * (kw + 1) + (kw - 1) / 2 for c in range(out_c)], [str(c) for c in range(out_c)],
                          fontsize=7)
            ax.set_yticks([r * (kh + 1) + (kh - 1) / 2 for r in range(in_c)], [str(r) for r in range(in_c)],
                          fontsize=7)
            ax.set(xlabel="output channel (filter)", ylabel="input channel")
            ax.tick_params(length=0)
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
            ax.set_title(title, fontsize=10)
            fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02).set_label("weight")
            fig.tight_layout()
            return fig

        alt = (f"{title}: a grid of {weights.shape[0]} columns (output channels, one per filter) by "
               f"{weights.shape[1]} rows (input channels); each tile is one {weights.shape[2]}×{weights.shape[3]} "
               "slice of a filter, red positive, blue negative")
        return self._emit("filter_detail", name, alt, (weights, layer, title), draw)

    def feature_map(self, maps: np.ndarray, layer: str, title: str, name: str) -> Figure:
        """Every channel of one layer's output for one image, on one colour scale for the whole layer."""
        maps = np.asarray(maps, dtype=float)

        def draw() -> plt.Figure:
            n = len(maps)
            cols = min(n, 8)
            rows = math.ceil(n / cols)
            width = WIDTH if n > 1 else WIDTH * 0.5
            fig, ax = plt.subplots(figsize=(width, 0.6 + rows * 1.1 * WIDTH * 0.85 / max(cols, 2)))
            cmap, norm = _activation_scale(maps)
            image = _tile_grid(ax, maps, cols, (1.1, 1.22), cmap, norm, lambda k: f"channel {k}", fontsize=6.5)
            fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, shrink=0.9).set_label("activation")
            ax.set_title(title, fontsize=10)
            fig.tight_layout()
            return fig

        alt = (f"{title}: {len(maps)} map(s) of {maps.shape[1]}×{maps.shape[2]} pixels, one per channel, "
               f"on one colour scale from {maps.min():.2f} to {maps.max():.2f}")
        return self._emit("feature_map", name, alt, (maps, layer, title), draw)

    def vector(self, values: np.ndarray, layer: str, title: str, name: str, classes: list[str] | None = None,
               probs: np.ndarray | None = None, fold: int | None = None) -> Figure:
        """A 1-D layer output: logits as bars per class (with softmax probabilities), short vectors as bars, long
        ones as a heat strip folded into rows of ``fold`` values (e.g. one row per channel after ``flatten``)."""
        values = np.asarray(values, dtype=float)

        def draw() -> plt.Figure:
            n = len(values)
            if classes is not None:
                fig, ax = plt.subplots(figsize=(WIDTH, 0.5 + 0.28 * n))
                order = np.arange(n)
                best = int(np.argmax(values))
                colors = [PALETTE[0] if i != best else PALETTE[1] for i in order]
                ax.barh(order, values, color=colors)
                ax.set_yticks(order, classes)
                ax.invert_yaxis()
                ax.axvline(0, color=MUTED, linewidth=0.8)
                span = (values.max() - min(values.min(), 0)) or 1.0
                for i in order:
                    text = f"p = {probs[i] * 100:.1f}%" if probs is not None else ""
                    ax.text(max(values[i], 0) + 0.02 * span, i, text, va="center", fontsize=7.5, color=MUTED)
                ax.set_xlim(min(values.min(), 0) - 0.05 * span, values.max() + 0.28 * span)
                ax.set(xlabel="logit (softmax probability on the right)", title=title)
                ax.grid(axis="y", visible=False)
            elif n <= 160 and fold is None:
                fig, ax = plt.subplots(figsize=(WIDTH, 2.4))
                x = np.arange(n)
                width = 0.8 * 6.3 * 72 / max(n, 1)  # points: 80% of the space per unit
                for mask, color in ((values >= 0, PALETTE[0]), (values < 0, PALETTE[3])):
                    ax.vlines(x[mask], 0, values[mask], color=color, linewidth=min(width, 12))
                ax.axhline(0, color=MUTED, linewidth=0.8)
                ax.set(xlabel=f"unit (0–{n - 1})", ylabel="activation", title=title, xlim=(-1, n))
                ax.grid(axis="x", visible=False)
            else:
                cols = fold or (50 if n <= 2500 else 100)
                rows = math.ceil(n / cols)
                strip = np.full(rows * cols, np.nan)
                strip[:n] = values
                height = min(4.5, 0.9 + rows * WIDTH / cols)
                fig, ax = plt.subplots(figsize=(WIDTH, max(height, 2.2)))
                cmap, norm = _activation_scale(values)
                image = ax.imshow(strip.reshape(rows, cols), cmap=_with_bad(cmap), norm=norm, interpolation="nearest",
                                  aspect="auto")
                if fold is not None:
                    ax.set(xlabel=f"position within the channel's map ({cols} values, row by row)",
                           ylabel="channel", title=title)
                else:
                    ax.set(xlabel=f"unit mod {cols}", ylabel=f"unit ÷ {cols}", title=title)
                ax.yaxis.get_major_locator().set_params(integer=True)
                ax.grid(False)
                fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02).set_label("activation")
            fig.tight_layout()
            return fig

        if classes is not None:
            best = int(np.argmax(values))
            alt = (f"{title}: one bar per class; the largest logit is {classes[best]}"
                   + (f" with probability {probs[best] * 100:.1f}%" if probs is not None else ""))
        else:
            alt = (f"{title}: the {len(values)} values of the layer's output, from {values.min():.2f} to "
                   f"{values.max():.2f}, {int((values == 0).sum())} of them exactly zero"
                   + (f", one row per channel of {fold} values" if fold else ""))
        return self._emit("vector", name, alt, (values, layer, title, classes, probs, fold), draw)

    def feature_overview(self, images: np.ndarray, layers: list[tuple[str, np.ndarray]], row_labels: list[str],
                         title: str, name: str) -> Figure:
        """Rows = one example image per class, columns = the input and each layer: for a 2-D layer its most active
        channel (the same channel in every row), for a vector its values folded into a square."""
        columns = [("input", images.astype(float)[:, None], None)]
        for layer, out in layers:
            out = np.asarray(out, dtype=float)
            if out.ndim == 4:
                channel = int(np.abs(out).mean(axis=(0, 2, 3)).argmax())
                columns.append((f"{layer}\nch {channel}", out[:, channel:channel + 1], None))
            else:
                side = math.ceil(math.sqrt(out.shape[1]))
                padded = np.full((out.shape[0], side * side), np.nan)
                padded[:, :out.shape[1]] = out
                columns.append((f"{layer}\n({out.shape[1]})", padded.reshape(-1, 1, side, side), None))

        def draw() -> plt.Figure:
            n_rows, n_cols = len(images), len(columns)
            label_w = 1.6
            pitch_x, pitch_y = 1.12, 1.1
            cell = (WIDTH - 1.1) / (n_cols * pitch_x + label_w)
            fig, ax = plt.subplots(figsize=(WIDTH, 0.9 + cell * n_rows * pitch_y + 0.5))
            for c, (header, data, _) in enumerate(columns):
                if c == 0:
                    cmap, norm = _with_bad(IMAGE_CMAP), mcolors.Normalize(0, 255)
                else:
                    cmap, norm = _activation_scale(data)
                    cmap = _with_bad(cmap)
                x0 = label_w + c * pitch_x
                for r in range(n_rows):
                    y0 = r * pitch_y
                    ax.imshow(data[r, 0], cmap=cmap, norm=norm, extent=(x0, x0 + 1, y0 + 1, y0),
                              interpolation="nearest")
                ax.text(x0 + 0.5, -0.08, header, ha="center", va="bottom", fontsize=6.5, color=TEXT_DARK)
            for r, label in enumerate(row_labels):
                ax.text(label_w - 0.1, r * pitch_y + 0.5, label, ha="right", va="center", fontsize=7.5)
            _tile_axes(ax, label_w + n_cols * pitch_x - (pitch_x - 1), n_rows * pitch_y, top=-0.75, left=0)
            ax.set_title(title, fontsize=10, pad=2)
            fig.tight_layout()
            return fig

        headers = ", ".join(h.replace("\n", " ") for h, _, _ in columns[1:])
        alt = (f"{title}: {len(images)} rows (one test image per class: {', '.join(row_labels)}) and one column per "
               f"stage: the input, then {headers}; each column on its own colour scale")
        payload = ([(h, d) for h, d, _ in columns], row_labels, title)
        return self._emit("feature_overview", name, alt, payload, draw)

    def zero_fractions(self, series: dict[str, list[tuple[str, float]]], title: str, name: str) -> Figure:
        """Horizontal bars: the share of exact zeros after each ReLU, per variant."""
        def draw() -> plt.Figure:
            labels, values, colors = [], [], []
            for i, (variant, layers) in enumerate(series.items()):
                for layer, pct in layers:
                    labels.append(f"{variant} · {layer}")
                    values.append(pct)
                    colors.append(PALETTE[i % len(PALETTE)])
            fig, ax = plt.subplots(figsize=(WIDTH, 0.6 + 0.3 * len(labels)))
            y = np.arange(len(labels))
            ax.barh(y, values, color=colors)
            for yi, v in zip(y, values):
                ax.text(v + 1, yi, f"{v:.1f}%", va="center", fontsize=8)
            ax.set_yticks(y, labels)
            ax.invert_yaxis()
            ax.set(xlim=(0, 110), xlabel="share of activations that are exactly 0 (%)", title=title)
            ax.grid(axis="y", visible=False)
            fig.tight_layout()
            return fig

        parts = "; ".join(f"{v}: " + ", ".join(f"{layer} {pct:.1f}%" for layer, pct in layers)
                          for v, layers in series.items())
        alt = f"{title}. {parts}"
        return self._emit("zero_fractions", name, alt, (series, title), draw)

    def kernels(self, image: np.ndarray, kernels: list[tuple[str, np.ndarray, np.ndarray]], title: str,
                name: str) -> Figure:
        """The input image, then for each kernel its weights (numbers shown) above its output."""
        def draw() -> plt.Figure:
            k = len(kernels)
            fig, axes = plt.subplots(2, k + 1, figsize=(WIDTH, 3.9), gridspec_kw={"height_ratios": [1, 1]})
            axes[0, 0].imshow(image, cmap=IMAGE_CMAP, vmin=0, vmax=1, interpolation="nearest")
            axes[0, 0].set_title("input", fontsize=9)
            axes[1, 0].axis("off")
            axes[1, 0].text(0.5, 0.5, "kernel ↑\noutput ↓", ha="center", va="center", fontsize=8, color=MUTED,
                            transform=axes[1, 0].transAxes)
            axes[1, 0].set_visible(False)
            for c, (kname, weights, out) in enumerate(kernels, start=1):
                ax_k, ax_o = axes[0, c], axes[1, c]
                limit = float(np.abs(weights).max()) or 1.0
                ax_k.imshow(weights, cmap=DIVERGING, vmin=-limit, vmax=limit)
                for (i, j), w in np.ndenumerate(weights):
                    text = _number_text(w)
                    ax_k.text(j, i, text, ha="center", va="center", fontsize=7.5 if len(text) > 3 else 9,
                              color=TEXT_LIGHT if abs(w) > 0.6 * limit else TEXT_DARK)
                ax_k.set_title(kname, fontsize=9)
                if out.min() >= 0:
                    ax_o.imshow(out, cmap=IMAGE_CMAP, vmin=0, vmax=max(float(out.max()), 1e-6), interpolation="nearest")
                else:
                    lim = float(np.abs(out).max()) or 1.0
                    ax_o.imshow(out, cmap=DIVERGING, vmin=-lim, vmax=lim, interpolation="nearest")
                ax_o.set_xlabel(f"{out.min():.1f} … {out.max():.1f}", fontsize=7.5, color=MUTED)
            for ax in axes.flat:
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                for spine in ax.spines.values():
                    spine.set_visible(False)
            fig.suptitle(title, fontsize=10.5)
            fig.tight_layout()
            return fig

        alt = (f"{title}: the input image, then for each kernel ({', '.join(k[0] for k in kernels)}) its 3×3 weights "
               "above the output of convolving the image with it (signed outputs: red positive, blue negative)")
        return self._emit("kernels", name, alt, (image, kernels, title), draw)

    def augmentations(self, original: np.ndarray, rows: list[tuple[str, np.ndarray]], title: str, name: str) -> Figure:
        """One row per transform: the original image, then its random draws."""
        def draw() -> plt.Figure:
            draws = max(len(imgs) for _, imgs in rows)
            tiles = np.full((len(rows), draws + 1, *original.shape), np.nan)
            for r, (_, imgs) in enumerate(rows):
                tiles[r, 0] = original
                tiles[r, 1:len(imgs) + 1] = imgs
            label_w = 1.9 if len(rows) > 1 else 0.0
            pitch = 1.1
            cell = (WIDTH - 0.3) / (label_w + (draws + 1) * pitch + 0.3)
            fig, ax = plt.subplots(figsize=(WIDTH, 0.55 + cell * len(rows) * pitch + 0.2))
            for r, (label, _) in enumerate(rows):
                for c in range(draws + 1):
                    x0, y0 = label_w + c * pitch + (0.3 if c else 0), r * pitch
                    ax.imshow(tiles[r, c], cmap=_with_bad(IMAGE_CMAP), vmin=0, vmax=255,
                              extent=(x0, x0 + 1, y0 + 1, y0), interpolation="nearest")
                if label_w:
                    ax.text(label_w - 0.1, r * pitch + 0.5, label, ha="right", va="center", fontsize=8)
            ax.text(label_w + 0.5, -0.05, "original", ha="center", va="bottom", fontsize=7.5, color=MUTED)
            ax.text(label_w + 1.3 + draws * pitch / 2, -0.05, "random draws", ha="center", va="bottom", fontsize=7.5,
                    color=MUTED)
            _tile_axes(ax, label_w + (draws + 1) * pitch + 0.3 - (pitch - 1), len(rows) * pitch, top=-0.4, left=0)
            ax.set_title(title, fontsize=10)
            fig.tight_layout()
            return fig

        alt = f"{title}: one row per transform ({', '.join(r[0] for r in rows)}), the original on the left"
        return self._emit("augmentations", name, alt, (original, rows, title), draw)

    def shift_triptych(self, images: np.ndarray, titles: list[str], title: str, name: str) -> Figure:
        """The same image at its place and shifted, with the image border and a faint pixel grid."""
        def draw() -> plt.Figure:
            fig, axes = plt.subplots(1, len(images), figsize=(WIDTH, WIDTH / len(images) + 0.5))
            for ax, img, t in zip(axes, images, titles):
                ax.imshow(img, cmap=IMAGE_CMAP, vmin=0, vmax=255, interpolation="nearest")
                ax.set_xticks(np.arange(-0.5, img.shape[1], 4), minor=False)
                ax.set_yticks(np.arange(-0.5, img.shape[0], 4), minor=False)
                ax.tick_params(length=0, labelbottom=False, labelleft=False)
                ax.grid(True, color="#888888", alpha=0.35, linewidth=0.5)
                ax.set_title(t, fontsize=9)
            fig.suptitle(title, fontsize=10.5)
            fig.tight_layout()
            return fig

        alt = (f"{title}: three versions of the image side by side: {', '.join(titles)}; pixels pushed over one "
               "edge come back on the opposite edge")
        return self._emit("shift_triptych", name, alt, (images, titles, title), draw)

    def shift_heatmaps(self, zero: np.ndarray, wrap: np.ndarray, radius: int, vmin: float, title: str,
                       name: str, vmax: float = 100.0) -> Figure:
        """Accuracy (%) for every shift, zero-filled next to wrapped around, same colour scale, values written in."""
        def draw() -> plt.Figure:
            fig, axes = plt.subplots(1, 2, figsize=(WIDTH, WIDTH * 0.5 + 0.3), layout="constrained")
            extent = (-radius - 0.5, radius + 0.5, radius + 0.5, -radius - 0.5)
            for ax, grid, label in ((axes[0], zero, "zero-filled (black comes in)"),
                                    (axes[1], wrap, "wrap-around (torch.roll)")):
                image = ax.imshow(grid, cmap=SEQUENTIAL, vmin=vmin, vmax=vmax, extent=extent, interpolation="nearest")
                for (iy, ix), v in np.ndenumerate(grid):
                    ax.text(ix - radius, iy - radius, f"{v:.0f}", ha="center", va="center", fontsize=5.5,
                            color=TEXT_DARK if v > vmin + 0.6 * (vmax - vmin) else TEXT_LIGHT)
                ax.add_patch(plt.Rectangle((-0.5, -0.5), 1, 1, fill=False, edgecolor=WRONG, linewidth=1.2))
                ticks = list(range(-radius, radius + 1, 2))
                ax.set_xticks(ticks)
                ax.set_yticks(ticks)
                ax.tick_params(labelsize=8)
                ax.set(xlabel="dx: pixels to the right", ylabel="dy: pixels down", title=label)
                ax.title.set_fontsize(9.5)
                ax.grid(False)
            fig.colorbar(image, ax=axes, fraction=0.025, pad=0.02).set_label("test accuracy (%)")
            fig.suptitle(title, fontsize=10.5)
            return fig

        c = radius
        alt = (f"{title}. Two {2 * radius + 1}×{2 * radius + 1} heatmaps of test accuracy for every shift from "
               f"{-radius} to {radius} pixels: unshifted {zero[c, c]:.1f}%; shifted {radius} pixels right "
               f"{zero[c, -1]:.1f}% zero-filled and {wrap[c, -1]:.1f}% wrapped; lowest {zero.min():.1f}% zero-filled")
        return self._emit("shift_heatmaps", name, alt, (zero, wrap, radius, vmin, vmax, title), draw)

    def shift_curve(self, series: dict[str, list[dict[str, float]]], title: str, name: str) -> Figure:
        """Accuracy against shift distance: solid zero-filled, dashed wrap-around, one colour per variant."""
        def draw() -> plt.Figure:
            fig, ax = plt.subplots(figsize=(WIDTH, 3.6))
            from matplotlib.lines import Line2D
            handles = []
            for i, (label, points) in enumerate(series.items()):
                color = PALETTE[i % len(PALETTE)]
                d = [p["distance"] for p in points]
                ax.plot(d, [p["zero_pct"] for p in points], "-o", color=color, markersize=4)
                ax.plot(d, [p["wrap_pct"] for p in points], "--", color=color, alpha=0.7)
                handles.append(Line2D([], [], color=color, marker="o", markersize=4, label=label))
            handles += [Line2D([], [], color=MUTED, linestyle="-", label="zero-filled"),
                        Line2D([], [], color=MUTED, linestyle="--", label="wrap-around")]
            ax.set(xlabel="shift distance √(dx² + dy²) in pixels (rounded)", ylabel="test accuracy (%)",
                   title=title)
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5))
            fig.tight_layout()
            return fig

        parts = "; ".join(f"{label}: {p[0]['zero_pct']:.1f}% unshifted, {p[-1]['zero_pct']:.1f}% at "
                          f"{p[-1]['distance']} pixels"
                          for label, p in series.items())
        alt = f"{title}, one line per variant (solid: zero-filled, dashed: wrap-around). {parts}"
        return self._emit("shift_curve", name, alt, (series, title), draw)

    def per_class_f1(self, variants: list[tuple[str, str, list[dict[str, Any]]]], title: str, name: str) -> Figure:
        """Horizontal bars of F1 per class with min–max whiskers; grouped when every variant shares a dataset."""
        def draw() -> plt.Figure:
            same = len({ds for _, ds, _ in variants}) == 1
            if same:
                classes = [c["name"] for c in variants[0][2]]
                k = len(variants)
                fig, ax = plt.subplots(figsize=(WIDTH, 3.8))
                width = 0.82 / k
                for i, (label, _, rows) in enumerate(variants):
                    x = np.arange(len(rows)) + (i - (k - 1) / 2) * width
                    f1 = np.array([r["f1"] for r in rows])
                    err = np.array([[r["f1"] - r["min"] for r in rows], [r["max"] - r["f1"] for r in rows]])
                    ax.bar(x, f1, width=width * 0.92, color=PALETTE[i % len(PALETTE)], label=label,
                           yerr=err if err.any() else None, error_kw={"elinewidth": 0.8, "capsize": 1.5})
                ax.set_xticks(np.arange(len(classes)), classes, rotation=30, ha="right", rotation_mode="anchor")
                ax.set(ylim=(0, 1.0), ylabel="F1 score", title=title)
                ax.grid(axis="x", visible=False)
                if k > 1:
                    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=min(k, 3))
                fig.tight_layout()
                return fig
            cols = min(len(variants), 3)
            rows_n = math.ceil(len(variants) / cols)
            fig, axes = plt.subplots(rows_n, cols, figsize=(WIDTH, 0.6 + 2.9 * rows_n), squeeze=False)
            for i, (label, ds, rows) in enumerate(variants):
                ax = axes[i // cols, i % cols]
                f1 = np.array([r["f1"] for r in rows])
                err = np.array([[r["f1"] - r["min"] for r in rows], [r["max"] - r["f1"] for r in rows]])
                ax.barh(np.arange(len(rows)), f1, color=PALETTE[i % len(PALETTE)],
                        xerr=err if err.any() else None, error_kw={"elinewidth": 0.8, "capsize": 1.5})
                ax.set_yticks(np.arange(len(rows)), [r["name"] for r in rows], fontsize=8)
                ax.invert_yaxis()
                ax.set(xlim=(0, 1.0), title=label)
                ax.title.set_fontsize(9.5)
                ax.grid(axis="y", visible=False)
            for j in range(len(variants), rows_n * cols):
                axes[j // cols, j % cols].set_visible(False)
            fig.suptitle(title, fontsize=10.5)
            fig.tight_layout()
            return fig

        def extremes(rows: list[dict[str, Any]]) -> str:
            ordered = sorted(rows, key=lambda r: (r["f1"], r["name"]))
            return (f"lowest {ordered[0]['name']} ({ordered[0]['f1']:.2f}), "
                    f"highest {ordered[-1]['name']} ({ordered[-1]['f1']:.2f})")

        parts = "; ".join(f"{label}: {extremes(rows)}" for label, _, rows in variants)
        alt = f"{title}. {parts}"
        return self._emit("per_class_f1", name, alt, (variants, title), draw)


# ---- helpers ------------------------------------------------------------------------------------------------
def _number_text(w: float) -> str:
    """A kernel weight as a reader writes it: 2, -1, 1/9, 0.25."""
    from fractions import Fraction
    if abs(w - round(w)) < 1e-9:
        return str(int(round(w)))
    f = Fraction(w).limit_denominator(64)
    return f"{f.numerator}/{f.denominator}" if abs(float(f) - w) < 1e-6 else f"{w:.2f}"


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


def _source_key(draw: Callable[..., Any]) -> str:
    code = draw.__code__
    if code not in _SOURCES:
        try:
            text = inspect.getsource(draw)
        except (OSError, TypeError):  # no source (e.g. built at run time): never cache under a shared key
            text = f"{code.co_filename}:{code.co_firstlineno}:{id(code)}"
        _SOURCES[code] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"source:{_SOURCES[code]}"


_SOURCES: dict[Any, str] = {}


def as_markdown(figure: Figure | dict[str, Any]) -> str:
    if isinstance(figure, Figure):
        return figure.markdown()
    return f"![{figure['alt']}]({figure['path']})"
