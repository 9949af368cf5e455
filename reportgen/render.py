"""Render posts: cached results -> analyses (numbers + figures) -> Jinja template -> Markdown under docs/.

Templates hold prose, Python computes numbers: a template only formats values from the context built here.
Rendering reads results and never writes to them; a post is written only after everything it needs succeeded.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import jinja2
from markupsafe import Markup

from . import __version__
from .analysis import ANALYSES, Study, VariantResults, summary
from .figures import FigureWriter, as_markdown
from .store import Store, atomic_write, check_run

TEMPLATES = Path(__file__).parent / "templates"
POSTS = Path("blog") / "posts"
UNAVAILABLE = "UNAVAILABLE.txt"


class RenderError(Exception):
    """One line: what is missing and the command that makes it."""


def collect(exp_id: str, exp: Any, profile: str, store: Store) -> Study:
    """The complete runs of every variant whose config is exactly what ``profile`` asks for."""
    variants, missing = [], []
    for v in exp.variants:
        result = VariantResults(name=v.name, label=v.label or v.name, description=v.description,
                                dataset=v.dataset or exp.dataset)
        for seed in exp.profile(profile)["seeds"]:
            path = store.run_dir(exp_id, v.name, seed)
            state = check_run(path)
            if state.status == "complete":
                run = store.load(exp_id, v.name, seed)
                if run.config == json.loads(json.dumps(exp.resolve(v, seed, profile))):
                    result.runs.append(run)
                    continue
                state_text = "stale (trained with another config or profile)"
            else:
                state_text = state.status + (f": {state.reason}" if state.reason else "")
            note = path.parent / UNAVAILABLE
            if v.optional and note.exists():
                result.unavailable = note.read_text().strip()
                result.runs = []
                break
            missing.append(f"{v.name}/seed-{seed} ({state_text})")
        variants.append(result)
    if missing:
        raise RenderError(f"{exp_id}: no results for {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}; "
                          f"run: reportgen run {exp_id} --profile {profile}")
    return Study(id=exp_id, config=exp, profile=profile, variants=variants)


def reproducibility(study: Study, profile: str) -> dict[str, Any]:
    """What a reader needs to rerun the study: command, seeds, epochs, device, versions, wall time, commit."""
    runs = [r for v in study.available for r in v.runs]
    if not runs:
        return {"command": f"reportgen run {study.id} --profile {profile}", "runs": 0}
    records = [r.record for r in runs]
    commits = sorted({rec.get("git_commit") or "not a git checkout" for rec in records})
    return {
        "command": f"reportgen run {study.id} --profile {profile} && reportgen build --profile {profile}",
        "profile": profile, "runs": len(runs),
        "seeds": sorted({r.seed for r in runs}),
        "epochs": sorted({len(r.history["epochs"]) for r in runs}),
        "devices": sorted({rec["device"] for rec in records}),
        "versions": records[0]["versions"],
        "wall_seconds": sum(rec["wall_seconds"] for rec in records),
        "commits": commits,
        "train_sizes": sorted({rec.get("train_size") for rec in records if rec.get("train_size")}),
    }


def markdown_text(value: Any) -> Any:
    """Every ``{{ value }}`` passes through here: strings (titles, descriptions from experiment files) have their
    HTML metacharacters escaped so they always render as text, never as markup. Values wrapped in ``Markup``
    (generated Markdown such as figure links or commands) pass unchanged."""
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _number(x: float, digits: int = 2) -> str:
    return "—" if x is None or x != x else f"{x:.{digits}f}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=False,
                             finalize=markdown_text, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["figure"] = lambda f: Markup(as_markdown(f))
    env.filters["pct"] = _number
    env.filters["code"] = lambda s: Markup(str(s))
    env.filters["yaml_str"] = lambda s: Markup(json.dumps(markdown_text(str(s)), ensure_ascii=False))
    env.filters["thousands"] = lambda n: f"{int(n):,}"
    env.filters["seconds"] = _format_seconds
    return env


def _format_seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def render_study(exp_id: str, exp: Any, profile: str, store: Store, docs: Path) -> Path:
    study = collect(exp_id, exp, profile, store)
    post_dir = docs / POSTS
    figures = FigureWriter(directory=post_dir / exp_id, link_prefix=exp_id)
    analyses = {name: ANALYSES[name](study, figures) for name in exp.analyses}
    context = {
        "exp": exp, "study": study, "profile": profile, "summary": summary(study) if study.available else None,
        "analyses": analyses, "repro": reproducibility(study, profile), "version": __version__,
        "unavailable": [v for v in study.variants if v.unavailable],
    }
    template = _environment().get_template(f"{exp.template or exp_id}.md.j2")
    text = template.render(**context)
    target = post_dir / f"{exp_id}.md"
    atomic_write(target, text.encode())
    return target


def render_all(experiments: dict, names: list[str], profile: str, store: Store, docs: Path) -> Iterator[str]:
    """Render each named study; the message of the first failure says which runs are missing."""
    for name in names:
        started = time.perf_counter()
        _, exp = experiments[name]
        path = render_study(name, exp, profile, store, docs)
        yield f"rendered {path} in {time.perf_counter() - started:.1f}s"
