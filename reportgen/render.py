"""Render posts: cached results -> analyses (numbers + figures) -> Jinja template -> Markdown under docs/.

Templates hold prose, Python computes numbers: a template only formats values from the context built here, and
every sentence that draws a conclusion from the numbers (``summary.comparisons[*].verdict``) is computed in
:mod:`reportgen.analysis`. Rendering reads results and never writes to them; a post is written only after everything
it needs succeeded. ``render_all`` also regenerates the home page (``docs/index.md``) from whatever complete results
exist for *every* declared study, so rendering a subset never drops the others from it.

Text that comes from experiment files (titles, descriptions, labels) is escaped on its way into the Markdown, so it
always appears literally: no HTML, no Markdown markup, no attribute lists, no math, no Jinja.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import jinja2
from markupsafe import Markup

from . import __version__
from .analysis import ANALYSES, DATASET_NAMES, AnalysisError, Study, VariantResults, summary
from .figures import FigureWriter, as_markdown
from .store import Store, atomic_write, check_run, swap_dir

TEMPLATES = Path(__file__).parent / "templates"
POSTS = Path("blog") / "posts"
HOME = "index.md"
HOME_TEMPLATE = "_home.md.j2"
UNAVAILABLE = "UNAVAILABLE.txt"
IMAGE_SIDE = 28
DATASET_TRAIN_SIZE = 60_000  # MNIST, Fashion-MNIST and KMNIST all have 60,000 training and 10,000 test images


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
                result.unavailable = note.read_text().strip() or "its dataset could not be provisioned"
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
    if not runs:  # an illustration (trains: false), or every variant unavailable: what rendering used
        from .train import git_commit, versions
        return {
            "command": f"reportgen render {study.id} --profile {profile}", "profile": profile, "runs": 0,
            "seeds": [], "epochs": [], "devices": ["cpu (rendering only; nothing is trained)"],
            "versions": versions(), "wall_seconds": 0.0, "commits": [git_commit() or "not a git checkout"],
            "train_sizes": [],
        }
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


# ---- what each variant is ----------------------------------------------------------------------------------
def describe_model(model: dict[str, Any]) -> dict[str, Any]:
    """A one-line description and the parameter count of a resolved model config (builds it; cheap)."""
    from torch import nn

    from .models import build_model, count_parameters
    name, options = model["name"], model["options"]
    net = build_model(name, **options)
    widths = [m.out_features for m in net.modules() if isinstance(m, nn.Linear)][:-1]
    if name == "lenet":
        parts = ["2×2 max-pooling" if options.get("pooling", True) else "no pooling"]
        if options.get("dropout"):
            parts.append(f"dropout {options['dropout']:g}")
        if options.get("activation", "relu") != "relu":
            parts.append(options["activation"])
        text = f"LeNet-5 style CNN ({', '.join(parts)})"
    elif name == "tiny":
        text = "one 5×5 filter, ReLU, 2×2 max-pooling, 10 hidden units"
    elif name == "deep_pool":
        text = f"six 3×3 convolutions ({options.get('activation', 'tanh')}), two 2×2 max-pools, one linear layer"
    else:
        hidden = " → ".join(str(w) for w in widths) or "none"
        matched = f", sized to match {options['match_params_of']}" if options.get("match_params_of") else ""
        text = f"fully connected, hidden layer{'s' if len(widths) > 1 else ''} {hidden}{matched}"
    return {"name": name, "text": text, "parameters": count_parameters(net)}


def describe_training(training: dict[str, Any]) -> str:
    """One line for a resolved training config (what the setup table says)."""
    parts = [f"{training['optimizer'].upper() if training['optimizer'] == 'sgd' else 'Adam'}, "
             f"learning rate {training['lr']:g}"]
    if training["optimizer"] == "sgd" and training["momentum"]:
        parts.append(f"momentum {training['momentum']:g}")
    if training["weight_decay"]:
        parts.append(f"weight decay {training['weight_decay']:g}")
    parts.append(f"batch size {training['batch_size']}")
    parts.append(f"{training['epochs']} epoch{'s' if training['epochs'] != 1 else ''}")
    if training["schedule"] == "step":
        parts.append(f"learning rate × {training['gamma']:g} every {training['step_size']} epochs")
    elif training["schedule"] == "cosine":
        parts.append("cosine learning-rate schedule")
    return ", ".join(parts)


def describe_augment(augment: dict[str, Any] | None) -> str:
    if not augment:
        return "none"
    parts = []
    if augment.get("rotation"):
        parts.append(f"rotation ±{augment['rotation']:g}°")
    if augment.get("translate"):
        parts.append(f"shift ±{100 * augment['translate']:g}% of the image")
    scale = augment.get("scale") or (1.0, 1.0)
    if tuple(scale) != (1.0, 1.0):
        parts.append(f"scale {scale[0]:g}–{scale[1]:g}")
    if augment.get("shear"):
        parts.append(f"shear ±{augment['shear']:g}°")
    return ", ".join(parts) or "none"


def setup(exp: Any, study: Study, profile: str) -> dict[str, Any]:
    """Per-variant resolved model and training (seed 0 of the profile), and the profile's data budget."""
    prof = exp.profile(profile)
    full = exp.profile("full")
    rows = []
    for v, result in zip(exp.variants, study.variants):
        config = exp.resolve(v, prof["seeds"][0], profile)
        model = describe_model(config["model"])
        rows.append({
            "name": v.name, "label": result.label, "description": v.description, "optional": v.optional,
            "dataset": config["dataset"], "dataset_name": DATASET_NAMES.get(config["dataset"], config["dataset"]),
            "model": model, "parameters": model["parameters"], "training": describe_training(config["training"]),
            "augment": describe_augment(config["training"].get("augment")),
            "max_shift": (config["training"].get("augment") or {}).get("translate", 0.0) * IMAGE_SIDE,
            "unavailable": result.unavailable,
        })
    trainings = {r["training"] for r in rows}
    first = next((r for v in study.available for r in v.runs), None)
    val_size = first.config["val_size"] if first else 5000
    train_total = DATASET_TRAIN_SIZE - val_size
    test_sizes = sorted({r.metrics["test_size"] for v in study.available for r in v.runs})
    return {
        "variants": rows, "training": rows[0]["training"] if len(trainings) == 1 and rows else None,
        "augmented": any(r["augment"] != "none" for r in rows),
        "datasets": list(dict.fromkeys(r["dataset_name"] + (" (left out)" if r["unavailable"] else "") for r in rows)),
        "seeds": prof["seeds"], "epochs": prof["epochs"], "train_limit": prof["train_limit"],
        "eval_limit": prof["eval_limit"], "train_total": train_total,
        "val_size": min(val_size, prof["eval_limit"]) if prof["eval_limit"] else val_size,
        "test_sizes": test_sizes,
        "full": {"seeds": full["seeds"], "epochs": full["epochs"], "train_limit": full["train_limit"]},
    }


# ---- escaping and formatting -------------------------------------------------------------------------------
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]|$#!])")


def html_text(value: str) -> str:
    """HTML metacharacters escaped: the string shows as text in HTML (and in YAML front matter values)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_text(value: Any) -> Any:
    """Every ``{{ value }}`` passes through here: strings (titles, descriptions from experiment files) have their
    HTML metacharacters escaped and Markdown's inline metacharacters backslash-escaped, so they always render as
    text: never as HTML (``<script>``), emphasis, links, table cells (``|``), attribute lists (``{: onclick=...}``),
    math (``$``) or code. Jinja never evaluates a value, so ``{{ 7*7 }}`` in a title stays those characters.
    Values wrapped in ``Markup`` (generated Markdown such as figure links or commands) pass unchanged."""
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return html_text(_MARKDOWN_SPECIAL.sub(r"\\\1", value))


def _number(x: float | None, digits: int = 2) -> str:
    return "—" if x is None or x != x else f"{x:.{digits}f}".replace("-", "\u2212")


def _signed(x: float | None, digits: int = 2) -> str:
    return "—" if x is None or x != x else f"{x:+.{digits}f}".replace("-", "\u2212")


def _interval(ci: dict[str, float], digits: int = 2, signed: bool = False) -> str:
    """'88.70 to 89.54' (or '—' without an interval, e.g. a single seed)."""
    fmt = _signed if signed else _number
    if ci is None or ci["n"] < 2 or ci["low"] != ci["low"]:
        return "—"
    return f"{fmt(ci['low'], digits)} to {fmt(ci['high'], digits)}"


def _oneline(value: Any) -> str:
    return " ".join(str(value).split())


def _format_seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def _figure(f: Any) -> Markup:
    # Alt text is built from labels in experiment files: brackets would end the image syntax early.
    if isinstance(f, dict):
        f = {**f, "alt": re.sub(r"([\[\]\\])", r"\\\1", str(f["alt"]))}
    elif hasattr(f, "alt"):
        from dataclasses import replace
        f = replace(f, alt=re.sub(r"([\[\]\\])", r"\\\1", f.alt))
    return Markup(as_markdown(f))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=False,
                             finalize=markdown_text, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["figure"] = _figure
    env.filters["pct"] = _number
    env.filters["signed"] = _signed
    env.filters["interval"] = _interval
    env.filters["code"] = lambda s: Markup(str(s))
    env.filters["yaml_str"] = lambda s: Markup(json.dumps(html_text(_oneline(s)), ensure_ascii=False))
    env.filters["thousands"] = lambda n: f"{int(n):,}"
    env.filters["seconds"] = _format_seconds
    env.filters["oneline"] = _oneline
    env.filters["dataset_name"] = lambda d: DATASET_NAMES.get(d, d)
    return env


# ---- posts -------------------------------------------------------------------------------------------------
def post_link(declared: dict[str, str]):
    """``post("tiny")`` in a template: a relative link to another study's post when that study is declared (so
    `reportgen build` renders it), else its name as plain text — never a link that a strict build would reject."""
    def link(exp_id: str, text: str | None = None) -> Markup:
        label = markdown_text(text if text is not None else declared.get(exp_id, exp_id))
        return Markup(f"[{label}]({exp_id}.md)" if exp_id in declared else label)
    return link


def render_study(exp_id: str, exp: Any, profile: str, store: Store, docs: Path,
                 declared: dict[str, str] | None = None) -> Path:
    """Write ``docs/blog/posts/<exp_id>.md`` (and its figures) from the cached results of ``profile``.
    ``declared`` (study id -> title) lets a post link to the other posts of the site."""
    study = collect(exp_id, exp, profile, store)
    post_dir = docs / POSTS
    post_dir.mkdir(parents=True, exist_ok=True)
    _recover(post_dir, exp_id)
    # Figures go to a hidden staging folder (MkDocs skips dot-folders) and replace the post's folder only once the
    # template has rendered, so a failed render leaves the previous post and its figures exactly as they were.
    staging = Path(tempfile.mkdtemp(prefix=f".{exp_id}.render-", dir=post_dir))
    try:
        figures = FigureWriter(directory=staging, link_prefix=exp_id)
        try:
            analyses = {name: ANALYSES[name](study, figures) for name in exp.analyses}
        except AnalysisError as exc:  # e.g. the images the analyses need are not provisioned: one line
            raise RenderError(f"{exp_id}: {exc}") from None
        stats = summary(study) if study.variants else None
        context = {
            "exp": exp, "study": study, "profile": profile, "summary": stats, "analyses": analyses,
            "repro": reproducibility(study, profile), "version": __version__, "setup": setup(exp, study, profile),
            "unavailable": [v for v in study.variants if v.unavailable],
            "post": post_link(declared if declared is not None else {exp_id: exp.title}),
        }
        template = _environment().get_template(f"{exp.template or exp_id}.md.j2")
        text = template.render(**context)
        target = post_dir / f"{exp_id}.md"
        swap_dir(staging, post_dir / exp_id, post_dir / f".{exp_id}.old")  # _recover made sure .old is free
        atomic_write(target, text.encode())
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _recover(post_dir: Path, exp_id: str) -> None:
    """Undo what an interrupted render left: staging folders go, and a figure folder moved aside but never
    replaced is put back."""
    for leftover in post_dir.glob(f".{exp_id}.render-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    old, final = post_dir / f".{exp_id}.old", post_dir / exp_id
    if old.exists():
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, final)


# ---- the home page -----------------------------------------------------------------------------------------
def home_rows(experiments: dict, profile: str, store: Store, docs: Path) -> list[dict[str, Any]]:
    """One row per declared study, in blog order: its variants with test accuracy and interval from whatever
    complete results exist for ``profile``, the paired difference to the baseline, and a link to the post when
    it has been rendered. A study without complete results is listed, marked, with the command that makes them."""
    rows = []
    for number, (exp_id, (_, exp)) in enumerate(experiments.items(), start=1):
        post = docs / POSTS / f"{exp_id}.md"
        row: dict[str, Any] = {
            "number": number, "id": exp_id, "title": exp.title, "description": exp.description,
            "trains": exp.trains, "link": (POSTS / f"{exp_id}.md").as_posix() if post.is_file() else None,
            "variants": [], "missing": None, "baseline_label": None,
        }
        if exp.trains:
            try:
                study = collect(exp_id, exp, profile, store)
            except RenderError:
                row["missing"] = f"reportgen run {exp_id} --profile {profile}"
            else:
                stats = summary(study)
                row["baseline_label"] = stats["baseline_label"] if stats["comparisons"] else None
                by_name = {r["name"]: r for r in stats["rows"]}
                for v in study.variants:
                    r = by_name.get(v.name)
                    row["variants"].append({
                        "label": v.label, "acc": r["acc"] if r else None, "diff": r["diff"] if r else None,
                        "is_baseline": v.name == stats["baseline"] and bool(stats["comparisons"]),
                        "unavailable": v.unavailable is not None,
                    })
        rows.append(row)
    return rows


def render_home(experiments: dict, profile: str, store: Store, docs: Path) -> Path:
    """Write ``docs/index.md``: a short intro and one table of every declared study."""
    rows = home_rows(experiments, profile, store, docs)
    seeds = sorted({s for _, exp in experiments.values() for s in exp.profile(profile)["seeds"]})
    text = _environment().get_template(HOME_TEMPLATE).render(rows=rows, profile=profile, seeds=seeds,
                                                               version=__version__)
    target = docs / HOME
    atomic_write(target, text.encode())
    return target


def render_all(experiments: dict, names: list[str], profile: str, store: Store, docs: Path) -> Iterator[str]:
    """Render each named study, then the home page of all of them; the message of the first failure says which
    runs are missing."""
    declared = {exp_id: exp.title for exp_id, (_, exp) in experiments.items()}
    for name in names:
        started = time.perf_counter()
        _, exp = experiments[name]
        path = render_study(name, exp, profile, store, docs, declared)
        yield f"rendered {path} in {time.perf_counter() - started:.1f}s"
    path = render_home(experiments, profile, store, docs)
    yield f"rendered {path} (all {len(experiments)} studies)"
