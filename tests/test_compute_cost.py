"""Multiply-adds next to parameters, and what a model's pooling layers save: from the layers' own shapes."""
from __future__ import annotations

import pytest

from reportgen.analyses._common import architecture_table
from reportgen.analyses.architecture import without_pooling
from reportgen.models import build_model
from reportgen.zoo import describe_model


def test_lenet_multiply_adds_are_the_sum_over_its_layers_by_hand():
    # conv1: 6 maps of 28 × 28, each value 1 · 5 · 5 products; conv2: 16 × 10 × 10 values of 6 · 5 · 5; then the
    # three linear layers, one per weight
    by_hand = 6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 400 * 120 + 120 * 84 + 84 * 10
    table = architecture_table(build_model("lenet"))
    assert table.macs == by_hand == 416_520
    assert {r.name: r.macs for r in table.rows}["pool1"] == 0  # pooling compares, it does not multiply


@pytest.mark.parametrize("options, params, macs", [
    ({"name": "fcnn", "options": {"match_params_of": "lenet"}}, 62_020, 61_932),
    ({"name": "fcnn", "options": {"hidden": [512, 256]}}, 535_818, 535_040),
    ({"name": "lenet", "options": {"pooling": False, "strided": True}}, 61_706, 148_320)])
def test_a_fully_connected_network_does_one_multiply_add_per_weight_and_a_strided_one_fewer(options, params, macs):
    described = describe_model(options)
    assert (described.parameters, described.macs) == (params, macs)


def test_removing_pooling_costs_what_the_unpooled_lenet_has():
    unpooled = without_pooling(build_model("lenet"))
    same = architecture_table(build_model("lenet", pooling=False))
    assert (architecture_table(unpooled).trainable, architecture_table(unpooled).macs) == \
        (same.trainable, same.macs) == (1_119_626, 2_616_840)
    assert without_pooling(build_model("fcnn")) is None
    assert without_pooling(build_model("lenet", pooling=False, strided=True)) is None


def test_the_layer_table_says_what_taking_the_pooling_windows_out_leaves():
    """LeNet's fc1 widens to take the larger maps; with global average pooling it still gets one number per map, so
    the parameters stay and only the multiply-adds grow, and the post says so rather than "widened"."""
    from reportgen.analyses.architecture import ArchitectureResult, ModelArchitecture
    from reportgen.markdown import package_environment
    models = []
    for label, model in (("LeNet", build_model("lenet")), ("GAP", build_model("lenet", global_pool=True))):
        table, unpooled = architecture_table(model), architecture_table(without_pooling(model))
        models.append(ModelArchitecture(model="lenet", options={}, variants=[label], input="1 × 28 × 28",
                                        rows=table.rows, total=table.trainable, trainable=table.trainable,
                                        macs=table.macs, unpooled_parameters=unpooled.trainable,
                                        unpooled_macs=unpooled.macs))
    text = " ".join(package_environment().get_template("architecture.md.j2").render(
        a=ArchitectureResult(models=models)).split())
    lenet, gap = text.split('=== "GAP"')
    assert "the first linear layer widened" in lenet and "it would have 1,119,626 parameters" in lenet
    assert "widened" not in gap
    assert "it would keep its 15,626 parameters" in gap and "cost 1,512,840 multiply-adds" in gap
