"""Architecture, layer by layer: a hooked forward pass of one dummy image through every distinct model of the study
gives each layer's type, settings, output shape and parameter count (needs no training)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..figures import FigureWriter
from ..i18n import N_
from ..study import Study
from . import Analysis
from ._common import LayerRow, architecture_table, build_spec, model_specs


@dataclass
class ModelArchitecture:
    model: str
    options: dict[str, Any]
    variants: list[str]          # labels of the variants that use this model
    input: str                   # the dummy image's shape, "1 × 28 × 28"
    rows: list[LayerRow]
    total: int                   # parameters of the layers, added up
    trainable: int               # count_parameters of the whole model
    ratio: float = 1.0           # trainable parameters relative to the reference model's
    macs: int = 0                # multiply-adds of one forward pass of one image, every layer added up
    macs_ratio: float = 1.0      # multiply-adds relative to the reference model's


@dataclass
class ArchitectureResult:
    models: list[ModelArchitecture]
    reference: int = 0           # index into models: the baseline variant's model (else the first)
    layer_types: list[str] = field(default_factory=list)  # every layer class in the study's models, sorted


def _reference(study: Study, specs: list[dict[str, Any]]) -> int:
    """The model that sizes are compared with: the one the baseline variant uses, else the first."""
    config = study.config
    baseline = next((v.label or v.name for v in config.variants if v.name == config.baseline), None)
    return next((i for i, spec in enumerate(specs) if baseline in spec["variants"]), 0)


def compute(study: Study, figures: FigureWriter) -> ArchitectureResult:
    models = []
    specs = model_specs(study)
    for spec in specs:
        model = build_spec(spec)
        table = architecture_table(model, spec["options"].get("in_channels", 1))
        models.append(ModelArchitecture(model=spec["model"], options=spec["options"], variants=spec["variants"],
                                        input=table.input, rows=table.rows, total=table.total,
                                        trainable=table.trainable, macs=table.macs))
    reference = _reference(study, specs)
    for m in models:
        m.ratio = m.trainable / models[reference].trainable if models[reference].trainable else float("nan")
        m.macs_ratio = m.macs / models[reference].macs if models[reference].macs else float("nan")
    types = sorted({r.type for m in models for r in m.rows})
    return ArchitectureResult(models=models, reference=reference, layer_types=types)


ANALYSIS = Analysis(
    name="architecture", title=N_("Architecture, layer by layer"), compute=compute, needs_training=False,
    summary=N_("Every layer of each model with its settings, the output shape a forward pass really produces, and "
               "its parameter count."),
)
