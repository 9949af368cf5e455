"""Multiply-adds next to parameters: from the layers' own shapes."""
from __future__ import annotations

import pytest

from reportgen.analyses._common import architecture_table
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
