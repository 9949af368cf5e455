"""The decimals a measured number gets: from its interval's width (reportgen.numbers), in filters and charts."""
from __future__ import annotations

import pytest

from reportgen import numbers
from reportgen.markdown import package_environment, prose_environment
from reportgen.prose import Measure
from reportgen.stats import DifferenceInterval, mean_ci, verdict

MINUS = "\u2212"


@pytest.mark.parametrize("half, digits", [(1.03, 1), (0.1, 1), (0.0999, 2), (0.0, 2), (None, 1),
                                          (float("nan"), 1), (7.5, 1)])
def test_decimals_follow_the_half_width(half, digits):
    assert numbers.decimals(half) == digits


def test_the_issue_example_loses_the_digit_its_interval_does_not_support():
    ci = {"mean": 82.92, "low": 81.89, "high": 83.95, "n": 3, "std": 0.4}
    assert numbers.measured(ci) == "82.9% (95% CI 81.9 to 84.0)"


def test_a_tight_difference_keeps_two_decimals_and_a_real_minus():
    ci = {"mean": -0.042, "low": -0.09, "high": 0.006, "n": 5, "std": 0.03}
    assert numbers.measured(ci, " points", signed=True) == f"{MINUS}0.04 points (95% CI {MINUS}0.09 to +0.01)"


def test_no_interval_one_decimal_and_missing_is_a_dash():
    assert numbers.measured({"mean": 91.234, "low": float("nan"), "high": float("nan"), "n": 1}) == "91.2%"
    assert numbers.interval({"mean": 1.0, "low": 0.0, "high": 2.0, "n": 1}) == numbers.DASH
    assert numbers.fixed(None) == numbers.fixed(float("nan")) == numbers.DASH
    assert numbers.fixed(0.123456, 3) == "0.123"


@pytest.mark.parametrize("make_env", [package_environment, prose_environment])
def test_a_templates_mean_prints_with_its_intervals_decimals(make_env):
    """Both environments hand out an interval's mean and std with its width: no argument in the template."""
    env = make_env()
    src = "{{ a.mean | pct }} ({{ a | interval }}), std {{ a.std | pct }}; {{ a['mean'] | pct }}"
    wide = {"mean": 82.924, "low": 81.89, "high": 83.95, "n": 3, "std": 0.412}
    tight = Measure(mean=0.0512, low=0.021, high=0.0814, std=0.012, n=3, unit=" points")
    assert env.from_string(src).render(a=wide) == "82.9 (81.9 to 84.0), std 0.4; 82.9"
    assert env.from_string(src).render(a=tight) == "0.05 (0.02 to 0.08), std 0.01; 0.05"
    assert env.from_string("{{ x | pct }} {{ x | fixed }} {{ x | pct(3) }}").render(x=0.12345) == "0.1 0.12 0.123"


def test_measure_and_verdict_quote_the_same_decimals():
    ci = mean_ci([1.31, 1.92, 2.64])
    m = Measure.of(ci, unit=" points")
    assert str(m) == f"+2.0 points (95% CI {numbers.interval(ci, signed=True)})"  # not +1.96: the CI is ±1.6
    sentence = verdict("A", "B", DifferenceInterval.paired(ci))
    assert f"by {numbers.fixed(ci.mean, 1)} percentage points" in sentence
    assert f"{numbers.fixed(ci.low, 1)} to {numbers.fixed(ci.high, 1)}" in sentence


def test_a_bound_next_to_zero_shows_which_side_of_zero_it_is_on():
    """"95% CI 0.0 to 0.6 points lower" beside "the interval lies entirely below zero" read as a contradiction to a
    lecturer: a bound that is not zero never prints as zero (up to three decimals), in the interval and the verdict."""
    ci = {"mean": -0.31, "low": -0.62, "high": -0.04, "n": 5, "std": 0.2}
    assert numbers.interval(ci) == f"{MINUS}0.6 to {MINUS}0.04"
    assert numbers.interval({**ci, "high": -0.0004}) == f"{MINUS}0.6 to 0.000"  # three decimals at most
    assert numbers.interval({**ci, "high": 0.0}) == f"{MINUS}0.6 to 0.0"  # zero itself stays 0.0
    sentence = verdict("A", "B", DifferenceInterval.paired(mean_ci([-0.05, -0.3, -0.6, -0.35, -0.25])))
    low, high = sentence.split("95% CI ")[1].split(" points lower")[0].split(" to ")
    assert float(low) > 0 and float(high) > 0, sentence
    with __import__("reportgen").i18n.active("pt"):
        assert numbers.interval(ci) == f"{MINUS}0,6 a {MINUS}0,04"
