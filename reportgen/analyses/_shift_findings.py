"""What the shift analyses (``shift_grid``, ``shift_curve``) contribute to a post's closing section: each
variant's test accuracy when the test images move 1, 2 and 4 pixels (zero-filled), over every seed with its
interval, and each variant's difference to the baseline at those distances, paired over seeds.

Both analyses read the same cached numbers (:func:`reportgen.analyses._shift.seed_kept`, accuracy
averaged over the shifts at one rounded distance √(dx² + dy²), as the shift curve plots it), so a post that
declares both states each finding once: the closing section drops identical sentences.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import i18n, numbers
from ..prose import Measure
from ..settings import CONFIDENCE, DISTANCES
from ..stats import mean_ci
from . import ByVariant, pick


@dataclass(frozen=True)
class SeedKept:
    """One variant's accuracy (%) per seed at distance 0 (unshifted) and at each of :data:`DISTANCES`."""
    label: str
    by_seed: dict[int, dict[int, float]]
    name: str = ""


class ShiftReading(ByVariant):
    """For prose (``result("shift_curve").at("pool", 4)``): a shift result's accuracies over seeds by variant name,
    and (``.variant("pool")``) one variant's first-seed grid or curve. The class using it has ``variants``,
    ``seed_kept`` and ``baseline`` (a label)."""
    seed_kept: list[SeedKept]
    baseline: str | None

    def _kept(self, variant: str, distance: int) -> SeedKept:
        if distance not in (0, *DISTANCES):
            raise ValueError(f"distance {distance!r}: measured over every seed at "
                             f"{', '.join(str(d) for d in (0, *DISTANCES))} pixels only")
        return pick(self.seed_kept, variant, "variant")

    def at(self, variant: str, distance: int):
        """The variant's accuracy (%) at ``distance`` pixels (0: unshifted), mean over seeds with its interval."""
        kept = self._kept(variant, distance)
        return Measure.of(mean_ci([by[distance] for by in kept.by_seed.values() if distance in by]), "%")

    def diff_at(self, variant: str, distance: int):
        """The variant's accuracy at ``distance`` minus the baseline's, in points, paired over common seeds."""
        kept = self._kept(variant, distance)
        base = _baseline(self.seed_kept, self.baseline)
        if base is None or base is kept:
            raise ValueError(f"diff_at({variant!r}, {distance}): differences are to the baseline, {self.baseline!r}")
        return Measure.of(mean_ci(_paired(kept, base, _common_seeds(kept, base), distance)), " points")


    def between(self, variant: str, other: str, distance: int):
        """``variant``'s accuracy at ``distance`` minus ``other``'s, in points, paired over their common seeds
        (``between("pool", "strided", 4)``: what pooling adds over strided convolutions at 4 pixels)."""
        a, b = self._kept(variant, distance), self._kept(other, distance)
        return Measure.of(mean_ci(_paired(a, b, _common_seeds(a, b), distance)), " points")

    def kept(self, variant: str, distance: int, other: str | None = None):
        """The share (%) of its unshifted accuracy the variant keeps at ``distance``, mean over seeds; with
        ``other``, that share minus ``other``'s, in points, paired over their common seeds. A relative drop, so
        variants that start from different accuracies compare fairly."""
        a = self._kept(variant, distance)
        share = {s: 100.0 * by[distance] / by[0] for s, by in a.by_seed.items() if distance in by and by[0] > 0}
        if other is None:
            return Measure.of(mean_ci(list(share.values())), "%")
        b = self._kept(other, distance)
        theirs = {s: 100.0 * by[distance] / by[0] for s, by in b.by_seed.items() if distance in by and by[0] > 0}
        return Measure.of(mean_ci([share[s] - theirs[s] for s in sorted(set(share) & set(theirs))]), " points")


def _baseline(variants: list[SeedKept], label: str | None) -> SeedKept | None:
    return next((v for v in variants if v.label == label), None)


def _common_seeds(v: SeedKept, base: SeedKept) -> list[int]:
    return sorted(set(v.by_seed) & set(base.by_seed))


def _paired(v: SeedKept, base: SeedKept, seeds: list[int], distance: int) -> list[float]:
    """``v``'s accuracy at ``distance`` minus ``base``'s, seed against seed, over the ``seeds`` that have both."""
    return [v.by_seed[s][distance] - base.by_seed[s][distance] for s in seeds
            if distance in v.by_seed[s] and distance in base.by_seed[s]]


def distance_bins(radius: int) -> np.ndarray:
    """[dy + radius, dx + radius] -> the shift's distance √(dx² + dy²) rounded to whole pixels."""
    axis = np.arange(-radius, radius + 1) ** 2
    return np.rint(np.sqrt(np.add.outer(axis, axis))).astype(int)


def baseline_label(study) -> str | None:
    """The label of the variant the others are compared with (``baseline:``, else the first available)."""
    return next((v.label for v in study.available if v.name == study.baseline), None)


def _pixels(distance: int, measured: str) -> str:
    return i18n.ngettext("%(num)s pixel %(measured)s", "%(num)s pixels %(measured)s", distance) % {
        "num": distance, "measured": measured}


def _ci(values: list[float], signed: bool = False) -> str:
    return numbers.measured(mean_ci(values), "" if signed else "%", signed, level="")


def findings(variants: list[SeedKept], baseline: str | None, test_images: list[int],
             full_test_size: int) -> list[str]:
    """The sentences: per variant its mean accuracy over seeds unshifted and at each of :data:`DISTANCES`
    (zero-filled) with the interval over seeds; per other variant its difference to ``baseline`` at those
    distances, paired over their common seeds; then what they rest on."""
    rows = [v for v in variants if v.by_seed]
    out = []
    for v in rows:
        seeds = sorted(v.by_seed)
        steps = [d for d in DISTANCES if all(d in v.by_seed[s] for s in seeds)]
        if not steps:
            continue
        parts = [_pixels(d, _ci([v.by_seed[s][d] for s in seeds])) for d in steps]
        level = (" (" + i18n._("%(pct)s%% CI") % {"pct": round(100 * CONFIDENCE)} + ")") if len(seeds) > 1 else ""
        out.append(i18n.ngettext("%(label)s, zero-filled, mean of %(num)s seed%(level)s: unshifted %(acc)s%%; "
                                 "moved by %(parts)s.",
                                 "%(label)s, zero-filled, mean of %(num)s seeds%(level)s: unshifted %(acc)s%%; "
                                 "moved by %(parts)s.", len(seeds))
                   % {"label": v.label, "num": len(seeds), "level": level, "parts": "; ".join(parts),
                      "acc": numbers.fixed(np.mean([v.by_seed[s][0] for s in seeds]))})
    base = _baseline(rows, baseline)
    for v in rows:
        if base is None or v is base:
            continue
        seeds = _common_seeds(v, base)
        if len(seeds) < 2:
            continue
        parts = [_pixels(d, _ci(_paired(v, base, seeds, d), signed=True))
                 for d in DISTANCES if all(d in v.by_seed[s] and d in base.by_seed[s] for s in seeds)]
        if parts:
            out.append(i18n._("%(label)s against %(baseline)s on shifted images, in points, paired over %(num)s seeds "
                              "(%(pct)s%% CI): moved by %(parts)s.")
                       % {"label": v.label, "baseline": base.label, "num": len(seeds),
                          "pct": round(100 * CONFIDENCE), "parts": "; ".join(parts)})
    if out:
        images = " / ".join(numbers.thousands(n) for n in test_images)
        where = (i18n._("all %(n)s test images") % {"n": numbers.thousands(full_test_size)}
                 if test_images == [full_test_size]
                 else i18n._("the first %(images)s of the %(n)s test images")
                 % {"images": images, "n": numbers.thousands(full_test_size)})
        out.append(i18n._("A distance is √(dx² + dy²) rounded to whole pixels, its accuracy the mean over the shifts "
                          "at that distance, on %(where)s.") % {"where": where})
    return out
