"""The model zoo: every network a study can name, built from its typed options.

Each model is a ``Net`` with two named ``nn.Sequential`` halves, ``featurizer`` and ``classifier``, and every
layer inside has a readable name (``conv1``, ``relu1``, ``pool1``, ``flatten``, ``fc1`` ...), so forward hooks,
architecture tables and posts can address layers by name. This module knows nothing about data or training.

The list of models is :data:`reportgen.run_schema.MODEL_OPTIONS` (each name with the pydantic schema of its options,
defaults and checks included); each builder here registers for its options class with :func:`builds` and reads the
validated options object, so a default or a check is written once, in the schema.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, TypeVar

import torch
from torch import nn

from .run_schema import (MODEL_OPTIONS, DeepPoolOptions, FcnnOptions, ImageOptions, LeNetOptions, ModelConfig,
                         TinyOptions)
from .settings import IMAGE_SIZE
from .suggest import suggest

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


# --8<-- [start:net]
class Net(nn.Module):
    """featurizer (convolutions) -> classifier (flatten + linear layers)."""

    def __init__(self, featurizer: nn.Sequential, classifier: nn.Sequential):
        super().__init__()
        self.featurizer = featurizer
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.featurizer(x))
# --8<-- [end:net]


Options = TypeVar("Options", bound=ImageOptions)
# One builder per options class of the zoo (see :func:`builds`).
BUILDERS: dict[type[ImageOptions], Callable[[Any], Net]] = {}


def builds(options: type[Options]) -> Callable[[Callable[[Options], Net]], Callable[[Options], Net]]:
    """Decorator: the function builds the zoo model whose options schema is ``options``."""
    def register(builder: Callable[[Options], Net]) -> Callable[[Options], Net]:
        BUILDERS[options] = builder
        return builder
    return register


def _activation(name: str) -> nn.Module:
    return ACTIVATIONS[name]()  # the schema allows only these names (run_schema.Activation)


def _feature_size(featurizer: nn.Module, in_channels: int) -> int:
    # Run a dummy image through the convolutions: the first linear layer takes whatever size comes out.
    with torch.no_grad():
        return int(featurizer(torch.zeros(1, in_channels, IMAGE_SIZE, IMAGE_SIZE)).numel())


# --8<-- [start:lenet]
@builds(LeNetOptions)
def lenet(o: LeNetOptions) -> Net:
    """LeNet-5 style: two k x k convolutions (6 and 16 filters by default), each followed by the activation and
    (optionally) 2x2 max-pooling, then three linear layers (120 -> 84 -> classes). ``batch_norm`` adds batch
    normalisation between each convolution and its activation; ``dropout`` > 0 adds dropout before fc2 and fc3.
    ``strided`` (without pooling) lets each convolution step 2 pixels instead, halving the maps as a pool would
    with the same parameters; ``global_pool`` averages each final map to one number, so fc1 sees what was
    detected but not where."""
    in_channels, batch_norm, activation, pooling, kernel_size = (o.in_channels, o.batch_norm, o.activation,
                                                                  o.pooling, o.kernel_size)
    c1, c2 = o.channels
    padding = kernel_size // 2  # conv1 keeps the 28x28 size (odd kernel); conv2 is unpadded
    stride = 2 if o.strided else 1
    # With batch norm a convolution's bias would be subtracted again with the batch mean: BN's own shift replaces it.
    conv1 = nn.Conv2d(in_channels, c1, kernel_size, stride=stride, padding=padding, bias=not batch_norm)
    conv2 = nn.Conv2d(c1, c2, kernel_size, stride=stride, bias=not batch_norm)

    layers: list[tuple[str, nn.Module]] = [("conv1", conv1)]
    if batch_norm:
        layers.append(("bn1", nn.BatchNorm2d(c1)))
    layers.append(("relu1", _activation(activation)))
    if pooling:
        layers.append(("pool1", nn.MaxPool2d(2)))
    layers.append(("conv2", conv2))
    if batch_norm:
        layers.append(("bn2", nn.BatchNorm2d(c2)))
    layers.append(("relu2", _activation(activation)))
    if pooling:
        layers.append(("pool2", nn.MaxPool2d(2)))
    if o.global_pool:
        layers.append(("gap", nn.AdaptiveAvgPool2d(1)))
    featurizer = nn.Sequential(OrderedDict(layers))

    # fc1 takes every feature-map pixel: a k x k kernel with stride s fits (n + 2p - k) // s + 1 times across
    # n pixels; a pool halves n; global average pooling leaves one pixel per map.
    side = (IMAGE_SIZE + 2 * padding - kernel_size) // stride + 1
    if pooling:
        side //= 2
    side = (side - kernel_size) // stride + 1
    if pooling:
        side //= 2
    if o.global_pool:
        side = 1
    head: list[tuple[str, nn.Module]] = [
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(c2 * side * side, 120)), ("relu3", _activation(activation)),
    ]
    if o.dropout > 0:
        head.append(("dropout1", nn.Dropout(o.dropout)))
    head += [("fc2", nn.Linear(120, 84)), ("relu4", _activation(activation))]
    if o.dropout > 0:
        head.append(("dropout2", nn.Dropout(o.dropout)))
    head.append(("fc3", nn.Linear(84, o.num_classes)))
    return Net(featurizer, nn.Sequential(OrderedDict(head)))
# --8<-- [end:lenet]


# --8<-- [start:tiny]
@builds(TinyOptions)
def tiny(o: TinyOptions) -> Net:
    """The one-block network: one 5x5 filter -> ReLU -> 2x2 max-pool -> 144 features -> 10 -> ReLU -> 10."""
    featurizer = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(o.in_channels, 1, kernel_size=5)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
    ]))
    classifier = nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(144, 10)), ("relu2", nn.ReLU()),
        ("fc2", nn.Linear(10, o.num_classes)),
    ]))
    return Net(featurizer, classifier)
# --8<-- [end:tiny]


# --8<-- [start:deep_pool]
@builds(DeepPoolOptions)
def deep_pool(o: DeepPoolOptions) -> Net:
    """Six 3x3 convolutions (16, 16 | 32, 32 | 32, 32 filters) with tanh and two 2x2 max-pools, one linear layer."""
    widths = [16, 16, 32, 32, 32, 32]
    layers: list[tuple[str, nn.Module]] = []
    channels = o.in_channels
    for i, width in enumerate(widths, start=1):
        layers += [(f"conv{i}", nn.Conv2d(channels, width, kernel_size=3, padding=1)),
                   (f"{o.activation}{i}", _activation(o.activation))]
        if i in (2, 4):  # pool after each pair of 16- and 32-filter blocks: 28 -> 14 -> 7
            layers.append((f"pool{i // 2}", nn.MaxPool2d(2)))
        channels = width
    featurizer = nn.Sequential(OrderedDict(layers))
    flat = _feature_size(featurizer, o.in_channels)
    classifier = nn.Sequential(OrderedDict([("flatten", nn.Flatten()), ("fc1", nn.Linear(flat, o.num_classes))]))
    return Net(featurizer, classifier)
# --8<-- [end:deep_pool]


# --8<-- [start:fcnn]
@builds(FcnnOptions)
def fcnn(o: FcnnOptions) -> Net:
    """Fully connected: flatten -> hidden layer(s) -> classes (one hidden layer of 100 without ``hidden``).

    ``match_params_of`` names a CNN of the zoo (e.g. ``lenet``); the single hidden layer is then sized so the
    parameter count is as close as possible to that model's, for a fair "same size" comparison."""
    inputs, num_classes, hidden = o.in_channels * IMAGE_SIZE * IMAGE_SIZE, o.num_classes, o.hidden
    if o.match_params_of is not None:
        target = count_parameters(build_model(o.match_params_of, in_channels=o.in_channels, num_classes=num_classes))
        # params(h) = inputs*h + h + h*classes + classes; solve for the nearest integer h.
        hidden = [max(1, round((target - num_classes) / (inputs + 1 + num_classes)))]
    if hidden is None:
        hidden = [100]
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    width = inputs
    for i, h in enumerate(hidden, start=1):
        layers += [(f"fc{i}", nn.Linear(width, h)), (f"relu{i}", _activation(o.activation))]
        width = h
    layers.append((f"fc{len(hidden) + 1}", nn.Linear(width, num_classes)))
    # No convolutions: the featurizer is the identity, kept so every model has the same two halves.
    return Net(nn.Sequential(OrderedDict([("identity", nn.Identity())])), nn.Sequential(OrderedDict(layers)))
# --8<-- [end:fcnn]


def build(options: ImageOptions) -> Net:
    """The zoo model that ``options`` (a validated options object of :data:`MODEL_OPTIONS`) describes."""
    return BUILDERS[type(options)](options)


def build_model(name: str, **options: Any) -> Net:
    """Build a zoo model by name with keyword options (as written in a study's YAML), validated by its schema:
    a ValueError names an unknown model (with the closest) or a bad option."""
    if name not in MODEL_OPTIONS:
        raise ValueError(f"unknown model {name!r}{suggest(name, MODEL_OPTIONS)}; choose from {', '.join(MODEL_OPTIONS)}")
    return build(MODEL_OPTIONS[name].model_validate(options))


def build_config(model: ModelConfig | dict[str, Any]) -> Net:
    """The model of a (resolved) model config, ``{"name", "options"}``."""
    config = model if isinstance(model, ModelConfig) else ModelConfig.model_validate(model)
    return build(config.typed_options())


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def named_layers(model: Net) -> list[tuple[str, nn.Module]]:
    """Every leaf layer in forward order, named ``featurizer.conv1`` style names shortened to ``conv1``."""
    return list(model.featurizer.named_children()) + list(model.classifier.named_children())
