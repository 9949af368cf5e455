"""What a zoo model is, told from the built module itself: a one-line layer summary, the parameter count and one
row per layer. Nothing here knows a model by its name, so a new model or option is described without new prose.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from .analyses._common import LayerRow, architecture_table
from .models import build, count_parameters, named_layers
from .run_schema import ModelConfig

# How an activation module is written in the summary (its name, as a reader would say it).
ACTIVATION_NAMES: dict[type[nn.Module], str] = {nn.ReLU: "ReLU", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid",
                                                nn.GELU: "GELU"}


def _pair(v: Any) -> int:
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


def layer_word(module: nn.Module) -> str | None:
    """One layer in a few words (``conv 5×5, 6 ch, pad 2``, ``max-pool 2×2``, ``dropout 0.5``); None for the layers that
    only reshape (flatten, identity)."""
    if isinstance(module, nn.Conv2d):
        k, stride = _pair(module.kernel_size), _pair(module.stride)
        pad = module.padding if isinstance(module.padding, str) else _pair(module.padding)  # "same", or pixels
        return (f"conv {k}×{k}, {module.out_channels} ch" + (f", pad {pad}" if pad not in (0, "valid") else "")
                + (f", stride {stride}" if stride != 1 else ""))
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        k = _pair(module.kernel_size)
        return f"{'max' if isinstance(module, nn.MaxPool2d) else 'average'}-pool {k}×{k}"
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        size = _pair(module.output_size)
        kind = "average" if isinstance(module, nn.AdaptiveAvgPool2d) else "max"
        return f"global {kind}-pool" if size == 1 else f"adaptive {kind}-pool to {size}×{size}"
    if isinstance(module, nn.BatchNorm2d):
        return "batch norm"
    if isinstance(module, nn.Linear):
        return f"linear {module.out_features}"
    if isinstance(module, nn.Dropout):
        return f"dropout {module.p:g}"
    if isinstance(module, (nn.Flatten, nn.Identity)):
        return None
    return ACTIVATION_NAMES.get(type(module), type(module).__name__)


def _group_repeats(words: list[str], longest: int = 4) -> list[str]:
    """Consecutive repeats folded: [conv, tanh, conv, tanh, pool] -> ["(conv → tanh) ×2", pool]."""
    out: list[str] = []
    i = 0
    while i < len(words):
        best_length, best_count = 1, 1
        for length in range(1, longest + 1):
            block = words[i:i + length]
            count = 1
            while words[i + count * length:i + (count + 1) * length] == block:
                count += 1
            if count > 1 and count * length > best_count * best_length:
                best_length, best_count = length, count
        block = words[i:i + best_length]
        if best_count == 1:
            out.append(block[0])
        else:
            out.append(f"({' → '.join(block)}) ×{best_count}" if best_length > 1 else f"{block[0]} ×{best_count}")
        i += best_length * best_count
    return out


def layer_summary(model: nn.Module) -> str:
    """Every layer that computes something, in forward order: 'conv 5×5, 6 ch → ReLU → max-pool 2×2 → ...'."""
    words = [w for w in (layer_word(m) for _, m in named_layers(model)) if w is not None]
    return " → ".join(_group_repeats(words))


@dataclass(frozen=True)
class ModelDescription:
    """A model as a post describes it (:func:`describe_model`)."""
    name: str
    text: str                      # the one-line layer summary
    parameters: int                # trainable
    macs: int                      # multiply-adds of one forward pass
    layers: list[LayerRow]         # one row per leaf layer, as architecture_table gives


def describe_model(model_config: dict[str, Any]) -> ModelDescription:
    """A resolved model config (``{"name", "options"}``) described from the module it builds: the name, a
    one-line layer summary, the trainable parameter count, the multiply-adds of one forward pass and one row per leaf layer (name, part, type, details,
    output shape for one input image, parameters) as :func:`reportgen.analyses._common.architecture_table` gives."""
    options = ModelConfig.model_validate(model_config).typed_options()
    net = build(options)
    table = architecture_table(net, options.in_channels)
    return ModelDescription(name=model_config["name"], text=layer_summary(net), parameters=count_parameters(net),
                            macs=table.macs, layers=table.rows)
