"""Plots: matplotlib figures with one consistent look, saved as PNG under the post's folder.

Functions here only draw what ``reportgen.analysis`` computed. Every figure is written through
:class:`FigureWriter`, which gives it a deterministic file name and records its alt text.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 150  # sharp on a laptop screen at the post's column width
WIDTH = 7.5
STYLE = {
    "figure.figsize": (WIDTH, 4.0), "figure.dpi": DPI, "savefig.dpi": DPI, "font.size": 10,
    "axes.titlesize": 11, "axes.labelsize": 10, "axes.grid": True, "grid.alpha": 0.3,
    "axes.spines.top": False, "axes.spines.right": False, "legend.fontsize": 9, "legend.frameon": False,
    "image.cmap": "viridis", "savefig.bbox": "tight", "svg.hashsalt": "reportgen",
}
PALETTE = plt.get_cmap("tab10").colors


@dataclass
class Figure:
    path: str   # relative to the post (what the Markdown links to)
    alt: str

    def markdown(self) -> str:
        return f"![{self.alt}]({self.path})"


@dataclass
class FigureWriter:
    """Saves figures into ``directory`` (the post's asset folder) as ``<prefix><name>.png``."""
    directory: Path
    link_prefix: str           # how the post refers to the folder, e.g. 'dropout'
    written: list[Path] = field(default_factory=list)

    def save(self, fig: plt.Figure, name: str, alt: str) -> Figure:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{name}.png"
        buf = io.BytesIO()
        # No timestamps or software tags in the PNG: the same numbers give byte-identical files.
        fig.savefig(buf, format="png", metadata={"Software": None})
        plt.close(fig)
        data = buf.getvalue()
        if not target.exists() or target.read_bytes() != data:
            target.write_bytes(data)
        self.written.append(target)
        return Figure(path=f"{self.link_prefix}/{name}.png", alt=alt)

    # ---- the figures ------------------------------------------------------------------------------------
    def curves(self, series: dict[str, dict[str, np.ndarray]], title: str, name: str = "curves") -> Figure:
        """Loss and accuracy per epoch; solid = train, dashed = validation; band = min–max over seeds."""
        with plt.rc_context(STYLE):
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
            fig.legend(handles, labels, loc="lower center", ncol=2, bbox_to_anchor=(0.5, -0.02 - 0.05 * ((len(labels) + 1) // 2)))
            fig.suptitle(title)
            fig.tight_layout()
        n_seeds = max(s["train_loss"].shape[0] for s in series.values())
        alt = (f"Training curves of {', '.join(series)}: loss and accuracy per epoch for the training set (solid) "
               f"and validation set (dashed), mean of {n_seeds} seed(s) with a min–max band")
        return self.save(fig, name, alt)


def as_markdown(figure: Figure | dict[str, Any]) -> str:
    if isinstance(figure, Figure):
        return figure.markdown()
    return f"![{figure['alt']}]({figure['path']})"
