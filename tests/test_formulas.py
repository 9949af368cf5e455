"""Every formula the posts state, evaluated as written, equals what PyTorch builds for every shipped model.

The formulas are read from the texts themselves (the analysis partials and the studies' prose), translated from
their LaTeX into Python by :func:`python_of` and evaluated with each layer's own numbers: the output size against a
forward pass, the parameter counts against the layers' tensors and ``count_parameters``, the receptive field against
a gradient measurement (tests/test_receptive_field.py). Editing a formula in a text so that it is wrong, or shipping
a model that a text's formula does not describe (a dilated convolution, say), fails here.
"""
from __future__ import annotations

import json
import math
import re
from itertools import pairwise
from pathlib import Path

import pytest
import torch
from torch import nn

from reportgen.analyses import _common
from reportgen.analyses._common import architecture_table, capture_activations, layer_table
from reportgen.analyses.receptive_field import receptive_field_rows
from reportgen.config import load_study
from reportgen.models import build_model, count_parameters
from tests.test_receptive_field import measured_field, one_thread  # noqa: F401 - the fixture applies here too

ROOT = Path(__file__).resolve().parent.parent
ANALYSES = ROOT / "reportgen" / "analyses"
EXPERIMENTS = ROOT / "experiments"
MATH = re.compile(r"\$\$(.+?)\$\$|\\\((.+?)\\\)", re.DOTALL)


# ---- reading formulas ---------------------------------------------------------------------------------------------
def math_segments(path: Path) -> list[str]:
    """Every display (``$$ … $$``) and inline (``\\( … \\)``) formula of a text, Jinja left as it is."""
    return [" ".join((a or b).split()) for a, b in MATH.findall(path.read_text())]


def python_of(tex: str) -> str:
    """A LaTeX formula as a Python expression: floor brackets, fractions, products (``\\cdot``, ``\\times``, and
    juxtaposition such as ``2p`` or ``(k - 1)\\, j``), subscripts written ``_\\text{in}`` become ``_in``."""
    t = tex.strip().rstrip(".,").strip()
    t = re.sub(r"\\(left|right)(?![a-z])", "", t)
    t = t.replace(r"\lfloor", " floor(").replace(r"\rfloor", ") ")
    while r"\frac" in t:
        t, n = re.subn(r"\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"((\1) / (\2))", t)
        assert n, f"cannot read the fraction in {tex!r}"
    t = re.sub(r"_\\text\{(\w+)\}", r"_\1", t)
    t = re.sub(r"\\(cdot|times)(?![a-z])", " * ", t)
    t = re.sub(r"\\q?quad|\\[,;:! ]", " ", t)
    t = t.replace("−", "-").replace("·", "*")
    t = re.sub(r"(?<![\w.])(\d+)\s*(?=[A-Za-z(])", r"\1 * ", t)  # 2p, 784h, 2 (…)
    t = re.sub(r"\)\s*(?=[A-Za-z0-9(])", ") * ", t)              # (k - 1) j_in
    assert "\\" not in t and "{" not in t, f"cannot read {tex!r} (as far as {t!r})"
    return " ".join(t.split())


def equations(tex: str) -> list[tuple[str, str]]:
    """``lhs = rhs`` pairs of a formula (several, separated by ``\\qquad`` or ``\\quad``)."""
    pairs = []
    for part in re.split(r",?\s*\\q?quad\s*", tex):
        sides = [python_of(s) for s in re.split(r"\\;=\\;|=", part)]
        pairs += list(pairwise(sides))
    return pairs


def evaluate(expression: str, **names: float) -> float:
    return eval(expression, {"__builtins__": {}, "floor": math.floor}, names)  # our own texts, with no builtins


def test_reading_formulas():
    assert python_of(r"\left\lfloor \frac{n + 2p - k}{s} \right\rfloor + 1 .") == "floor( ((n + 2 * p - k) / (s)) ) + 1"
    assert evaluate(python_of(r"\lfloor (5 + 2 - 3)/2 \rfloor + 1")) == 3
    assert equations(r"r_\text{out} \;=\; r_\text{in} + (k - 1)\, j_\text{in}, \qquad j_\text{out} \;=\; j_\text{in}"
                     r" \cdot s ,") == [("r_out", "r_in + (k - 1) * j_in"), ("j_out", "j_in * s")]
    assert evaluate(python_of("784h + h"), h=2) == 1570


# ---- the shipped models ----------------------------------------------------------------------------------------
def shipped_models() -> list[tuple[str, dict]]:
    """Every distinct model a study of experiments/ declares (its variants, else its own model), with a label."""
    seen: dict[str, tuple[str, dict]] = {}
    for path in sorted(p for p in EXPERIMENTS.glob("*.yaml") if "." not in p.stem):  # not <id>.pt.yaml
        exp = load_study(path)
        models = ([(v.name, exp.resolve(v, exp.profile("quick").seeds[0], "quick")["model"])
                   for v in exp.variants]
                  if exp.variants else [(exp.model.name, {"name": exp.model.name,
                                                          "options": dict(exp.model.options)})])
        for variant, spec in models:
            seen.setdefault(json.dumps(spec, sort_keys=True), (f"{path.stem}:{variant}", spec))
    return list(seen.values())


SHIPPED = shipped_models()


@pytest.fixture(params=[spec for _, spec in SHIPPED], ids=[label for label, _ in SHIPPED])
def model(request) -> nn.Module:
    torch.manual_seed(0)
    return build_model(request.param["name"], **request.param["options"]).eval()


def test_the_shipped_models_include_every_kind_the_posts_discuss():
    kinds = {(spec["name"], tuple(sorted(spec["options"]))) for _, spec in SHIPPED}
    assert {"lenet", "tiny", "fcnn"} <= {name for name, _ in kinds}
    assert any(spec["options"].get("strided") for _, spec in SHIPPED)
    assert any(spec["options"].get("global_pool") for _, spec in SHIPPED)


def _shapes(model: nn.Module) -> tuple[dict, dict]:
    with torch.inference_mode(), capture_activations(model, keep=False) as acts:
        model(torch.zeros(1, 1, 28, 28))
    return acts.input_shapes, acts.output_shapes


def _pair(v) -> int:
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


# ---- output size ------------------------------------------------------------------------------------------------
def output_size_formulas() -> list[tuple[str, str]]:
    """The general output-size formula wherever a text states it: the output_size partial and the convolution post."""
    found = []
    for path in (ANALYSES / "output_size.md.j2", EXPERIMENTS / "convolution.md"):
        for tex in math_segments(path):
            if re.search(r"n \+ 2p - k", tex) and "lfloor" in tex and not re.search(r"\d+ \+ \d+", tex):
                found.append((path.name, python_of(tex.split("=")[-1])))
    return found


def test_the_texts_state_the_output_size_formula():
    assert {name for name, _ in output_size_formulas()} == {"output_size.md.j2", "convolution.md"}


def test_the_output_size_formula_gives_every_shipped_layers_size(model):
    inputs, outputs = _shapes(model)
    checked = 0
    for name, layer in layer_table(model):
        if not isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            continue
        k, p, n = _pair(layer.kernel_size), _pair(layer.padding), inputs[name][-1]
        s = _pair(layer.stride) if layer.stride else k
        assert _pair(getattr(layer, "dilation", 1)) == 1, f"{name} is dilated: the texts' formula has no dilation"
        assert not getattr(layer, "ceil_mode", False), f"{name} rounds up: the texts' formula rounds down"
        for text, formula in output_size_formulas():
            assert evaluate(formula, n=n, k=k, p=p, s=s) == outputs[name][-1], (text, name)
        checked += 1
    assert checked == sum(isinstance(m, (nn.Conv2d, nn.MaxPool2d)) for _, m in layer_table(model))


def test_the_convolution_posts_worked_examples_are_what_a_convolution_gives():
    examples = [tex for tex in math_segments(EXPERIMENTS / "convolution.md")
                if re.search(r"\\lfloor \(\d+ \+ \d+ - \d+\)\s*/\s*\d+ \\rfloor", tex)]
    assert len(examples) >= 3
    for tex in examples:
        n, two_p, k, s = map(int, re.search(r"\((\d+) \+ (\d+) - (\d+)\)\s*/\s*(\d+)", tex).groups())
        (lhs, rhs), = equations(tex)
        conv = nn.Conv2d(1, 1, k, stride=s, padding=two_p // 2)
        assert evaluate(lhs) == evaluate(rhs) == conv(torch.zeros(1, 1, n, n)).shape[-1], tex


def test_every_worked_row_of_the_output_size_table_evaluates_to_its_size(model):
    for row in _common.output_size_rows(model):
        tex = str(row["math"])[2:-2]  # without \( \)
        values = [evaluate(side) for pair in equations(tex) for side in pair]
        assert set(values) == {row["actual"]}, tex


# ---- parameter counts -----------------------------------------------------------------------------------------------
def parameter_formulas() -> dict[str, str]:
    """The formulas for a convolution's and a linear layer's parameters, on How to read a post (the architecture
    partial links there)."""
    found = {}
    for tex in math_segments(ANALYSES.parent.parent / "docs" / "how-to-read.md"):
        if "c_\\text{out}" in tex and "k" in tex:
            found["conv"] = python_of(tex)
        elif "n_\\text{out}" in tex and "n_\\text{in}" in tex:
            found["linear"] = python_of(tex)
    return found


def test_how_to_read_states_both_parameter_formulas():
    assert set(parameter_formulas()) == {"conv", "linear"}


def test_the_parameter_formulas_count_every_shipped_layer(model):
    formulas, total = parameter_formulas(), 0
    for name, layer in layer_table(model):
        own = sum(p.numel() for p in layer.parameters())
        if isinstance(layer, nn.Conv2d):
            assert layer.groups == 1 and layer.kernel_size[0] == layer.kernel_size[1]
            count = evaluate(formulas["conv"], c_in=layer.in_channels, c_out=layer.out_channels,
                             k=layer.kernel_size[0])
            if layer.bias is None:  # the text: no bias when batch normalisation follows
                count -= layer.out_channels
            assert count == own, name
        elif isinstance(layer, nn.Linear):
            assert evaluate(formulas["linear"], n_in=layer.in_features, n_out=layer.out_features) == own, name
        elif isinstance(layer, nn.BatchNorm2d):
            assert own == 2 * layer.num_features, name  # the text: a scale and a shift per channel
        else:
            assert own == 0, name  # the text: the other layers have none
        total += own
    assert total == count_parameters(model)


def test_every_row_formula_of_the_architecture_table_evaluates_to_its_count(model):
    table = architecture_table(model)
    for row in table.rows:
        if row.formula:
            assert evaluate(python_of(row.formula)) == row.parameters, row
    assert table.total == count_parameters(model)


def test_the_cnn_vs_fc_cost_of_a_hidden_layer_is_the_matched_networks_count():
    formulas = [python_of(tex) for tex in math_segments(EXPERIMENTS / "cnn-vs-fc.md") if re.search(r"\d+h\b", tex)]
    assert formulas, "cnn-vs-fc.md no longer states the cost of a hidden layer of h units"
    fc = build_model("fcnn", match_params_of="lenet")
    h = fc.classifier.fc1.out_features
    assert sum(evaluate(f, h=h) for f in formulas) == count_parameters(fc)


# ---- receptive field ------------------------------------------------------------------------------------------------
def receptive_field_formula() -> list[tuple[str, str]]:
    tex = next(t for t in math_segments(ANALYSES / "receptive_field.md.j2") if "r_\\text{out}" in t)
    return equations(tex)


def test_the_receptive_field_formula_gives_the_measured_field_of_every_shipped_layer(model):
    update = dict(receptive_field_formula())
    assert set(update) == {"r_out", "j_out"}
    r, j = 1, 1
    rows = {row["name"]: row for row in receptive_field_rows(model)}
    for name, layer in layer_table(model):
        if isinstance(layer, nn.Flatten):
            break
        if not isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            continue  # element-wise layers; a global pool's window depends on the image size (its own test)
        k = _pair(layer.kernel_size)
        s = _pair(layer.stride) if layer.stride else k
        r, j = evaluate(update["r_out"], r_in=r, j_in=j, k=k, s=s), evaluate(update["j_out"], j_in=j, s=s)
        side, _, _ = measured_field(model, name, 64)
        assert r == side == rows[name]["r"] and j == rows[name]["j"], name


def test_every_worked_row_of_the_receptive_field_table_evaluates_to_its_numbers(model):
    for row in receptive_field_rows(model):
        tex = str(row["math"])[2:-2]
        worked = {}
        for part in re.split(r",?\s*\\q?quad\s*", tex):  # "r = 6 + (5 - 1) \cdot 2 = 14", "j = 2 \cdot 1 = 2"
            name, *sides = [python_of(side) for side in part.split("=")]
            worked[name.strip()] = {evaluate(side) for side in sides}
        assert worked["r"] == {row["r"]}, tex
        assert worked.get("j", {row["j"]}) == {row["j"]} and ("j" in worked) == (row["size"] > 1), tex
