"""What prose reads from an analysis' result through result("name"): the helpers that turn a result into the
number a sentence depends on (errors within a group of classes, the first-epoch difference, a point of the shift
curve), each against numbers worked out by hand."""
from __future__ import annotations

import pytest

from reportgen.analyses.confusion import ConfusedPair, ConfusionResult, VariantConfusion
from reportgen.analyses.curves import CurvesResult, VariantCurves
from reportgen.analyses.shift_curve import CurvePoint, ShiftCurveResult, VariantShiftCurve
from reportgen.stats import mean_ci


def confusion(counts: list[list[int]]) -> ConfusionResult:
    errors = sum(counts[i][j] for i in range(3) for j in range(3) if i != j)
    pairs = [ConfusedPair(a="Coat", b="Shirt", a_as_b=counts[0][1], b_as_a=counts[1][0],
                          total=counts[0][1] + counts[1][0], share_pct=0.0)]
    v = VariantConfusion(name="mnist", label="MNIST", dataset="mnist", seeds=[0], seed=0, classes=["Coat", "Shirt", "Pullover"],
                         counts=counts, normalised=[], support=[], recall_pct=[], errors=errors, test_size=100,
                         pairs=pairs, figure=None, figure_normalised=None)
    return ConfusionResult(basis="first seed", variants=[v])


def test_errors_within_a_group_of_classes_and_the_top_pair_share():
    # errors: Coat→Shirt 6, Shirt→Coat 2, Coat→Pullover 1, Pullover→Shirt 1: 10 in all; 8 within {Coat, Shirt}
    result = confusion([[90, 6, 1], [2, 98, 0], [0, 1, 99]])
    v = result.variant("mnist")
    assert v.errors_within(["Coat", "Shirt"]) == pytest.approx(80.0)
    assert v.errors_within(["Coat", "Shirt", "Pullover"]) == pytest.approx(100.0)
    assert v.top_pair_share() == pytest.approx(80.0)
    with pytest.raises(ValueError, match=r"no class 'Shrit' in 'mnist'; did you mean 'Shirt'\? \(classes: Coat, Shirt, Pullover\)"):
        v.errors_within(["Coat", "Shrit"])
    with pytest.raises(ValueError, match=r"no variant 'mnst'; did you mean 'mnist'\?"):
        result.variant("mnst")


def test_first_epoch_difference_is_paired_over_common_seeds():
    def curves(name, firsts):
        return VariantCurves(name=name, label=name, dataset="fashion-mnist", seeds=list(firsts), epochs=5,
                             final_train_acc_pct=0, final_val_acc_pct=0, best_val_acc_pct=0, first_val_by_seed=firsts)
    result = CurvesResult(figure=None, seeds=3, variants=[curves("lenet", {0: 70.0, 1: 72.0, 2: 71.0}),
                                                        curves("batch-norm", {0: 76.0, 1: 77.0, 3: 90.0})])
    d = result.first_epoch_diff("batch-norm")
    ci = mean_ci([6.0, 5.0])  # seeds 0 and 1 only: seed 3 has no partner
    assert (d.mean, d.low, d.high, d.n, d.unit) == (5.5, ci.low, ci.high, 2, " points")
    with pytest.raises(ValueError, match="differences are to the first variant"):
        result.first_epoch_diff("lenet")


def test_a_point_of_the_shift_curve_by_distance():
    points = [CurvePoint(distance=d, shifts=1, zero_pct=90.0 - 10 * d, wrap_pct=0.0, min_zero_pct=0.0)
              for d in range(3)]
    curve = VariantShiftCurve(name="augmented", label="Aug", dataset="fashion-mnist", seeds=[0], seed=0,
                              points=points, start_pct=90.0, end_pct=70.0, drop_pct=20.0)
    result = ShiftCurveResult(basis="first seed", radius=2, variants=[curve])
    assert result.variant("augmented").point(2).zero_pct == 70.0
    assert result.variant("augmented").point(1.0).zero_pct == 80.0
    with pytest.raises(ValueError, match=r"point\(5\): the curve has distances 0 to 2"):
        curve.point(5)


# ---- the pre-training check with result() ----------------------------------------------------------------------
STUDY = """
id: res
title: Results in prose
question: Does the check see through result()?
varies: dropout
training: {epochs: 2}
baseline: base
variants:
  - {name: base, label: Base}
  - {name: other, label: Other, model: {options: {dropout: 0.5}}}
analyses: [curves, confusion]
"""


def check(tmp_path, text: str) -> None:
    from reportgen import prose
    from reportgen.config import load_study
    (tmp_path / "res.yaml").write_text(STUDY)
    (tmp_path / "res.md").write_text(text)
    prose.check(tmp_path / "res.md", load_study(tmp_path / "res.yaml"), {}, "quick")


def test_the_check_passes_prose_that_reads_results_in_every_usual_way(tmp_path):
    check(tmp_path, '{% set c = result("curves") %}{% for v in c.variants %}{{ v.label }} {{ v.epochs|thousands }}'
                    '{% endfor %}{{ (c.variants|first).final_val_acc_pct|pct }} {{ (c.seeds // 2) % 3 }} '
                    '{{ result("confusion").variant("other").errors_within(["a"])|round(1, "floor") }}\n')


@pytest.mark.parametrize("text, fragment", [
    ('{{ result("curves").variant("othr").final_val_acc_pct }}',
     ".variant('othr', ...): no variant 'othr'; did you mean 'other'? (variants: base, other)"),
    ('{{ result("curves").first_epoch_diff("bse") }}', "no variant 'bse'; did you mean 'base'?"),
    ('{{ 100 / variant("other").parameters }}', "division by zero"),
])
def test_the_check_reports_a_misnamed_variant_in_a_result_helper_or_an_arithmetic_error_in_one_line(
        tmp_path, text, fragment):
    from reportgen.prose import ProseError
    with pytest.raises(ProseError) as err:
        check(tmp_path, text + "\n")
    assert str(err.value).startswith(f"{tmp_path / 'res.md'}:1: ") and fragment in str(err.value), str(err.value)
    assert "\n" not in str(err.value)
