"""One post: a study's cached results → its analyses (numbers and figures) → Markdown under ``docs/blog/posts/``.

Every study gets the same frame (``templates/_post.md.j2``): front matter and question, the setup table, the models
generated from the zoo, the body, and the reproduce box. The body is the study's own prose
(``experiments/<id>.md``, rendered in a sandbox by :mod:`reportgen.prose`) with the blocks it places; every block it
does not place follows it: the results table, then each declared analysis in the order of the YAML. A study with
no prose gets exactly those blocks. Every training post then ends with "What this shows — and what it doesn't"
(:mod:`reportgen.conclusions`), before the reproduce box, unless the prose placed it (``shows()``).

Rendering reads results and never writes to them; the post and its figure folder are replaced only after
everything rendered (figures are drawn into a hidden staging folder first).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from markupsafe import Markup

from . import __version__, analyses, conclusions, confounds, crossread, prose, stamp, translations
from .answers import ExercisesSection, section as exercise_section
from .charts import results_chart
from .context import Setup, VariantSetup, reproducibility, setup
from .markdown import markdown_text, package_environment
from .config import StudyConfig
from .stats import Comparison
from .summary import Summary, VariantRow, summary
from .fsutil import atomic_write, swap_dir
from .store import Store
from .study import RenderError, Study, collect

if TYPE_CHECKING:
    from .figures import FigureWriter

POSTS = Path("blog") / "posts"


def post_link(declared: dict[str, str]):
    """``post("tiny")``: a relative link to another study's post when that study is in the site, else its title
    as plain text — never a link that a strict build would reject."""
    def link(exp_id: str, text: str | None = None) -> Markup:
        label = markdown_text(text if text is not None else declared.get(exp_id, exp_id))
        return Markup(f"[{label}]({exp_id}.md)" if exp_id in declared else label)
    return link


def models(facts: Setup) -> list[dict[str, Any]]:
    """The distinct models of a study, each with the labels of the variants that use it, from the zoo
    descriptions that :func:`reportgen.context.setup` already made (``facts``): no model is built twice."""
    found: dict[str, dict[str, Any]] = {}
    for row in facts.variants:
        key = json.dumps([row.model.text, [asdict(layer) for layer in row.model.layers]], sort_keys=True, default=str)
        found.setdefault(key, {**vars(row.model), "variants": []})["variants"].append(row.label)
    return list(found.values())


def _measure(c: Comparison) -> prose.Measure:
    return prose.Measure.of(c, " points", verdict=c.verdict, train_change=c.train_change, val_change=c.val_change)


def _variant(facts: VariantSetup, row: VariantRow | None) -> prose.VariantFacts:
    """What prose reads with ``variant("name")``: the setup's facts and, once it ran, its convergence and its
    training accuracy at the checkpoint, running (counted during training) and in eval mode (NaN: not measured)."""
    nan = float("nan")
    return prose.VariantFacts(
        label=facts.label, description=facts.description, parameters=facts.parameters, macs=facts.macs,
        dataset=facts.dataset, max_shift=facts.max_shift, epochs=facts.epochs,
        still_learning=bool(row and row.convergence.still_learning),
        train_acc_running=float(row.train_acc_running.mean) if row else nan,
        train_acc_eval=float(row.train_acc_eval.mean) if row and row.train_acc_eval else nan)


def _blocks(exp: StudyConfig, stats: Summary | None, facts: Setup, sections: dict[str, Markup],
            render: Any, measured: dict[str, Any]) -> prose.Blocks:
    rows = {r.name: r for r in (stats.rows if stats else [])}
    return prose.Blocks(
        analyses=sections,
        results=render("_results.md.j2") if exp.trains and stats else Markup(""),
        models=render("_models.md.j2") if exp.trains else Markup(""),
        gap=render("_gap.md.j2") if exp.trains and stats else Markup(""),
        accuracy={n: prose.Measure.of(r.acc, "%") for n, r in rows.items()},
        differences={n: _measure(r.diff) for n, r in rows.items() if r.diff},
        gap_differences={n: _measure(r.gap_diff) for n, r in rows.items() if r.gap_diff},
        variants={v.name: _variant(v, rows.get(v.name)) for v in facts.variants},
        baseline=stats.baseline if stats else None,
        shows=prose.SHOWS_MARK if exp.trains and stats else Markup(""), measured=measured)


def body(exp: StudyConfig, prose_file: Path | None, blocks: prose.Blocks, namespace: dict[str, Any],
         closing: Callable[[list[str], Markup], Markup] | None = None) -> tuple[str, str, str]:
    """The post's models section, its body — the prose with what it places, then every block it did not place —
    and its closing section ``closing(placed, answer)`` for the frame to append after the body, unless the prose placed
    it with ``shows()`` (then it is in the body, where the prose put it, and the third value is empty)."""
    parts = []
    if prose_file is not None and prose_file.is_file():
        parts += [translations.untranslated_note(prose_file)]  # another edition's post, its prose still in English
        parts.append(prose.render(prose_file, prose.context(blocks, **namespace)).strip("\n") + "\n")
    if "results" not in blocks.placed:
        parts.append(blocks.results)
    parts += [blocks.analyses[name] for name in exp.analyses if f"analysis:{name}" not in blocks.placed]
    models_text = "" if "models" in blocks.placed else blocks.models
    text = "\n".join(str(p).strip("\n") + "\n" for p in parts if str(p).strip())
    section = str(closing(blocks.placed, blocks.answer)).strip("\n") if closing is not None else ""
    if "shows" in blocks.placed:
        placed = section if blocks.shows_heading else section.split("\n", 1)[-1].strip("\n")
        return models_text, text.replace(str(prose.SHOWS_MARK), placed, 1), ""
    return models_text, text, section + "\n" if section else ""


def render_study(exp_id: str, exp: StudyConfig, profile: str, store: Store, docs: Path,
                 declared: dict[str, str] | None = None, prose_file: Path | None = None,
                 others: dict[str, Any] | None = None, answers: bool = True) -> Path:
    """Write ``docs/blog/posts/<exp_id>.md`` (and its figures) from the cached results of ``profile``.
    ``declared`` (study id -> title) are the posts of the site that this one may link to; ``others`` (study id ->
    its config) the studies its prose reads (``reads:``); ``answers`` false publishes the exercises without their
    measured answers."""
    return render_post(exp_id, exp, profile, store, docs, declared, prose_file, others, answers)[0]


def render_post(exp_id: str, exp: StudyConfig, profile: str, store: Store, docs: Path,
                declared: dict[str, str] | None = None, prose_file: Path | None = None,
                others: dict[str, Any] | None = None, answers: bool = True,
                keep_unchanged: bool = False) -> tuple[Path, bool]:
    """:func:`render_study`, and with ``keep_unchanged`` a post whose inputs (:mod:`reportgen.stamp`) are those of
    its last render, and which is still on disk as written then, is kept instead: (the post, whether it was kept)."""
    study = collect(exp_id, exp, profile, store)
    post_dir = docs / POSTS
    post_dir.mkdir(parents=True, exist_ok=True)
    _recover(post_dir, exp_id)
    declared = declared if declared is not None else {exp_id: exp.title}
    key = stamp.inputs(study, exp, profile, declared, prose_file, store.root, others,
                       answers) if keep_unchanged else ""
    if keep_unchanged and stamp.fresh(exp_id, key, post_dir):
        return post_dir / f"{exp_id}.md", True
    staging = Path(tempfile.mkdtemp(prefix=f".{exp_id}.render-", dir=post_dir))
    try:
        from .figures import FigureWriter  # matplotlib: only when a post is rendered
        figures = FigureWriter(directory=staging, link_prefix=exp_id)
        exercises = exercise_section(study, store, figures, answers)
        text = _render(study, exp, profile, figures, declared, prose_file,
                       crossread.readers(others or {}, profile, store, figures, post_link(declared)), exercises)
        swap_dir(staging, post_dir / exp_id, post_dir / f".{exp_id}.old")  # _recover made sure .old is free
        atomic_write(post_dir / f"{exp_id}.md", text.encode())
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if keep_unchanged:
        stamp.record(exp_id, key, post_dir)
    return post_dir / f"{exp_id}.md", False


def _render(study: Study, exp: StudyConfig, profile: str, figures: FigureWriter, declared: dict[str, str],
            prose_file: Path | None, studies: Callable[[str], Any] | None = None,
            exercises: ExercisesSection | None = None) -> str:
    env = package_environment()
    stats = summary(study) if study.variants else None
    facts = setup(exp, study, profile)
    link = post_link(declared)
    common = {"exp": exp, "study": study, "profile": profile, "summary": stats, "setup": facts, "post": link,
              "repro": reproducibility(study, profile), "version": __version__,
              "unavailable": [v for v in study.variants if v.unavailable], "models": models(facts),
              "results_chart": results_chart(study, stats) if stats else None}
    sections, findings, measured = {}, [], {}
    for name in exp.analyses:
        step = analyses.get(name)
        try:
            with_exercises = getattr(step, "with_exercises", False) and exercises is not None
            result = step.compute(exercises.study_with(study) if with_exercises else study, figures)
        except analyses.AnalysisError as exc:  # e.g. the images it needs are not provisioned: one line
            raise RenderError(f"{study.id}: {exc}") from None
        measured[name] = result
        sections[name] = Markup(env.get_template(analyses.get(name).template).render(a=result, **common))
        hook = getattr(analyses.get(name), "findings", None)
        findings += hook(result) if hook is not None else []

    def render(template: str) -> Markup:
        return Markup(env.get_template(template).render(**common))

    def closing(placed: list[str], answer: Markup) -> Markup:  # "What this shows — and what it doesn't", once
        # the body is known; an illustration that trains nothing has one when its prose gives an answer
        if not (exp.trains and stats):
            if not answer:
                return Markup("")
            data = conclusions.Closing(question=exp.question, illustration=True, reads=bool(exp.reads))
        else:
            data = conclusions.closing(exp, stats, facts, confounds.differences(exp, profile), findings, placed)
        return Markup(env.get_template("_shows.md.j2").render(c=data, answer=answer, **common))

    blocks = _blocks(exp, stats, facts, sections, render, measured)
    models_text, text, shows = body(exp, prose_file, blocks, {"setup": facts, "profile": profile, "exp": exp,
                                                               "post": link, "studies": studies}, closing)
    key = first_figure(sections.get(blocks.key_figure, "")) if blocks.key_figure else None
    return env.get_template("_post.md.j2").render(body=Markup(text), shows=Markup(shows), takeaway=blocks.takeaway,
                                                  key_figure=key, exercises=exercises,
                                                  **{**common, "models": Markup(models_text)})


def first_figure(markdown: str) -> str | None:
    """The path of the first figure (``![alt](path)``) in a rendered section, relative to the posts' folder."""
    match = re.search(r"!\[(?:\\.|[^\]\\])*\]\(([^)\s]+)\)", str(markdown))
    return match.group(1) if match else None


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


def remove_post(docs: Path, exp_id: str) -> bool:
    """Remove a generated post and its figures (a study left out of this site); True if there was one."""
    post_dir = docs / POSTS
    if post_dir.is_dir():
        _recover(post_dir, exp_id)
    found = (post_dir / f"{exp_id}.md").exists()
    (post_dir / f"{exp_id}.md").unlink(missing_ok=True)
    shutil.rmtree(post_dir / exp_id, ignore_errors=True)
    return found
