"""The three stages, in one place: ``run`` (train what is not cached, then fill the analysis cache), ``render``
(posts from cached results) and ``build`` (the site from every study with complete results).

Everything a user can get wrong in a study — its YAML, an analysis that does not apply, its prose — is checked by
:func:`preflight` before anything is trained or written. The command line (:mod:`reportgen.cli`) only parses
arguments and maps the errors raised here to exit codes.
"""
from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import analyses, editions, translations
from .config import ConfigError, discover, select
from .engines import DEFAULT_ENGINE
from .fsutil import hashing_once
from .prose import ProseError, check, prose_path
from .suggest import suggest
from .methods import METHODS, write_methods
from .scaffold import write_guide
from .store import Store
from .study import UNAVAILABLE, RenderError, collect
from .settings import OPTIONAL_DATASET_RETRY_S

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
    from .stamp import CHECKED, preflight_key, remember, seen
    for name in names:
        path, exp = studies[name]
        prose_file = prose_path(path, exp)
        reads = {r: studies[r][1] for r in exp.reads if r in studies and r != name}
        key = preflight_key(name, exp, profile, prose_file, list(studies), reads, translations.files(path, exp))
        if not seen(CHECKED, name, key):  # a study that passed with the same inputs passes again
            _check_study(studies, name, profile, prose_file)
            translations.check(studies, [name], profile)  # its <id>.pt.md against placeholders
            remember(CHECKED, name, key)
    translations.check_texts(studies)  # every <id>.pt.yaml: a misspelt key is found before anything trains


def _check_study(studies: dict, name: str, profile: str, prose_file: Path | None) -> None:
    from .context import setup
    from .study import Study, VariantResults
    path, exp = studies[name]
    for index, read in enumerate(exp.reads):
        if read not in studies or read == name:
            others = [n for n in studies if n != name]
            raise ConfigError(f"{path}: reads[{index}]: no other study {read!r}{suggest(read, others)} "
                              f"(studies: {', '.join(others)})")
    for index, analysis in enumerate(exp.analyses):
        reason = analyses.why_not(analysis, exp, profile)
        if reason:
            raise ConfigError(f"{path}: analyses[{index}]: {reason}")
    if prose_file is not None:
        empty = Study(id=name, config=exp, profile=profile,
                      variants=[VariantResults(name=v.name, label=v.label or v.name, description=v.description,
                                               dataset=v.dataset or exp.dataset) for v in exp.variants])
        check(prose_file, exp, setup(exp, empty, profile), profile)


# ---- run -----------------------------------------------------------------------------------------------------
def run(ws: Workspace, names: list[str] | tuple[str, ...], profile: str, device: str, log: Log,
        force: bool = False, workers: int | None = None, executor: str = "local",
        address: str | None = None, exercises: tuple[str, ...] = (), all_exercises: bool = False) -> None:
    """Train every run of the named studies (default: all) that is not cached, then precompute their analyses:
    with ``executor`` ``local`` in ``workers`` processes (default: one per core on a CPU), with ``ray`` on the Ray
    cluster at ``address`` (default: ``RAY_ADDRESS``, else a Ray instance started here). ``exercises`` (names) and
    ``all_exercises`` add exercise runs (:mod:`reportgen.exercises`; the full profile runs them all); naming
    exercises but no study selects the studies that declare them."""
    from .exercises import choose, extra_variants, studies_declaring
    from .runs import plan_runs, resolve_device, train_all
    studies = ws.studies()
    selected = select(studies, names or studies_declaring(studies, exercises))
    extra = extra_variants(choose(studies, selected, profile, exercises, every=all_exercises))
    preflight(studies, selected, profile)
    if device not in ("auto", "cpu"):  # a device that is not here is refused before anything else
        resolve_device(device)
    splits = DatasetCache()
    with ExitStack() as stack:
        # Ray connects (or is refused) before anything else; a local executor (and torch) only when there is work.
        pool = stack.enter_context(_executor(ws, executor, device, profile, log, workers, address, splits)) \
            if executor == "ray" else None
        stack.enter_context(ws.store.lock())
        removed, restored = ws.store.clean_partials()
        if removed:
            log(f"removed {removed} half-written run(s) left by an interrupted run")
        if restored:
            log(f"restored {restored} complete run(s) that an interrupted run had not yet moved into place")
        needed = _provision(ws, studies, selected, log, extra)
        planned = plan_runs(studies, selected, profile, ws.store, checksums(needed), exercises=extra)
        todo = [p for p in planned if p.status != "no-data" and (force or p.status != "complete")]
        if todo and pool is None:
            pool = stack.enter_context(_executor(ws, executor, device, profile, log, workers, address, splits))
        where = "" if pool is None else f" on {pool.device}" + (" (Ray cluster)" if executor == "ray" else "")
        _log_plan(planned, todo, force, where, log)
        if extra:
            log("exercises: " + ", ".join(f"{sid}/{v.name}" for sid, variants in extra.items() for v in variants))
        if todo:
            train_all(todo, pool, ws.store, log, force)
        for p in todo:
            (ws.store.root / p.study / p.variant / UNAVAILABLE).unlink(missing_ok=True)
        jobs = _precompute_jobs(ws, studies, selected, profile)
        if jobs:
            pool = pool or stack.enter_context(_executor(ws, executor, device, profile, log, workers, address,
                                                         splits))
            pool.precompute(jobs)


def _executor(ws: Workspace, executor: str, device: str, profile: str, log: Log, workers: int | None,
              address: str | None, splits: "DatasetCache"):
    """The executor ``--executor`` names, on the resolved device (:func:`reportgen.executors.make_executor`)."""
    from .executors import make_executor
    from .runs import resolve_device
    torch_device = resolve_device(device)
    return make_executor(executor, torch_device, ws.store, profile, log, workers, address, splits.get)


def _precompute_jobs(ws: Workspace, studies: dict, selected: list[str], profile: str) -> list[Any]:
    """A precompute job for every selected study that trains and whose analysis cache was not filled from its
    current runs, code and data (:func:`reportgen.stamp.precomputed`)."""
    from .executors import PrecomputeJob
    from .stamp import PRECOMPUTED, precompute_key, seen
    return [PrecomputeJob(name, studies[name][1], profile) for name in selected if studies[name][1].trains
            and not seen(PRECOMPUTED, name, precompute_key(name, studies[name][1], profile, ws.store.root))]


class DatasetCache:
    """Each dataset's splits, loaded (and its checksum verified) once per command."""

    def __init__(self) -> None:
        self.loaded: dict[str, object] = {}

    def get(self, name: str):
        from .data import load_splits
        if name not in self.loaded:
            self.loaded[name] = load_splits(name)
        return self.loaded[name]


def _provision(ws: Workspace, studies: dict, selected: list[str], log: Log,
               extra: dict[str, list[Any]] | None = None) -> set[str]:
    """Provision every dataset the selected studies (and ``extra``: their chosen exercises' variants) train on; one an optional variant alone needs may fail (its
    variants are marked unavailable). Returns the datasets."""
    from .data import DataError
    from .fsutil import atomic_write
    from .provision import provision
    needed: dict[str, list[tuple[str, str, bool]]] = {}
    for name in selected:
        exp = studies[name][1]
        if exp.trains:
            for v in [*exp.variants, *(extra or {}).get(name, [])]:
                needed.setdefault(v.dataset or exp.dataset, []).append((name, v.name, v.optional))
    for dataset, users in needed.items():
        markers = [ws.store.root / study_id / variant / UNAVAILABLE for study_id, variant, _ in users]
        if all(optional for _, _, optional in users) and recently_unavailable(dataset, markers):
            log(f"warning: {dataset} left out (it could not be provisioned less than "
                f"{OPTIONAL_DATASET_RETRY_S // 60} min ago; `reportgen data fetch {dataset}` tries again now)")
            continue
        try:
            provision(dataset, log=log)
        except DataError as exc:
            if not all(optional for _, _, optional in users):
                raise
            for study_id, variant, _ in users:
                atomic_write(ws.store.root / study_id / variant / UNAVAILABLE, (str(exc) + "\n").encode())
            log(f"warning: {dataset} left out ({exc})")
    return set(needed)


def recently_unavailable(dataset: str, markers: list[Path], now: float | None = None) -> bool:
    """Every variant that needs ``dataset`` was marked unavailable less than :data:`OPTIONAL_DATASET_RETRY_S` ago,
    and the dataset has not been provisioned since (e.g. by ``reportgen data fetch``)."""
    from .data import is_prepared
    now = time.time() if now is None else now
    try:
        fresh = all(now - marker.stat().st_mtime < OPTIONAL_DATASET_RETRY_S for marker in markers)
    except OSError:
        return False
    return bool(markers) and fresh and not is_prepared(dataset)


def _log_plan(planned: list, todo: list, force: bool, where: str, log: Log) -> None:
    cached = sum(p.status == "complete" for p in planned)
    kept = 0 if force else sum(p.status == "kept" for p in todo)  # --force retrains those too
    log(f"{cached + kept} of {len(planned)} runs cached"
        + (f" ({kept} kept from another config or profile, moved back without training)" if kept else "")
        + f"; {len(todo) - kept} to run{where}"
        + (" (--force retrains cached runs)" if force else ""))
    for p in todo:
        if p.status in ("stale", "corrupt", "incomplete"):
            log(f"{p.name}: {p.status} ({p.reason}); rerunning"
                + (", the run there is kept" if p.status == "stale" else ""))


def checksums(datasets: set[str]) -> dict[str, str | None]:
    """The recorded checksum of each provisioned dataset (None: not provisioned); part of every run's cache key."""
    from .data import dataset_checksum, is_prepared
    return {name: dataset_checksum(name) if is_prepared(name) else None for name in sorted(datasets)}


def precompute(studies: dict, selected: list[str], profile: str, store: Store, log: Log) -> None:
    """:func:`precompute_study` of every selected study that trains, one after the other in this process."""
    for name in selected:
        if studies[name][1].trains:
            precompute_study(name, studies[name][1], profile, store, log)


def precompute_study(name: str, exp, profile: str, store: Store, log: Log) -> None:
    """Fill the analysis cache (shift grids, activation statistics, ...) of one study right after training, so that
    rendering its results takes seconds. Every trained study gets its checkpoints' eval-mode training accuracy (the
    results' train − validation gap). Only an optimisation: a problem here is a warning, and rendering retries."""
    from .analyses._train_eval import precompute_train_accuracy
    from .stamp import PRECOMPUTED, precompute_key, remember
    steps = [step for step in map(analyses.get, exp.analyses) if step.precompute is not None]
    started = time.perf_counter()
    key = precompute_key(name, exp, profile, store.root)
    try:
        study = collect(name, exp, profile, store)
        precompute_train_accuracy(study)
        for step in steps:
            step.precompute(study)
    except (analyses.AnalysisError, RenderError) as exc:
        log(f"warning: analyses of {name} not precomputed ({exc}); `reportgen render` will compute them")
        return
    remember(PRECOMPUTED, name, key)
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
            for other in [name, *exp.reads]:
                if studies[other][1].trains:
                    collect(other, studies[other][1], profile, store)
        except RenderError:
            continue
        done.append(name)
    return done


def render(ws: Workspace, names: list[str] | tuple[str, ...], profile: str, log: Log,
           answers: bool = True, langs: tuple[str, ...] | None = None) -> list[str]:
    """Render the named studies' posts (default: all; RenderError if one lacks results), then the home page, in
    each edition of ``langs`` (default: all, :mod:`reportgen.editions`). The posts may link to each other and to
    the posts already in docs/; ``answers`` false leaves the exercises' measured answers out."""
    from .post import POSTS
    studies = ws.studies()
    selected = select(studies, names)
    preflight(studies, selected, profile)
    site = set(selected) | {n for n in studies if (ws.docs / POSTS / f"{n}.md").exists()}
    with hashing_once():  # the runs are checked for every post and again for the home page
        for _, edition, texts in editions.each(ws, studies, editions.choose(langs)):
            _render_posts(edition, texts, selected, site, profile, log, answers)
    return selected


def _render_posts(ws: Workspace, studies: dict, selected: list[str], site: set[str], profile: str,
                  log: Log, answers: bool = True) -> None:
    """The posts of ``selected`` (checked by :func:`preflight`), the home page of a site holding ``site``, the
    "Write your own study" page and the Methods page."""
    from .home import render_home
    from .post import render_post
    declared = {n: studies[n][1].title for n in studies if n in site}
    for name in selected:
        started = time.perf_counter()
        path, exp = studies[name]
        target, kept = render_post(name, exp, profile, ws.store, ws.docs, declared, translations.prose_path(path, exp),
                                   others={n: studies[n][1] for n in exp.reads}, answers=answers,
                                   keep_unchanged=True)
        log(f"kept {target}: its inputs are unchanged" if kept
            else f"rendered {target} in {time.perf_counter() - started:.1f}s")
    home = render_home(studies, profile, ws.store, ws.docs, site)
    log(f"rendered {home} ({len(site)} of {len(studies)} studies in the site)")
    _write_page("write-your-own", ws.docs / "write-your-own.md", None, lambda: write_guide(ws.docs))
    _write_page("methods", ws.docs / METHODS, {n: studies[n][1].model_dump(mode="json") for n in sorted(studies)},
                lambda: write_methods(ws.docs, studies))


def _write_page(name: str, target: Path, inputs: Any, write: Callable[[], Any]) -> None:
    """``write()`` the page ``target`` unless it is there as written from the same ``inputs`` and code (the
    "Write your own study" page imports every analysis to list it)."""
    from .stamp import PAGES, page_key, remember, seen
    key = page_key(inputs, target)
    if key is not None and seen(PAGES, name, key):
        return
    write()
    remember(PAGES, name, page_key(inputs, target) or "")


def build(ws: Workspace, names: list[str] | tuple[str, ...], profile: str, log: Log, project: Path,
          engine: str = DEFAULT_ENGINE, answers: bool = True, langs: tuple[str, ...] | None = None) -> Path:
    """The site of the named studies (default: all) that have complete results for ``profile``: their posts,
    the home page listing every declared study, and a strict build by ``engine`` (``mkdocs`` or ``zensical``,
    see :mod:`reportgen.engines`) into site/. A study without complete results is not an error: it gets no post
    and the home page says how to run it. Posts of studies that are not in this site (another profile's, a
    subset's) are removed, so one site holds one profile. Each edition of ``langs`` (default: all; English at the
    site's root, the others under site/<lang>/) is rendered and built (:mod:`reportgen.editions`)."""
    from .post import remove_post
    from .site import build_site, vendor_assets
    studies = ws.studies()
    selected = select(studies, names)
    langs = editions.choose(langs)
    preflight(studies, selected, profile)
    if not (project / "mkdocs.yml").is_file():
        raise ConfigError(f"{project / 'mkdocs.yml'}: not found; run `reportgen build` from the project root")
    vendor_assets(ws.docs)  # before the other editions' docs folders link docs/'s files (a fresh clone has none yet)
    with hashing_once():  # the runs are checked here, for every post and for the home page: each file read once
        ready = complete(studies, selected, profile, ws.store)
        for name in selected:
            if name not in ready:
                log(f"{name}: not run in the {profile} profile; left out of the site (run: reportgen run {name} "
                    f"--profile {profile})")
        for _, edition, texts in editions.each(ws, studies, langs):
            for name in sorted(set(studies) | generated_posts(edition.docs)):
                if name not in ready and remove_post(edition.docs, name):
                    log(f"removed the post of {name} (not in this {profile} site)")
            _render_posts(edition, texts, ready, set(ready), profile, log, answers)
    return build_site(project, engine=engine, configs=editions.site_configs(project, ws.docs, langs))


def generated_posts(docs: Path) -> set[str]:
    """The ids of the posts under docs/blog/posts (all generated: the folder is not hand-written)."""
    from .post import POSTS
    return {p.stem for p in (docs / POSTS).glob("*.md")}


__all__ = ["ConfigError", "ProseError", "Workspace", "build", "preflight", "render", "run"]
