"""The home page (``docs/index.md``): one table of every declared study, for one profile.

A site is built from one profile: every number on it comes from that profile's runs, so a reader never compares
numbers from two profiles. A study in the site links to its post; a declared study without complete results for
the profile is listed as "not run in this profile" with the one command that runs it, and gets no post.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import __version__
from .markdown import package_environment
from .post import POSTS
from .settings import CONFIDENCE, DATASET_TRAIN_SIZE, VAL_SIZE
from .summary import summary
from .fsutil import atomic_write
from .store import Store
from .study import RenderError, collect

HOME = "index.md"


def home_rows(studies: dict, profile: str, store: Store, built: set[str]) -> list[dict[str, Any]]:
    """One row per declared study, in reading order (the studies' ``order:``; their ``date:`` fields follow it,
    newest first, so the blog lists the posts in the same order): its variants with test accuracy and interval
    (and whether their networks were still learning), the difference to the baseline, the data size and epochs,
    and the post's link when the study is in the site."""
    rows = []
    for number, (exp_id, (_, exp)) in enumerate(studies.items(), start=1):
        prof = exp.profile(profile)
        row: dict[str, Any] = {
            "number": number, "id": exp_id, "title": exp.title, "description": exp.description,
            "trains": exp.trains, "link": (POSTS / f"{exp_id}.md").as_posix() if exp_id in built else None,
            "variants": [], "missing": None, "baseline_label": None, "epochs": prof["epochs"],
            "train_size": prof["train_limit"] or DATASET_TRAIN_SIZE - VAL_SIZE, "command": f"reportgen run {exp_id} --profile {profile}",
            # variants that train longer than the rest under this profile (to converge), by label
            "epochs_other": [{"label": v.label or v.name, "epochs": exp.variant_epochs(v, profile)}
                             for v in exp.variants if exp.variant_epochs(v, profile) != prof["epochs"]],
        }
        if exp.trains:
            try:
                study = collect(exp_id, exp, profile, store)
            except RenderError:
                row["missing"] = row["command"]
            else:
                stats = summary(study)
                row["baseline_label"] = stats.baseline_label if stats.comparisons else None
                by_name = {r.name: r for r in stats.rows}
                for v in study.variants:
                    r = by_name.get(v.name)
                    row["variants"].append({
                        "label": v.label, "acc": r.acc if r else None, "diff": r.diff if r else None,
                        "is_baseline": v.name == stats.baseline and bool(stats.comparisons),
                        "unavailable": v.unavailable is not None,
                        "still_learning": bool(r and r.convergence.still_learning),
                    })
        rows.append(row)
    return rows


def render_home(studies: dict, profile: str, store: Store, docs: Path, built: set[str]) -> Path:
    """Write ``docs/index.md`` for the studies in ``built`` (the others are listed with what makes them)."""
    rows = home_rows(studies, profile, store, built)
    seeds = sorted({s for _, exp in studies.values() for s in exp.profile(profile)["seeds"]})
    still_learning = any(v["still_learning"] for row in rows if row["link"] for v in row["variants"])
    text = package_environment().get_template("_home.md.j2").render(
        rows=rows, profile=profile, seeds=seeds, version=__version__, still_learning=still_learning,
        confidence_pct=round(100 * CONFIDENCE))
    target = docs / HOME
    atomic_write(target, text.encode())
    return target
