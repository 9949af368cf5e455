"""The home page (``docs/index.md``): the posts in reading order, each with its takeaway and one key figure (read
from the rendered post's front matter), then one table of every declared study, for one profile.

A site is built from one profile: every number on it comes from that profile's runs, so a reader never compares
numbers from two profiles. A study in the site links to its post; a declared study without complete results for
the profile is listed as "not run in this profile" with the one command that runs it, and gets no post.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from markupsafe import Markup

from . import __version__
from .markdown import package_environment
from .post import POSTS
from .settings import CONFIDENCE, DATASET_TRAIN_SIZE, VAL_SIZE
from .fsutil import atomic_write
from .schema import StudyConfig
from .stats import Comparison, Interval
from .store import Store
from .study import RenderError, Study, collect
from .summary import summary

HOME = "index.md"


@dataclass(frozen=True)
class HomeVariant:
    """A variant in a study's row: test accuracy with its interval, difference to the baseline (None for the
    baseline itself or a variant left out)."""
    label: str
    acc: Interval | None
    diff: Comparison | None
    is_baseline: bool
    unavailable: bool
    still_learning: bool


@dataclass(frozen=True)
class LongerEpochs:
    """A variant that trains longer than the rest of its study under the profile (to converge)."""
    label: str
    epochs: int


@dataclass
class HomeRow:
    """One declared study on the home page: ``link`` to its post when it is in the site, else ``missing`` (the
    command that makes its results) when it has none; its variants once it ran."""
    number: int
    id: str
    title: str
    description: str
    trains: bool
    link: str | None
    epochs: int
    train_size: int
    command: str
    epochs_other: list[LongerEpochs]
    variants: list[HomeVariant] = field(default_factory=list)
    missing: str | None = None
    baseline_label: str | None = None
    takeaway: Markup | None = None      # the post's three-line takeaway (its front matter), once it is rendered
    figure: str | None = None           # the post's key figure, for the home page
    reads: list[str] = field(default_factory=list)  # the studies a closing post reads


def _variants(study: Study) -> tuple[list[HomeVariant], str | None]:
    """The variants of a study that ran, and the baseline's label when they are compared with it."""
    stats = summary(study)
    by_name = {r.name: r for r in stats.rows}
    variants = []
    for v in study.variants:
        r = by_name.get(v.name)
        variants.append(HomeVariant(label=v.label, acc=r.acc if r else None, diff=r.diff if r else None,
                                    is_baseline=v.name == stats.baseline and bool(stats.comparisons),
                                    unavailable=v.unavailable is not None,
                                    still_learning=bool(r and r.convergence.still_learning)))
    return variants, stats.baseline_label if stats.comparisons else None


def home_rows(studies: dict[str, tuple[Path, StudyConfig]], profile: str, store: Store,
              built: set[str]) -> list[HomeRow]:
    """One row per declared study, in reading order (the studies' ``order:``; their ``date:`` fields follow it,
    newest first, so the blog lists the posts in the same order): its variants with test accuracy and interval
    (and whether their networks were still learning), the difference to the baseline, the data size and epochs,
    and the post's link when the study is in the site."""
    rows = []
    for number, (exp_id, (_, exp)) in enumerate(studies.items(), start=1):
        prof = exp.profile(profile)
        row = HomeRow(
            number=number, id=exp_id, title=exp.title, description=exp.description, trains=exp.trains,
            link=(POSTS / f"{exp_id}.md").as_posix() if exp_id in built else None, epochs=prof.epochs,
            train_size=prof.train_limit or DATASET_TRAIN_SIZE - VAL_SIZE,
            command=f"reportgen run {exp_id} --profile {profile}",
            epochs_other=[LongerEpochs(label=v.label or v.name, epochs=exp.variant_epochs(v, profile))
                          for v in exp.variants if exp.variant_epochs(v, profile) != prof.epochs])
        if exp.trains:
            try:
                study = collect(exp_id, exp, profile, store)
            except RenderError:
                row.missing = row.command
            else:
                row.variants, row.baseline_label = _variants(study)
        rows.append(row)
    return rows


@dataclass(frozen=True)
class PostFront:
    """What the home page reads from a rendered post's front matter: its takeaway and its key figure."""
    takeaway: str | None = None
    key_figure: str | None = None


def post_front(docs: Path, exp_id: str) -> PostFront:
    """The front matter of a rendered post (its ``takeaway`` and ``key_figure``); empty when there is none."""
    path = docs / POSTS / f"{exp_id}.md"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if not text.startswith("---\n"):
        return PostFront()
    front = yaml.safe_load(text[4:].split("\n---\n", 1)[0])
    if not isinstance(front, dict):
        return PostFront()
    return PostFront(takeaway=front.get("takeaway") or None, key_figure=front.get("key_figure") or None)


HOME_FIGURES = Path("assets") / "figures" / "home"  # under docs/: generated, never committed


def _home_figure(docs: Path, exp_id: str, key_figure: str | None) -> str | None:
    """A copy of a post's key figure beside the home page (docs/assets/figures/home/<id>.png), its path from there.
    The home page does not reach into a post's own folder: a site engine may place post assets elsewhere."""
    source = docs / POSTS / key_figure if key_figure else None
    if source is None or not source.is_file():
        return None
    target = HOME_FIGURES / f"{exp_id}{source.suffix}"
    atomic_write(docs / target, source.read_bytes())
    return target.as_posix()


def render_home(studies: dict[str, tuple[Path, StudyConfig]], profile: str, store: Store, docs: Path,
                built: set[str]) -> Path:
    """Write ``docs/index.md`` for the studies in ``built`` (the others are listed with what makes them)."""
    rows = home_rows(studies, profile, store, built)
    for row in rows:
        front = post_front(docs, row.id) if row.link else PostFront()
        # the post's own rendered Markdown (already escaped where it quotes a study's text): placed as it is
        row.takeaway = Markup(front.takeaway) if front.takeaway else None
        row.figure = _home_figure(docs, row.id, front.key_figure)
        row.reads = list(studies[row.id][1].reads)
    seeds = sorted({s for _, exp in studies.values() for s in exp.profile(profile).seeds})
    still_learning = any(v.still_learning for row in rows if row.link for v in row.variants)
    text = package_environment().get_template("_home.md.j2").render(
        rows=rows, profile=profile, seeds=seeds, version=__version__, still_learning=still_learning,
        confidence_pct=round(100 * CONFIDENCE))
    target = docs / HOME
    atomic_write(target, text.encode())
    return target
