"""The model zoo: output shapes, parameter counts, named layers, featurizer/classifier split."""
import pytest
import torch

from reportgen.models import MODELS, build_model, count_parameters, named_layers

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


@pytest.mark.parametrize("name", sorted(MODELS))
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
