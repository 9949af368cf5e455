"""How many decimals a measured number gets: as many as its uncertainty supports, and one rule for prose, tables and
charts.

The rule, for a percentage (or a difference in percentage points) with a confidence interval of half-width ``h``:

- ``h >= 0.1`` point: **one** decimal. The rounding step (0.1) is then no larger than the uncertainty, so the
  second decimal would only show noise: "82.9 (81.9 to 84.0)", not "82.92 (81.89 to 83.95)".
- ``h < 0.1`` point (a tight paired difference, a zero-width interval): **two** decimals. Never more: on a test
  set of 10,000 images one image is 0.01 point, the finest step an accuracy can take.
- No interval (one seed, or a share counted once): **one** decimal. Such a number still carries the test set's
  sampling error, and on 10,000 images a 95% binomial interval is at least ±0.1 point for any share between
  0.3% and 99.7%.

A mean and its interval are printed with the same number of decimals, taken from the interval they are printed
with. The results table prints the test set's own (binomial) interval in a column of its own, with its own
decimals; a mean over seeds whose seed interval is very narrow (±0.08) keeps two decimals beside it. In templates the
mean of an interval (``acc.mean``, ``diff.std``) knows its interval: the Jinja environments of
:mod:`reportgen.markdown` hand it out as an :class:`Estimate`, a float that remembers the half-width, so
``{{ acc.mean | pct }} ({{ acc | interval }})`` needs no argument to agree.
"""
from __future__ import annotations

import functools
import math
from decimal import Decimal
from typing import Any

from babel.numbers import format_decimal

from . import i18n

COARSE_HALF_WIDTH = 0.1  # points: an interval at least this wide on each side gets one decimal, a narrower one two
COARSE_DECIMALS = 1
FINE_DECIMALS = 2
MINUS = "\u2212"
DASH = "—"
PRECISE_FIELDS = ("mean", "std")  # an interval's fields that are printed with the interval's decimals


def decimals(half_width: float | None) -> int:
    """The decimals a number with a confidence interval of this half-width supports (None: no interval)."""
    if half_width is None or not math.isfinite(half_width) or half_width >= COARSE_HALF_WIDTH:
        return COARSE_DECIMALS
    return FINE_DECIMALS


def _field(ci: Any, key: str) -> Any:
    return ci.get(key) if isinstance(ci, dict) else getattr(ci, key, None)


def half_width(ci: Any) -> float | None:
    """Half the width of an interval (a dict or an object with ``n``, ``low`` and ``high``); None when there is
    none: no interval, fewer than two seeds, or NaN bounds."""
    if ci is None:
        return None
    n, low, high = _field(ci, "n"), _field(ci, "low"), _field(ci, "high")
    if n is None or low is None or high is None or int(n) < 2:
        return None
    low, high = float(low), float(high)
    return (high - low) / 2 if math.isfinite(low) and math.isfinite(high) else None


class Estimate(float):
    """A measured float that remembers the half-width of its interval, so that it prints with the decimals the
    interval supports wherever it goes (a table cell, a sentence)."""
    half_width: float | None

    def __new__(cls, value: float, half: float | None) -> "Estimate":
        out = super().__new__(cls, value)
        out.half_width = half
        return out


def precise(ci: Any, key: str, value: Any) -> Any:
    """``value``, the field ``key`` of ``ci``, as an :class:`Estimate` when it is an interval's mean or spread;
    anything else unchanged. The Jinja environments call it on every attribute and item lookup."""
    if key not in PRECISE_FIELDS or type(value) not in (float, int) or isinstance(value, bool):
        return value
    half = half_width(ci)
    return value if half is None else Estimate(value, half)


@functools.lru_cache(maxsize=None)
def _pattern(digits: int, signed: bool, grouped: bool) -> str:
    """The CLDR number pattern of a fixed number of decimals: '0.00', '+0.0;-0.0', '#,##0'."""
    body = ("#,##0" if grouped else "0") + ("." + "0" * digits if digits > 0 else "")
    return f"+{body};-{body}" if signed else body


def localized(x: float | int, digits: int = 0, signed: bool = False, grouped: bool = False) -> str:
    """``x`` with ``digits`` decimals in the edition's locale, formatted by Babel: '91.56' / '91,56', '61,706' /
    '61.706', with a real minus sign. Rounding is Python's own (the float's exact value, as '{:.2f}' rounds), so the
    English text is what it was before the site had two editions; Babel only writes the rounded number."""
    text = f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"
    if not math.isfinite(x):
        return text.replace("-", MINUS)
    if Decimal(text) == 0:  # rounds to zero: "0.00", neither "−0.00" nor "+0.00"
        text, signed = f"{0:.{digits}f}", False
    out = format_decimal(Decimal(text), format=_pattern(digits, signed, grouped), locale=i18n.babel_locale(),
                         decimal_quantization=False)
    return out.replace("-", MINUS)


def plain(x: float, digits: int = 0) -> str:
    """``x`` as ``f"{x:.{digits}f}"`` writes it, in the edition's locale ('0.53' / '0,53'), with the ASCII hyphen of
    that f-string (figures and alt texts written that way before the site had two editions keep their bytes)."""
    return localized(float(x), digits).replace(MINUS, "-")


def significant(x: float, digits: int) -> str:
    """``x`` as ``f"{x:.{digits}g}"`` writes it ('0.0012', '3e-07'), with the edition's decimal sign ('0,0012')."""
    from babel.numbers import get_decimal_symbol
    return f"{x:.{digits}g}".replace(".", get_decimal_symbol(i18n.babel_locale()))


def fixed(x: float | None, digits: int | None = None, signed: bool = False) -> str:
    """``x`` with ``digits`` decimals (default: what its interval supports, :func:`decimals`), a real minus sign,
    '+' when ``signed``; '—' for a missing number. In the edition's locale: '91,56' in Portuguese."""
    if x is None or x != x:
        return DASH
    if digits is None:
        digits = decimals(getattr(x, "half_width", None))
    return localized(float(x), digits, signed)


def general(x: float) -> str:
    """A setting as ``'{:g}'`` writes it (0.003, 1e-05, 0.5), with the edition's decimal sign: '0,003' in Portuguese."""
    text = f"{x:g}"
    if "e" in text or "n" in text:
        return text
    return localized(float(text), len(text.partition(".")[2]))


def thousands(n: Any) -> str:
    """A count with the locale's grouping: '61,706' in English, '61.706' in Portuguese."""
    return localized(int(n), 0, grouped=True)


MAX_BOUND_DECIMALS = 3  # a bound near zero gets up to this many decimals to show which side of zero it is on


def bound(x: float, digits: int, signed: bool = False) -> str:
    """An interval's bound with ``digits`` decimals, or with as many more (up to :data:`MAX_BOUND_DECIMALS`) as it
    takes not to print 0 for a bound that is not zero: "0.0 to 0.6 points lower" beside "the interval lies below
    zero" reads as a contradiction; "0.04 to 0.6" does not."""
    x = float(x)
    while digits < MAX_BOUND_DECIMALS and x != 0 and math.isfinite(x) and round(x, digits) == 0:
        digits += 1
    return localized(x, digits, signed)


def interval(ci: Any, digits: int | None = None, signed: bool = False) -> str:
    """'81.9 to 84.0' with the decimals the interval's own width supports (more for a bound next to zero,
    :func:`bound`); '—' without an interval (one seed)."""
    half = half_width(ci)
    if half is None:
        return DASH
    digits = decimals(half) if digits is None else digits
    return i18n._("%(low)s to %(high)s") % {"low": bound(_field(ci, "low"), digits, signed),
                                             "high": bound(_field(ci, "high"), digits, signed)}


def measured(ci: Any, unit: str = "%", signed: bool = False, level: str | None = None) -> str:
    """A mean with its interval, as prose quotes it: '82.9% (95% CI 81.9 to 84.0)', or '82.9%' with one seed.
    ``level`` defaults to the translated '95% CI'; '' leaves it out."""
    if level is None:
        level = i18n._("95% CI")
    digits = decimals(half_width(ci))
    text = f"{fixed(_field(ci, 'mean'), digits, signed)}{unit}"
    bounds = interval(ci, digits, signed)
    return text + (f" ({level + ' ' if level else ''}{bounds})" if bounds != DASH else "")
