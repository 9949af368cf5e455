"""Output size of every layer: floor((n + 2p − k) / s) + 1 worked for every convolution and pooling layer from the
module's own attributes, next to the size a real forward pass produces (needs no training)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup
from torch import nn

from ..figures import FigureWriter
from ..i18n import N_
from ..settings import IMAGE_SIZE
from ..study import Study
from . import Analysis
from ._common import architecture_table, build_spec, model_specs, output_size_rows


@dataclass
class SizeRow:
    name: str
    type: str
    n: int                       # input size (pixels per side)
    k: int                       # kernel size
    p: int                       # padding
    s: int                       # stride
    dilation: int
    out: int                     # the formula's output size
    actual: int                  # the forward pass's output size
    matches: bool
    channels: int
    math: Markup                 # the formula with the numbers put in, as inline LaTeX


@dataclass
class AdaptiveRow:
    """An adaptive pooling layer: it has no window to slide; it is told its output size and fits its windows."""
    name: str
    type: str
    n: int                       # input size (pixels per side)
    out: int                     # output size (from the forward pass)
    channels: int


@dataclass
class ModelOutputSizes:
    model: str
    options: dict[str, Any]
    variants: list[str]          # labels of the variants that use this model
    input: int                   # the input image's size (pixels per side)
    rows: list[SizeRow]          # empty for a model without convolution or pooling
    all_match: bool
    adaptive: list[AdaptiveRow]  # global (adaptive) pooling layers, which the formula does not describe


@dataclass
class OutputSizeResult:
    models: list[ModelOutputSizes]


def compute(study: Study, figures: FigureWriter) -> OutputSizeResult:
    models = []
    for spec in model_specs(study):
        model = build_spec(spec)
        in_channels = spec["options"].get("in_channels", 1)
        rows = [SizeRow(**row) for row in output_size_rows(model, in_channels)]
        models.append(ModelOutputSizes(model=spec["model"], options=spec["options"], variants=spec["variants"],
                                       input=IMAGE_SIZE, rows=rows, all_match=all(r.matches for r in rows),
                                       adaptive=_adaptive_rows(model, in_channels)))
    return OutputSizeResult(models=models)


def _adaptive_rows(model: nn.Module, in_channels: int) -> list[AdaptiveRow]:
    """Every adaptive pooling layer with the size it receives and the size it gives (a forward pass's shapes)."""
    table = architecture_table(model, in_channels).rows
    shapes = [[in_channels, IMAGE_SIZE, IMAGE_SIZE]] + [row.output_shape for row in table]
    return [AdaptiveRow(name=row.name, type=row.type, n=int(shapes[i][-1]), out=int(row.output_shape[-1]),
                        channels=int(row.output_shape[0]))
            for i, row in enumerate(table) if row.type in ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d")]


ANALYSIS = Analysis(
    name="output_size", title=N_("Output size of every layer"), compute=compute, needs_training=False,
    needs_convolution=True,
    summary=N_("The output-size formula worked for every convolution and pooling layer, checked against a real "
               "forward pass."),
)
