"""The model zoo: output shapes, parameter counts, named layers, featurizer/classifier split; LeNet's options and
their config validation; the resolved configs of the shipped studies (cache keys); zoo.describe_model."""
import inspect
import json
import typing

import pytest
import torch

from reportgen import zoo
from reportgen.config import Activation, ConfigError, load_study
from reportgen.models import ACTIVATIONS, BUILDERS, build_model, count_parameters, named_layers
from reportgen.run_schema import MODEL_NAMES, MODEL_OPTIONS
from tests.conftest import ROOT

ZOO = [
    ("lenet", {}, 61_706),
    ("lenet", {"dropout": 0.5}, 61_706),
    ("lenet", {"pooling": False}, 1_119_626),
    ("lenet", {"activation": "tanh"}, 61_706),
    ("tiny", {}, 1 * 25 + 1 + 144 * 10 + 10 + 10 * 10 + 10),
    ("deep_pool", {}, 50_554),
    ("fcnn", {"hidden": [100]}, 784 * 100 + 100 + 100 * 10 + 10),
]


@pytest.mark.parametrize("name,options,params", ZOO)
def test_output_shape_and_parameter_count(name, options, params):
    model = build_model(name, **options)
    assert model(torch.zeros(4, 1, 28, 28)).shape == (4, 10)
    assert count_parameters(model) == params


def test_lenet_without_pooling_adapts_flatten_size():
    model = build_model("lenet", pooling=False)
    assert model.classifier.fc1.in_features == 16 * 24 * 24
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())


def test_fcnn_sized_to_match_lenet_is_within_one_percent():
    target = count_parameters(build_model("lenet"))
    assert abs(count_parameters(build_model("fcnn", match_params_of="lenet")) - target) / target < 0.01


@pytest.mark.parametrize("name", sorted(MODEL_NAMES))
def test_every_layer_has_a_unique_readable_name(name):
    model = build_model(name)
    names = [n for n, _ in named_layers(model)]
    assert len(names) == len(set(names))
    assert all(n.isidentifier() for n in names)
    assert hasattr(model, "featurizer") and hasattr(model, "classifier")


def test_lenet_layer_names_follow_the_tutorial():
    model = build_model("lenet", dropout=0.3)
    assert [n for n, _ in model.featurizer.named_children()] == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2"]
    assert [n for n, _ in model.classifier.named_children()] == [
        "flatten", "fc1", "relu3", "dropout1", "fc2", "relu4", "dropout2", "fc3"]


def test_unknown_model_name_is_refused():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet")


# ---- LeNet options: batch_norm, channels, kernel_size, activation ------------------------------------------------
def conv_params(c_in, c_out, k, bias=True):
    """A k x k convolution: one k*k*c_in kernel (+ a bias) per output channel."""
    return c_out * (c_in * k * k + (1 if bias else 0))


def linear_params(n_in, n_out):
    return n_out * (n_in + 1)


def lenet_params(c1=6, c2=16, k=5, side=5, batch_norm=False):
    """conv1 + conv2 (no bias with batch norm) + 2 per channel for batch norm (its scale and shift) + fc1 (c2 maps
    of side x side) + fc2 + fc3. ``side`` is worked out by hand per case: conv1 keeps 28 (padding k // 2), a pool
    halves, the unpadded conv2 takes k - 1 pixels off."""
    bias = not batch_norm
    return (conv_params(1, c1, k, bias) + conv_params(c1, c2, k, bias) + (2 * (c1 + c2) if batch_norm else 0)
            + linear_params(c2 * side * side, 120) + linear_params(120, 84) + linear_params(84, 10))


LENET_OPTIONS = [
    ({}, lenet_params()),                                                    # 28 -> 14 -> 10 -> 5
    ({"batch_norm": True}, lenet_params(batch_norm=True)),
    ({"channels": [8, 32]}, lenet_params(c1=8, c2=32)),
    ({"kernel_size": 3}, lenet_params(k=3, side=6)),                         # 28 -> 14 -> 12 -> 6
    ({"kernel_size": 7}, lenet_params(k=7, side=4)),                         # 28 -> 14 -> 8 -> 4
    ({"kernel_size": 3, "pooling": False}, lenet_params(k=3, side=26)),      # 28 -> 28 -> 26
    ({"pooling": False, "strided": True}, lenet_params()),                   # 28 -> 14 -> 5: LeNet's parameters
    ({"pooling": False, "strided": True, "kernel_size": 3}, lenet_params(k=3, side=6)),  # 28 -> 14 -> 6
    ({"global_pool": True}, lenet_params(side=1)),                           # each 5x5 map averaged to 1 number
    ({"kernel_size": 7, "channels": [4, 12], "batch_norm": True, "dropout": 0.3, "activation": "gelu"},
     lenet_params(c1=4, c2=12, k=7, side=4, batch_norm=True)),
] + [({"activation": a}, lenet_params()) for a in ("relu", "tanh", "sigmoid", "gelu")]


@pytest.mark.parametrize("options,params", LENET_OPTIONS, ids=[json.dumps(o) for o, _ in LENET_OPTIONS])
def test_lenet_option_builds_runs_and_has_the_formula_parameter_count(options, params):
    model = build_model("lenet", **options)
    model.train()  # batch norm in training mode needs more than one value per channel: a batch of 4 images
    assert model(torch.randn(4, 1, 28, 28)).shape == (4, 10)
    assert count_parameters(model) == params


def test_default_lenet_is_todays_lenet_so_trained_weights_still_load():
    assert lenet_params() == 61_706
    torch.manual_seed(0)
    model = build_model("lenet")
    assert count_parameters(model) == 61_706
    assert list(model.state_dict()) == [
        "featurizer.conv1.weight", "featurizer.conv1.bias", "featurizer.conv2.weight", "featurizer.conv2.bias",
        "classifier.fc1.weight", "classifier.fc1.bias", "classifier.fc2.weight", "classifier.fc2.bias",
        "classifier.fc3.weight", "classifier.fc3.bias"]
    assert [n for n, _ in named_layers(model)] == [
        "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1", "relu3", "fc2", "relu4", "fc3"]
    # The same initial weights for a seed as before the options existed (sums taken at that commit, torch 2.x),
    # so a rerun of a cached run trains the same network.
    sums = [float(t.double().sum()) for t in model.state_dict().values()]
    assert sums == pytest.approx([-1.023465, -0.371616, -0.665209, -0.204393, 3.108663, 0.523335, -0.247347,
                                  -0.363525, 2.080306, 0.12142], abs=1e-5)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu"])
def test_each_activation_is_used_after_every_hidden_layer(activation):
    for name, count in (("lenet", 4), ("deep_pool", 6), ("fcnn", 1)):
        model = build_model(name, activation=activation)
        used = [m for m in model.modules() if isinstance(m, tuple(ACTIVATIONS.values()))]
        assert len(used) == count and all(type(m) is ACTIVATIONS[activation] for m in used), name
        assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_config_and_zoo_offer_the_same_activations():
    assert set(typing.get_args(Activation)) == set(ACTIVATIONS) == {"relu", "tanh", "sigmoid", "gelu"}


def test_batch_norm_sits_between_each_convolution_and_its_activation():
    model = build_model("lenet", batch_norm=True)
    assert [n for n, _ in model.featurizer.named_children()] == [
        "conv1", "bn1", "relu1", "pool1", "conv2", "bn2", "relu2", "pool2"]
    assert [m.num_features for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)] == [6, 16]
    assert model.featurizer.conv1.bias is None and model.featurizer.conv2.bias is None
    # Building the model runs no image through it: the running statistics are untouched.
    assert all(int(m.num_batches_tracked) == 0 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in build_model("lenet").modules())


def test_channels_and_kernel_size_set_the_convolutions_and_fc1():
    model = build_model("lenet", channels=[8, 32], kernel_size=3)
    conv1, conv2 = model.featurizer.conv1, model.featurizer.conv2
    assert (conv1.out_channels, conv2.in_channels, conv2.out_channels) == (8, 8, 32)
    assert conv1.kernel_size == conv2.kernel_size == (3, 3) and conv1.padding == (1, 1)
    assert model.classifier.fc1.in_features == 32 * 6 * 6


# ---- options at their default never reach the resolved config (it is hashed into each run's cache key) -------
# (The shipped studies' recipes changed on purpose since: byte-for-byte pins of their resolved configs, taken at
# commit 204fee1, proved the options left every cached run valid until then.)
LENET_AT_204FEE1 = {"in_channels": 1, "num_classes": 10, "dropout": 0.0, "pooling": True, "activation": "relu"}


def all_resolved(exp):
    return [exp.resolve(v, seed, profile) for profile in ("smoke", "quick", "full")
            for v in exp.variants for seed in exp.profile(profile).seeds]


@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "experiments").glob("*.yaml") if "." not in p.stem),
                         ids=lambda p: p.name)
def test_shipped_studies_never_resolve_an_option_at_its_default(path):
    from reportgen.run_schema import MODEL_OPTIONS, OMITTED_AT_DEFAULT
    for config in all_resolved(load_study(path)):
        name, options = config["model"]["name"], config["model"]["options"]
        for key in OMITTED_AT_DEFAULT.get(name, ()):
            default = MODEL_OPTIONS[name].model_fields[key].get_default(call_default_factory=True)
            assert options.get(key, object()) != default, (path.name, key)


def test_default_lenet_options_resolve_exactly_as_before():
    exp = load_study(ROOT / "experiments" / "dropout.yaml")
    assert exp.resolve(exp.variant("no-dropout"), 0, "full")["model"] == {"name": "lenet", "options": LENET_AT_204FEE1}
    assert exp.resolve(exp.variant("dropout"), 0, "full")["model"]["options"] == {**LENET_AT_204FEE1, "dropout": 0.25}


STUDY = """\
id: s
title: S
model: {{name: lenet}}
variants:
  - {{name: a}}
  - {{name: b, model: {{options: {options}}}}}
"""


def resolved_options(tmp_path, options: str) -> dict:
    path = tmp_path / "s.yaml"
    path.write_text(STUDY.format(options=options))
    exp = load_study(path)
    return exp.resolve(exp.variant("b"), 0, "smoke")["model"]["options"]


def test_new_options_written_at_their_default_keep_the_cache_key(tmp_path):
    assert resolved_options(tmp_path, "{batch_norm: false, channels: [6, 16], kernel_size: 5}") == LENET_AT_204FEE1


def test_new_options_away_from_their_default_are_in_the_resolved_config(tmp_path):
    assert resolved_options(tmp_path, "{batch_norm: true, channels: [8, 32], kernel_size: 3}") == {
        **LENET_AT_204FEE1, "batch_norm": True, "channels": [8, 32], "kernel_size": 3}


@pytest.mark.parametrize("options,fragments", [
    ("{batchnorm: true}", ["unknown field 'variants[1].model.options.batchnorm'", "did you mean 'batch_norm'?"]),
    ("{kernal_size: 3}", ["unknown field 'variants[1].model.options.kernal_size'", "did you mean 'kernel_size'?"]),
    ("{chanels: [8, 32]}", ["unknown field 'variants[1].model.options.chanels'", "did you mean 'channels'?"]),
    ("{activation: gelo}", ["variants[1].model.options.activation: 'gelo' is not allowed",
                            "choose from relu, tanh, sigmoid, gelu", "did you mean 'gelu'?"]),
    ("{kernel_size: 4}", ["variants[1].model.options.kernel_size: must be 3, 5 or 7", "(got 4)"]),
    ("{channels: [6]}", ["variants[1].model.options.channels: must be two positive convolution widths"]),
    ("{channels: [6, 0]}", ["variants[1].model.options.channels: must be two positive convolution widths"]),
    ("{batch_norm: 1}", ["variants[1].model.options.batch_norm: must be a valid boolean"]),
    ("{strided: true}", ["variants[1].model.options", "strided replaces max-pooling: set pooling: false"]),
])
def test_a_bad_lenet_option_is_one_line_naming_the_closest_valid_name(tmp_path, options, fragments):
    with pytest.raises(ConfigError) as err:
        resolved_options(tmp_path, options)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "s.yaml") + ": ")
    for fragment in fragments:
        assert fragment in message


def test_the_batchnorm_study_compares_lenet_with_and_without_batch_norm_on_one_recipe():
    exp = load_study(ROOT / "experiments" / "batchnorm.yaml")
    plain, bn = (exp.resolve(exp.variant(name), 0, "full") for name in ("lenet", "batch-norm"))
    assert plain["model"] == {"name": "lenet", "options": LENET_AT_204FEE1}
    assert bn["model"] == {"name": "lenet", "options": {**LENET_AT_204FEE1, "batch_norm": True}}
    assert plain["training"] == bn["training"] and plain["dataset"] == bn["dataset"] == "fashion-mnist"
    assert exp.analyses == ["curves", "architecture"]


# ---- zoo.describe_model: told from the built module, never from the model's name --------------------------------
def test_describe_model_summarises_lenet_layer_by_layer():
    described = zoo.describe_model({"name": "lenet", "options": LENET_AT_204FEE1})
    assert described.name == "lenet" and described.parameters == 61_706
    assert described.text == ("conv 5×5, 6 ch, pad 2 → ReLU → max-pool 2×2 → conv 5×5, 16 ch → ReLU → max-pool 2×2 → "
                                 "linear 120 → ReLU → linear 84 → ReLU → linear 10")


def test_describe_model_shows_batch_norm_dropout_and_the_options():
    text = zoo.describe_model({"name": "lenet", "options": {"batch_norm": True, "dropout": 0.5, "kernel_size": 3,
                                                            "channels": [8, 32], "activation": "tanh"}}).text
    assert text == ("conv 3×3, 8 ch, pad 1 → batch norm → tanh → max-pool 2×2 → conv 3×3, 32 ch → batch norm → tanh → "
                    "max-pool 2×2 → linear 120 → tanh → dropout 0.5 → linear 84 → tanh → dropout 0.5 → linear 10")


def test_describe_model_names_global_pooling_and_its_settings():
    described = zoo.describe_model({"name": "lenet", "options": {"global_pool": True}})
    assert "max-pool 2×2 → global average-pool → linear 120" in described.text
    gap = next(r for r in described.layers if r.name == "gap")
    assert (gap.details, gap.output) == ("each map → 1×1 (average)", "16 × 1 × 1")
    strided = zoo.describe_model({"name": "lenet", "options": {"pooling": False, "strided": True}}).text
    assert strided.startswith("conv 5×5, 6 ch, pad 2, stride 2 → ReLU → conv 5×5, 16 ch, stride 2 → ReLU → linear 120")


def test_describe_model_folds_repeated_blocks():
    text = zoo.describe_model({"name": "deep_pool", "options": {}}).text
    assert text == ("(conv 3×3, 16 ch, pad 1 → tanh) ×2 → max-pool 2×2 → (conv 3×3, 32 ch, pad 1 → tanh) ×2 → "
                    "max-pool 2×2 → (conv 3×3, 32 ch, pad 1 → tanh) ×2 → linear 10")


@pytest.mark.parametrize("name,options", [(n, o) for n, o, _ in ZOO] + [("lenet", {"batch_norm": True})])
def test_describe_model_has_a_row_per_layer_adding_up_to_the_parameter_count(name, options):
    described = zoo.describe_model({"name": name, "options": options})
    model = build_model(name, **options)
    assert [r.name for r in described.layers] == [n for n, _ in named_layers(model)]
    assert sum(r.parameters for r in described.layers) == described.parameters == count_parameters(model)
    assert described.layers[-1].output_shape == [10]
    assert all(r.type == type(m).__name__ for r, (_, m) in zip(described.layers, named_layers(model)))


def test_zoo_never_branches_on_a_model_name():
    source = inspect.getsource(zoo)
    assert not [name for name in MODEL_NAMES if f'"{name}"' in source or f"'{name}'" in source]


def test_strided_lenet_halves_its_maps_like_pooling_with_the_same_parameters():
    pooled, strided = build_model("lenet"), build_model("lenet", pooling=False, strided=True)
    x = torch.randn(2, 1, 28, 28)
    assert strided.featurizer(x).shape == pooled.featurizer(x).shape == (2, 16, 5, 5)
    assert count_parameters(strided) == count_parameters(pooled)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in strided.modules())


def test_global_pool_makes_the_classifier_blind_to_where_a_feature_was():
    torch.manual_seed(0)
    model = build_model("lenet", global_pool=True).eval()
    assert model.featurizer(torch.randn(2, 1, 28, 28)).shape == (2, 16, 1, 1)
    # A map that only moves (within the image, away from the border) averages to the same numbers: fc1 sees no change.
    image = torch.zeros(1, 1, 28, 28)
    image[0, 0, 10:14, 10:14] = 1.0  # away from the border: every response stays inside the valid conv2 maps
    moved = torch.roll(image, shifts=(4, 4), dims=(2, 3))
    gap = model.featurizer.gap
    model.featurizer.gap = torch.nn.Identity()
    maps, maps_moved = model.featurizer(image), model.featurizer(moved)
    model.featurizer.gap = gap
    assert not torch.allclose(maps, maps_moved)  # the maps themselves moved ...
    assert torch.allclose(maps.mean(dim=(2, 3)), maps_moved.mean(dim=(2, 3)), atol=1e-5)  # ... their means did not


def test_fcnn_without_hidden_layers_is_a_linear_classifier():
    model = build_model("fcnn", hidden=[])
    assert [name for name, _ in named_layers(model) if name != "identity"] == ["flatten", "fc1"]
    assert count_parameters(model) == 28 * 28 * 10 + 10


def test_every_model_of_the_registry_has_one_builder_and_the_schema_lists_exactly_them():
    """One list of models: run_schema.MODEL_OPTIONS; the schema's names and the builders follow it."""
    from reportgen.run_schema import ModelConfig
    assert set(BUILDERS) == set(MODEL_OPTIONS.values())
    assert typing.get_args(ModelConfig.model_fields["name"].annotation) == MODEL_NAMES == tuple(MODEL_OPTIONS)


def test_build_model_checks_options_with_the_schema_not_a_copy_of_it():
    with pytest.raises(ValueError, match="strided replaces max-pooling"):
        build_model("lenet", strided=True)
    with pytest.raises(ValueError, match="kernel_size"):
        build_model("lenet", kernel_size=4)
    with pytest.raises(ValueError, match="did you mean 'lenet'"):
        build_model("lenett")
    assert "dropout: float = " not in inspect.getsource(__import__("reportgen.models").models)
