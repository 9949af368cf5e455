"""The three stages, in one place: ``run`` (train what is not cached, then fill the analysis cache), ``render``
(posts from cached results) and ``build`` (the site from every study with complete results).

Everything a user can get wrong in a study — its YAML, an analysis that does not apply, its prose — is checked by
:func:`preflight` before anything is trained or written. The command line (:mod:`reportgen.cli`) only parses
arguments and maps the errors raised here to exit codes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import analyses
from .config import ConfigError, discover, select
from .engines import DEFAULT_ENGINE
from .fsutil import hashing_once
from .prose import ProseError, check, prose_path
from .methods import write_methods
from .scaffold import write_guide
from .store import Store
from .study import UNAVAILABLE, RenderError, collect

Log = Callable[[str], None]


@dataclass
class Workspace:
    """Where a project keeps its studies, results and docs."""
    studies_dir: Path
    store: Store
    docs: Path

    def studies(self) -> dict:
        """Every declared study by id (one-line ConfigError on any bad file)."""
        return discover(self.studies_dir)


# ---- checks before any work ----------------------------------------------------------------------------------
def preflight(studies: dict, names: list[str], profile: str) -> None:
    """Every selected study's analyses apply to its models, and its prose (if any) renders against
    placeholders. Raises ConfigError/ProseError: one line naming the file, the line or field, and what is
    allowed."""
    from .context import setup
    from .study import Study, VariantResults
    for name in names:
        path, exp = studies[name]
        for index, analysis in enumerate(exp.analyses):
            reason = analyses.why_not(analysis, exp, profile)
            if reason:
                raise ConfigError(f"{path}: analyses[{index}]: {reason}")
        prose_file = prose_path(path, exp)
        if prose_file is not None:
            empty = Study(id=name, config=exp, profile=profile,
                          variants=[VariantResults(name=v.name, label=v.label or v.name, description=v.description,
                                                   dataset=v.dataset or exp.dataset) for v in exp.variants])
            check(prose_file, exp, setup(exp, empty, profile), profile)


# ---- run -----------------------------------------------------------------------------------------------------
def run(ws: Workspace, names: list[str] | tuple[str, ...], profile: str, device: str, log: Log,
        force: bool = False, workers: int | None = None) -> None:
    """Train every run of the named studies (default: all) that is not cached, in ``workers`` parallel processes
    (default: one per core on a CPU), then precompute their analyses."""
    from .workers import default_workers, execute_all
    from .data import DataError, load_splits, provision
    from .store import atomic_write
    from .train import deterministic, execute, plan_runs, resolve_device
    studies = ws.studies()
    selected = select(studies, names)
    preflight(studies, selected, profile)
    torch_device = resolve_device(device)
    deterministic()
    needed: dict[str, list[tuple[str, str, bool]]] = {}
    for name in selected:
        exp = studies[name][1]
        if exp.trains:
            for v in exp.variants:
                needed.setdefault(v.dataset or exp.dataset, []).append((name, v.name, v.optional))
    with ws.store.lock():
        removed, restored = ws.store.clean_partials()
        if removed:
            log(f"removed {removed} half-written run(s) left by an interrupted run")
        if restored:
            log(f"restored {restored} complete run(s) that an interrupted run had not yet moved into place")
        for dataset, users in needed.items():
            try:
                provision(dataset, log=log)
            except DataError as exc:
                if not all(optional for _, _, optional in users):
                    raise
                for study_id, variant, _ in users:
                    atomic_write(ws.store.root / study_id / variant / UNAVAILABLE, (str(exc) + "\n").encode())
                log(f"warning: {dataset} left out ({exc})")
        planned = plan_runs(studies, selected, profile, ws.store, checksums(set(needed)))
        todo = [p for p in planned if p.status != "no-data" and (force or p.status != "complete")]
        cached = sum(p.status == "complete" for p in planned)
        kept = 0 if force else sum(p.status == "kept" for p in todo)  # --force retrains those too
        log(f"{cached + kept} of {len(planned)} runs cached"
            + (f" ({kept} kept from another config or profile, moved back without training)" if kept else "")
            + f"; {len(todo) - kept} to run on {torch_device}"
            + (" (--force retrains cached runs)" if force else ""))
        for p in todo:
            if p.status in ("stale", "corrupt", "incomplete"):
                log(f"{p.study}/{p.variant}/seed-{p.seed}: {p.status} ({p.reason}); rerunning"
                    + (", the run there is kept" if p.status == "stale" else ""))
        splits: dict[str, object] = {}

        def serial(p) -> None:
            if p.dataset not in splits:
                splits[p.dataset] = load_splits(p.dataset)
            execute(p, splits[p.dataset], torch_device, ws.store, profile, log, force=force)

        count = workers if workers is not None else default_workers(torch_device.type)
        execute_all(todo, torch_device, ws.store, profile, log, force, count, serial)
        for p in todo:
            (ws.store.root / p.study / p.variant / UNAVAILABLE).unlink(missing_ok=True)
    precompute(studies, selected, profile, ws.store, log)


def checksums(datasets: set[str]) -> dict[str, str | None]:
    """The recorded checksum of each provisioned dataset (None: not provisioned); part of every run's cache key."""
    from .data import dataset_checksum, is_prepared
    return {name: dataset_checksum(name) if is_prepared(name) else None for name in sorted(datasets)}


def precompute(studies: dict, selected: list[str], profile: str, store: Store, log: Log) -> None:
    """Fill the analysis cache (shift grids, activation statistics, ...) right after training, so that rendering
    these results takes seconds. Every trained study gets its checkpoints' eval-mode training accuracy (the
    results' train − validation gap). Only an optimisation: a problem here is a warning, and rendering retries."""
    from .analyses._train_eval import precompute_train_accuracy
    for name in selected:
        exp = studies[name][1]
        steps = [step for step in map(analyses.get, exp.analyses) if step.precompute is not None]
        if not exp.trains:
            continue
        started = time.perf_counter()
        try:
            study = collect(name, exp, profile, store)
            precompute_train_accuracy(study)
            for step in steps:
                step.precompute(study)
        except (analyses.AnalysisError, RenderError) as exc:
            log(f"warning: analyses of {name} not precomputed ({exc}); `reportgen render` will compute them")
            continue
        seconds = time.perf_counter() - started
        if seconds > 1.0:
            done = ", ".join(["training accuracy"] + [s.name for s in steps])
            log(f"{name}: analysis cache ({done}) filled in {seconds:.1f}s")


# ---- render and build ----------------------------------------------------------------------------------------
def complete(studies: dict, names: list[str], profile: str, store: Store) -> list[str]:
    """The named studies that have every run of ``profile`` (an illustration that trains nothing always has)."""
    done = []
    for name in names:
        exp = studies[name][1]
        try:
            if exp.trains:
                collect(name, exp, profile, store)
        except RenderError:
            continue
        done.append(name)
    return done


def render(ws: Workspace, names: list[str] | tuple[str, ...], profile: str, log: Log) -> list[str]:
    """Render the named studies' posts (default: all; RenderError if one lacks results), then the home page.
    The posts may link to each other and to the posts already in docs/."""
    from .post import POSTS
    studies = ws.studies()
    selected = select(studies, names)
    preflight(studies, selected, profile)
    site = set(selected) | {n for n in studies if (ws.docs / POSTS / f"{n}.md").exists()}
    with hashing_once():  # the runs are checked for every post and again for the home page
        _render_posts(ws, studies, selected, site, profile, log)
    return selected


def _render_posts(ws: Workspace, studies: dict, selected: list[str], site: set[str], profile: str,
                  log: Log) -> None:
    """The posts of ``selected`` (checked by :func:`preflight`), the home page of a site holding ``site``, the
    "Write your own study" page and the Methods page."""
    from .home import render_home
    from .post import render_post
    declared = {n: studies[n][1].title for n in studies if n in site}
    for name in selected:
        started = time.perf_counter()
        path, exp = studies[name]
        target, kept = render_post(name, exp, profile, ws.store, ws.docs, declared, prose_path(path, exp),
                                   keep_unchanged=True)
        log(f"kept {target}: its inputs are unchanged" if kept
            else f"rendered {target} in {time.perf_counter() - started:.1f}s")
    home = render_home(studies, profile, ws.store, ws.docs, site)
    log(f"rendered {home} ({len(site)} of {len(studies)} studies in the site)")
    write_guide(ws.docs)
    write_methods(ws.docs)


def build(ws: Workspace, names: list[str] | tuple[str, ...], profile: str, log: Log, project: Path,
          engine: str = DEFAULT_ENGINE) -> Path:
    """The site of the named studies (default: all) that have complete results for ``profile``: their posts,
    the home page listing every declared study, and a strict build by ``engine`` (``mkdocs`` or ``zensical``,
    see :mod:`reportgen.engines`) into site/. A study without complete results is not an error: it gets no post
    and the home page says how to run it. Posts of studies that are not in this site (another profile's, a
    subset's) are removed, so one site holds one profile."""
    from .post import remove_post
    from .site import build_site
    studies = ws.studies()
    selected = select(studies, names)
    preflight(studies, selected, profile)
    if not (project / "mkdocs.yml").is_file():
        raise ConfigError(f"{project / 'mkdocs.yml'}: not found; run `reportgen build` from the project root")
    with hashing_once():  # the runs are checked here, for every post and for the home page: each file read once
        ready = complete(studies, selected, profile, ws.store)
        for name in sorted(set(studies) | generated_posts(ws.docs)):
            if name not in ready and remove_post(ws.docs, name):
                log(f"removed the post of {name} (not in this {profile} site)")
        for name in selected:
            if name not in ready:
                log(f"{name}: not run in the {profile} profile; left out of the site (run: reportgen run {name} "
                    f"--profile {profile})")
        _render_posts(ws, studies, ready, set(ready), profile, log)
    return build_site(project, engine=engine)


def generated_posts(docs: Path) -> set[str]:
    """The ids of the posts under docs/blog/posts (all generated: the folder is not hand-written)."""
    from .post import POSTS
    return {p.stem for p in (docs / POSTS).glob("*.md")}


__all__ = ["ConfigError", "ProseError", "Workspace", "build", "preflight", "render", "run"]
