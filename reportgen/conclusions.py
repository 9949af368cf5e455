"""A post's closing section, "What this shows — and what it doesn't": plain data for ``templates/_shows.md.j2``.

It gathers what the rest of the post has already computed — nothing here measures anything new:

- the verdicts of :func:`reportgen.stats.summary` (test accuracy, and the train − validation gap when the post shows
  the gap table), as printed above them, with their caveat when a variant was still learning;
- what the declared analyses found (:attr:`reportgen.analyses.Analysis.findings`, e.g. how much accuracy each
  variant keeps under shifts), each sentence once;
- the convergence diagnosis of every variant;
- the confounds check (:mod:`reportgen.confounds`): every difference from the baseline besides the declared factor,
  undeclared ones as limits, declared ones with their reason;
- the limits every study shares: its datasets, its number of seeds, its test set and its training budget.

The study's own prose adds its sentences around ``shows()`` (:mod:`reportgen.prose`); the template holds the words.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .confounds import Difference
from .markdown import signed_number


def closing(exp: Any, stats: dict[str, Any], facts: dict[str, Any], differences: list[Difference],
            findings: list[str], placed: list[str]) -> dict[str, Any]:
    """What ``_shows.md.j2`` reads as ``c``. ``placed``: the blocks the post shows (prose names, e.g. "gap"), so
    the section repeats only verdicts the reader has seen with their tables."""
    rows = stats["rows"]
    shown = {row["name"] for row in rows}
    verdicts = [c["verdict"] for c in stats["comparisons"]]
    if "gap" in placed:
        for c in stats["gap_comparisons"]:
            verdicts.append(c["verdict"])
            verdicts.append(f"Where that change in the gap comes from: {c['label']}'s training accuracy differs by "
                            f"{_points(c['train_change'])} and its validation accuracy by {_points(c['val_change'])} "
                            f"from {c['baseline_label']}'s (means over seeds).")
    compared = [d for d in differences if d.variant in shown and d.baseline in shown]
    datasets = list(dict.fromkeys(row["dataset_name"] for row in rows))
    return {
        "question": exp.question, "varies": exp.varies.strip().rstrip("."),
        "verdicts": verdicts, "findings": list(dict.fromkeys(findings)),
        "single_variant": len(rows) == 1, "rows": rows,
        "learning": [{"label": r["label"], "text": r["convergence"]["text"]} for r in rows
                     if r["convergence"]["still_learning"]],
        "not_measured": [r["label"] for r in rows if r["convergence"]["window"] == 0],
        "all_converged": bool(rows) and all(r["convergence"]["verdict"] == "converged" for r in rows),
        "confounds": [_difference(d) for d in compared if not d.intended],
        "declared": _declared([d for d in compared if d.intended]),
        "datasets": datasets, "n_seeds": stats["n_seeds"], "single_seed": stats["single_seed"],
        "test_sizes": facts["test_sizes"], "train_limit": facts["train_limit"], "train_total": facts["train_total"],
        # the test set's own sampling error, where the summary measures it: the widest half-interval of any row
        "test_set_half": max((r["test_set"]["half"] for r in rows if r.get("test_set")), default=None),
        "loss_disagrees": [{"label": r["label"], "runs": r["checkpoint"]["disagree"], "n": r["checkpoint"]["n"]}
                           for r in rows if (r.get("checkpoint") or {}).get("disagree")],
        "epochs": sorted({r["epochs"] for r in rows}), "eval_limit": facts["eval_limit"],
        "unavailable": stats["unavailable"], "baseline_missing": stats["baseline_missing"],
        "baseline_label": stats["baseline_label"],
    }


def _declared(found: list[Difference]) -> list[dict[str, Any]]:
    """The intended differences, one entry per variant (its reason covers all of them): label, baseline_label,
    parts ("parameter count, 15,626 (−75%) against 61,706") and reason."""
    by_variant: dict[str, dict[str, Any]] = {}
    for d in found:
        entry = by_variant.setdefault(d.variant, {**_difference(d), "parts": []})
        entry["parts"].append(f"{d.what}, {d.variant_value} against {d.baseline_value}")
    return list(by_variant.values())


def _points(value: float) -> str:
    return f"{signed_number(value)} points"


def _difference(d: Difference) -> dict[str, Any]:
    # the reason is a sentence of its own in the template, which ends it
    reason = " ".join(d.reason.split()).rstrip(".")
    return asdict(d) | {"what": d.what, "reason": reason[:1].upper() + reason[1:]}
