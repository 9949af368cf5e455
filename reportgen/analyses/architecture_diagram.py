"""Architecture diagram: each distinct model of the study drawn from its own layer shapes (one hooked forward pass
of a blank image, :func:`reportgen.analyses._common.architecture_table`), left to right. A feature map of
c × h × w is a stack of c sheets (at most :data:`SHEETS` drawn) whose height follows h; a vector is a bar; the
operation that makes each stage is written on the arrow into it, with the activation, normalisation or dropout
that follows it. Needs no training."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, Rectangle
from torch import nn

from .. import i18n, numbers
from ..figures import MUTED, PALETTE, TEXT_DARK, WIDTH, Figure, FigureWriter
from ..i18n import N_
from ..settings import IMAGE_SIZE
from ..study import Study
from ..zoo import layer_word
from . import Analysis
from ._common import architecture_table, build_spec, layer_table, model_specs

SHEETS = 6   # a map with more channels is drawn as this many sheets; its label gives the real count
# Layers that make a new stage of the diagram; the others (activation, batch norm, dropout) join the stage before
STAGES = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Linear)


@dataclass
class Stage:
    name: str                    # the layer that makes it ("input" for the image)
    operation: str               # "conv 5×5, 6 ch → ReLU", "" for the input
    shape: list[int]             # without the batch dimension
    shape_text: str              # "6 × 28 × 28"
    parameters: int              # of the layers folded into this stage
    macs: int                    # multiply-adds of those layers, per image


@dataclass
class ModelDiagram:
    model: str
    variants: list[str]          # labels of the variants that use this model
    stages: list[Stage]
    parameters: int
    macs: int
    figure: Figure


@dataclass
class ArchitectureDiagramResult:
    models: list[ModelDiagram] = field(default_factory=list)


def stages(model: nn.Module, in_channels: int = 1) -> list[Stage]:
    """The model as the diagram draws it: the input, then one stage per layer of :data:`STAGES`, with the layers
    after it (activation, batch norm, dropout) folded into its operation, parameters and multiply-adds."""
    table = architecture_table(model, in_channels)
    out = [Stage(name="input", operation="", shape=[in_channels, IMAGE_SIZE, IMAGE_SIZE], shape_text=table.input,
                 parameters=0, macs=0)]
    for (name, module), row in zip(layer_table(model), table.rows):
        word = layer_word(module)
        if isinstance(module, STAGES):
            out.append(Stage(name=name, operation=word or "flatten", shape=row.output_shape,
                             shape_text=row.output, parameters=row.parameters, macs=row.macs))
            continue
        last = out[-1]
        last.operation += f" → {word}" if word else ""
        last.parameters += row.parameters
        last.macs += row.macs
    return out


def _draw_stage(ax: Any, x: float, stage: Stage, color: Any) -> float:
    """One stage at ``x``; returns its drawn width."""
    if len(stage.shape) == 3:
        c, h, _ = stage.shape
        side = 0.25 + 1.1 * h / IMAGE_SIZE
        sheets = min(c, SHEETS)
        step = 0.06
        for k in range(sheets):
            ax.add_patch(Rectangle((x + k * step, -side / 2 - k * step), side * 0.55, side, facecolor=color,
                                   edgecolor=TEXT_DARK, linewidth=0.6, alpha=0.85))
        return side * 0.55 + (sheets - 1) * step
    n = stage.shape[-1]
    height = min(1.5, 0.3 + 0.3 * math.log10(max(n, 1)))
    ax.add_patch(Rectangle((x, -height / 2), 0.12, height, facecolor=color, edgecolor=TEXT_DARK, linewidth=0.6))
    return 0.12


def draw_diagram(figures: FigureWriter, diagram: list[Stage], title: str, name: str) -> Figure:
    """The stages left to right, shape under each, operation over the arrow into it."""
    def draw() -> plt.Figure:
        fig, ax = plt.subplots(figsize=(WIDTH, 3.3 if len(diagram) > 9 else 2.9))
        gap, x = 1.25, 0.0
        for i, stage in enumerate(diagram):
            color = PALETTE[0] if len(stage.shape) == 3 else PALETTE[1]
            if stage.name == "input":
                color = "#bbbbbb"
            width = _draw_stage(ax, x, stage, color)
            ax.text(x + width / 2, -1.0, stage.shape_text.replace(" × ", "×"), ha="center", va="top", fontsize=7)
            if stage.parameters:
                ax.text(x + width / 2, -1.25, i18n._("%(n)s p") % {"n": numbers.thousands(stage.parameters)}, ha="center", va="top", fontsize=6.5,
                        color=MUTED)
            if i + 1 < len(diagram):
                nxt = diagram[i + 1]
                ax.add_patch(FancyArrowPatch((x + width + 0.05, 0), (x + width + gap - 0.05, 0), arrowstyle="-|>",
                                             mutation_scale=8, color=MUTED, linewidth=0.8))
                crowded = len(diagram) > 9  # labels alternate between two heights so neighbours do not touch
                ax.text(x + width + gap / 2, 0.95 + (0.75 if crowded and i % 2 else 0),
                        nxt.operation.replace(" → ", "\n").replace(", ", "\n"), ha="center", va="bottom",
                        fontsize=6 if crowded else 6.5, color=TEXT_DARK, linespacing=1.1)
            x += width + gap
        ax.set_xlim(-0.2, x - gap + 0.4)
        ax.set_ylim(-1.55, 2.9 if len(diagram) > 9 else 2.1)
        ax.set_axis_off()
        ax.set_title(title, fontsize=9.5)
        fig.tight_layout()
        return fig

    parts = "; ".join(i18n._("%(operation)s gives %(shape)s") % {"operation": s.operation or i18n._("input"),
                                                                  "shape": s.shape_text} for s in diagram)
    alt = i18n._("%(title)s. Left to right: %(parts)s") % {"title": title, "parts": parts}
    return figures.emit(name, alt, ([(s.operation, s.shape, s.parameters) for s in diagram], title), draw)


def compute(study: Study, figures: FigureWriter) -> ArchitectureDiagramResult:
    result = ArchitectureDiagramResult()
    for i, spec in enumerate(model_specs(study)):
        in_channels = spec["options"].get("in_channels", 1)
        model = build_spec(spec)
        diagram = stages(model, in_channels)
        parameters, macs = sum(s.parameters for s in diagram), sum(s.macs for s in diagram)
        title = i18n._("%(variants)s: %(parameters)s parameters, %(macs)s multiply-adds per image") % {
            "variants": ", ".join(spec["variants"]), "parameters": numbers.thousands(parameters),
            "macs": numbers.thousands(macs)}
        figure = draw_diagram(figures, diagram, title, name=f"architecture-{i + 1}")
        result.models.append(ModelDiagram(model=spec["model"], variants=spec["variants"], stages=diagram,
                                          parameters=parameters, macs=macs, figure=figure))
    return result


ANALYSIS = Analysis(
    name="architecture_diagram", title=N_("The network, drawn"), compute=compute, needs_training=False,
    summary=N_("Each model drawn from its own layer shapes: feature maps as stacks of sheets, vectors as bars, the "
               "operation on each arrow."),
)
