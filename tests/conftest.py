"""Shared fixtures, each defined once here:

- ``synthetic_idx`` / ``data_root`` / ``project``: synthetic Fashion-MNIST IDX files provisioned through the real
  torchvision reader into a fresh data root, and a project directory (cwd) holding the shipped dropout study;
- ``vendored`` and :func:`copy_site_sources` / :func:`copy_project`: the hand-written site and the vendored npm
  packages (MathJax, ECharts and the 14 MB WebAssembly runtime), *hard-linked* into a test's project rather than
  copied (no test writes into them; a build copies them into its site);
- ``workspace`` / ``study`` / ``rendered``: one synthetic data root, one study of real one-epoch runs and each
  analysis computed once on it, shared by every module that asks (trained once per test process).
- ``smoke_site``: every shipped study run and built with the smoke profile (the whole pipeline, once per test
  process), read-only for the tests that check the posts and the site a user gets.

Never touches the real data. Tests that train, build a site or open a browser are marked ``slow``: ``make check``
(``pytest -m "not slow"``) leaves them out, ``make test`` runs everything.

Both run in one test process per core (pytest-xdist, ``-n auto --dist loadscope``: all tests of a module in the same
process, so a module-scoped project is trained and built once). So a new test module (the Portuguese edition's, for
example) asks for these fixtures rather than training or building its own; writes only under ``tmp_path`` /
``tmp_path_factory`` (never into the repository: ``vendored`` is the one exception, under a lock); gives a browser
check's screenshots a folder of its own under test-artifacts/; and keeps a fixed port inside a network namespace
of its own (tests/test_ray.py). Each process makes its own session fixtures: they are cheap, or shared through
:data:`SHARED`. A long module belongs in :data:`LONGEST_FIRST`.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.synthetic import write_idx_dataset

ROOT = Path(__file__).resolve().parent.parent
VENDOR = Path("assets") / "vendor"  # under docs/ (reportgen.site.VENDOR_DIR)
# Generated into docs/ by reportgen: left out of a copy of the hand-written site.
GENERATED_DOCS = ("index.md", "write-your-own.md", "methods.md", "blog/posts", "assets/vendor", "assets/figures")


# ---- the temporary directory: in memory where there is room -------------------------------------------------------
# A run writes about 1 GB of sites, checkpoints and results under pytest's temporary directory, and removes it at
# the end (``tmp_path_retention_policy = "failed"``). On a disk mounted with ``discard`` (this project's machines)
# removing it took 20-30 s after the last test, and every fsync of an atomic write waits for the disk. So the run
# goes to a RAM-backed file system when one has room (/dev/shm with at least RAM_TEMP_MIN_FREE free; Docker's
# default of 64 MB has not): a folder of its own, named after the run's process, so that two runs at once (two
# checkouts, or `make check` beside `make test`) never share one. It is removed when every test passed; a failed
# run's folder stays for a look until the next run starts and finds its process gone. ``--basetemp`` wins.
RAM_TEMP = Path("/dev/shm")
RAM_TEMP_MIN_FREE = 8 * 2**30


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ram_basetemp() -> Path | None:
    try:
        usage = shutil.disk_usage(RAM_TEMP)
    except OSError:
        return None
    if usage.free < RAM_TEMP_MIN_FREE:
        return None
    runs = RAM_TEMP / f"reportgen-pytest-{os.getuid()}"
    runs.mkdir(exist_ok=True)
    for old in runs.glob("run-*"):  # left by a failed (or killed) run whose process is gone
        pid = old.name.removeprefix("run-")
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return runs / f"run-{os.getpid()}"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """The xdist controller (or a run without xdist) picks :func:`_ram_basetemp`; workers get theirs from it."""
    if config.option.basetemp or hasattr(config, "workerinput"):
        return
    basetemp = _ram_basetemp()
    if basetemp is not None:
        config.option.basetemp = str(basetemp)
        config.stash[_CHOSEN] = basetemp


_CHOSEN = pytest.StashKey[Path]()


def pytest_unconfigure(config):
    basetemp = config.stash.get(_CHOSEN, None)
    if basetemp is not None and config.stash.get(_PASSED, False):
        shutil.rmtree(basetemp, ignore_errors=True)


_PASSED = pytest.StashKey[bool]()


def pytest_sessionfinish(session, exitstatus):
    session.config.stash[_PASSED] = exitstatus == 0


# The modules that take longest, run first: with ``pytest -n`` (``make test``, ``make check``), xdist hands whole
# modules to its processes in this order (``--dist loadscope``), so the longest one never starts last and leaves
# one process idle (times: ``pytest --durations=40``). A module not named here keeps its place after these.
LONGEST_FIRST = ("test_e2e.py", "test_wordcount.py", "test_interrupts.py", "test_faults.py", "test_analyses_b.py", "test_shows.py",
                 "test_live_model.py", "test_exercises.py", "test_zensical.py", "test_ray.py", "test_build.py",
                 "test_site.py", "test_pipeline.py", "test_analyses_a.py", "test_render.py")


def pytest_collection_modifyitems(config, items):
    """Reorder whole modules: :data:`LONGEST_FIRST`, then the rest as collected (tests keep their order within a
    module)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # sort is stable


# Modules that share an expensive session fixture run in the same test process under ``pytest -n``: module name ->
# the name of the group (xdist's ``loadscope`` otherwise gives each module to whichever process is free).
SAME_PROCESS = {"test_e2e.py": "smoke_site", "test_wordcount.py": "smoke_site", "test_pt_prose.py": "smoke_site",
                "test_analyses_b.py": "study", "test_analyses_a.py": "study", "test_analysis.py": "study"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope``, with the modules of :data:`SAME_PROCESS` as one scope (one process, one fixture)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling
    # xdist would otherwise hand out the modules with the most tests first (--loadscope-reorder, its default),
    # which starts the longest module (test_e2e.py: one test, minutes) late and leaves the other process idle.
    config.option.loadscopereorder = False

    class SharedFixtureScopes(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return SAME_PROCESS.get(Path(module).name, module)
    return SharedFixtureScopes(config, log)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Every test computes on one torch thread, as every run trains: on a busy machine (two cores, several test
    processes) more threads only spin against each other; a 13 x 13 shift grid took ten times the CPU on two."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def one_training_worker():
    """``reportgen run`` without ``--workers`` trains in the test process, one run after the other (as
    ``--workers 1``), instead of one spawned process per core: ``make test`` already keeps every core busy with a test
    process, and each spawned worker first spends seconds importing torch. The tests of the worker pool ask for it
    by name (``--workers 2``: tests/test_workers.py, tests/test_interrupts.py); ``default_workers`` itself is
    tested in tests/test_workers.py."""
    from reportgen import executors
    patch = pytest.MonkeyPatch()
    patch.setattr(executors, "default_workers", lambda device_type: 1)
    yield
    patch.undo()


@pytest.fixture(scope="session")
def synthetic_idx(tmp_path_factory) -> Path:
    """Four raw IDX files of a small, learnable dataset (600 train / 200 test)."""
    directory = tmp_path_factory.mktemp("idx")
    write_idx_dataset(directory, n_train=600, n_test=200)
    return directory


@pytest.fixture
def data_root(tmp_path, monkeypatch, synthetic_idx) -> Path:
    """REPORTGEN_DATA pointing at a fresh root where fashion-mnist is provisioned from the synthetic files."""
    from reportgen.provision import provision
    root = tmp_path / "data"
    monkeypatch.setenv("REPORTGEN_DATA", str(root))
    monkeypatch.setenv("REPORTGEN_SKIP_CHECKSUM", "1")
    monkeypatch.setenv("REPORTGEN_OFFLINE", "1")
    provision("fashion-mnist", root, from_dir=synthetic_idx, skip_checksum=True, allow_download=False,
              allow_install=False, log=lambda *_: None)
    return root


@pytest.fixture
def project(tmp_path, data_root, monkeypatch) -> Path:
    """A project directory (cwd) with experiments/dropout.yaml, docs/ and mkdocs.yml copied from the repo."""
    proj = tmp_path / "project"
    (proj / "experiments").mkdir(parents=True)
    shutil.copy(ROOT / "experiments" / "dropout.yaml", proj / "experiments")
    monkeypatch.chdir(proj)
    monkeypatch.delenv("REPORTGEN_RESULTS", raising=False)
    return proj


class SmokeSite(NamedTuple):
    """Every shipped study run and built with the ``smoke`` profile: the project folder (experiments/, results/,
    docs/ with the generated posts, site/) and the output of ``reportgen run`` and ``reportgen build``."""
    project: Path
    run_output: str
    build_output: str


@pytest.fixture(scope="session")
def smoke_site(tmp_path_factory, synthetic_idx) -> SmokeSite:
    """A project with every shipped study (YAML and prose), the hand-written site and the model source, run and
    built once per test process with the `smoke` profile on synthetic Fashion-MNIST (MNIST and KMNIST are not
    provisioned), as a user runs it: ``reportgen run --profile smoke`` then ``reportgen build --profile smoke``.
    Read-only for the tests that share it (tests/test_e2e.py, tests/test_wordcount.py, tests/test_pt_prose.py;
    :data:`SAME_PROCESS` keeps them in one process under ``pytest -n``): a test that changes the project works on a
    :func:`copy_project`.
    The environment and working directory are set for the two commands only."""
    from reportgen.provision import provision
    base = tmp_path_factory.mktemp("smoke-site")
    project, data = base / "project", base / "data"
    shutil.copytree(ROOT / "experiments", project / "experiments")
    copy_site_sources(project)
    provision("fashion-mnist", data, from_dir=synthetic_idx, skip_checksum=True, allow_download=False,
              allow_install=False, log=lambda *_: None)
    outputs = []
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {"REPORTGEN_DATA": str(data), "REPORTGEN_OFFLINE": "1", "REPORTGEN_SKIP_CHECKSUM": "1",
                           "REPORTGEN_CACHE": str(base / "cache"),
                           # the shift grids on a quarter of the 200 test images: the same code, a quarter of the passes
                           "REPORTGEN_SHIFT_IMAGES": "50"}.items():
            patch.setenv(key, value)
        patch.delenv("REPORTGEN_RESULTS", raising=False)
        patch.chdir(project)
        for verb in ("run", "build"):
            result = invoke(verb, "--profile", "smoke")
            assert result.exit_code == 0, result.output
            outputs.append(result.output)
    return SmokeSite(project, *outputs)


# ---- the site: hand-written pages, vendored packages -------------------------------------------------------------
def vendor() -> Path:
    """The repository's docs/assets/vendor, with every npm package the site uses (``npm pack`` the first time).

    Under an exclusive lock (a file in the temporary directory, named after this checkout): with ``pytest -n`` the
    test processes of a fresh clone would otherwise each vendor the packages and swap them in at once, while another
    test hard-links them."""
    import fcntl
    import tempfile

    from reportgen.site import SiteError, vendor_assets
    lock = Path(tempfile.gettempdir()) / f"reportgen-vendor-{hashlib.sha256(bytes(ROOT)).hexdigest()[:16]}.lock"
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            vendor_assets(ROOT / "docs")
        except SiteError as exc:
            pytest.fail(f"cannot vendor the site's npm packages: {exc}", pytrace=False)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return ROOT / "docs" / VENDOR


@pytest.fixture(scope="session")
def vendored() -> Path:
    """docs/assets/vendor with MathJax, ECharts and onnxruntime-web, made once in the real project."""
    return vendor()


def link_or_copy(src: str, dst: str) -> None:
    """A hard link to ``src`` (a copy where links are not possible, e.g. across file systems)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _vendored_linked(src: str, dst: str) -> None:
    """copytree's copy function for a project: the files of a vendored package are linked, the rest copied."""
    if f"/{VENDOR.as_posix()}/" in Path(src).as_posix():
        link_or_copy(src, dst)
    else:
        shutil.copy2(src, dst)


def copy_project(source: Path, target: Path, ignore=None) -> Path:
    """A copy of a test project (results, docs, site) in which the vendored packages are hard links; ``ignore`` as
    :func:`shutil.copytree` takes it."""
    shutil.copytree(source, target, symlinks=True, ignore=ignore, copy_function=_vendored_linked)
    return target


def copy_site_sources(project: Path, model_source: bool | str = True) -> None:
    """Into ``project``: mkdocs.yml, the hand-written docs/ (without what reportgen generates), the vendored npm
    packages (hard links to the repository's gitignored docs/assets/vendor) and the source the posts quote in
    snippets: with ``model_source`` True all of reportgen/, a path (``"reportgen/models.py"``) that file only."""
    vendored = vendor()

    def skip_generated(directory: str, names: list[str]) -> set[str]:
        rel = Path(directory).relative_to(ROOT / "docs")
        return {n for n in names if (rel / n).as_posix() in GENERATED_DOCS or n == "__pycache__"}
    project.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "mkdocs.yml", project)
    shutil.copytree(ROOT / "docs", project / "docs", ignore=skip_generated)
    shutil.copytree(vendored, project / "docs" / VENDOR, copy_function=link_or_copy)
    if model_source is True:
        shutil.copytree(ROOT / "reportgen", project / "reportgen", ignore=shutil.ignore_patterns("__pycache__"))
    elif model_source:
        (project / model_source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / model_source, project / model_source)


# ---- the command line in-process ---------------------------------------------------------------------------------
def invoke(*args: str):
    """Run the CLI in-process; returns Click's Result (exit_code, output)."""
    from click.testing import CliRunner
    from reportgen.cli import cli
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_main(*args: str) -> tuple[int, str, str]:
    """``reportgen ARGS`` in-process through the console entry point (its error handling and exit codes):
    (exit code, stdout, stderr)."""
    import contextlib
    import io

    from reportgen.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


# ---- the shared trained study (tests/test_analysis.py and the analysis modules) ----------------------------------
def _experiment() -> dict[str, Any]:
    from reportgen import analyses
    return {
        "id": "inside", "title": "Inside the network", "dataset": "fashion-mnist",
        "model": {"name": "lenet"}, "training": {"epochs": 1, "batch_size": 64, "lr": 0.003},
        "profiles": {"smoke": {"seeds": [0, 1], "train_limit": 300, "eval_limit": 60}},
        "variants": [{"name": "lenet", "label": "LeNet"},
                     {"name": "fc", "label": "Fully connected", "model": {"name": "fcnn", "options": {"hidden": [32]}}}],
        "analyses": list(analyses.names()),
    }


EXPERIMENT = _experiment()


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# Training and the shift grid are the slow parts, so they happen once per test process, whichever module asks first.
# Each module's ``workspace`` still sets (and afterwards restores) the environment itself.
SHARED: dict[str, Any] = {}


class Rendered:
    """Each analysis computed at most once on the shared study, its figures drawn into ``directory`` (linked as
    ``<study id>/...``) through one FigureWriter with the figure cache of the workspace."""

    def __init__(self, study, directory: Path):
        from reportgen.figures import FigureWriter
        self.study, self.directory = study, directory
        self.writer = FigureWriter(directory=directory, link_prefix=study.id)
        self.results: dict[str, Any] = {}
        self.figures: dict[str, list[Path]] = {}   # the files each analysis wrote
        self.seconds: dict[str, float] = {}

    def __getitem__(self, name: str) -> Any:
        from reportgen import analyses
        if name not in self.results:
            before, started = len(self.writer.written), time.perf_counter()
            self.results[name] = analyses.get(name).compute(self.study, self.writer)
            self.seconds[name] = time.perf_counter() - started
            self.figures[name] = self.writer.written[before:]
        return self.results[name]

    def all(self) -> dict[str, Any]:
        return {name: self[name] for name in self.study.config.analyses}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Synthetic Fashion-MNIST provisioned in a data root, REPORTGEN_CACHE pointing at a fresh cache (the same
    folders for every module of this process)."""
    import torch

    from reportgen.provision import provision
    if "root" not in SHARED:
        SHARED["root"] = tmp_path_factory.mktemp("analysis")
    root = SHARED["root"]
    mp = pytest.MonkeyPatch()
    mp.setenv("REPORTGEN_DATA", str(root / "data"))
    mp.setenv("REPORTGEN_SKIP_CHECKSUM", "1")
    mp.setenv("REPORTGEN_OFFLINE", "1")
    mp.setenv("REPORTGEN_CACHE", str(root / "cache"))
    mp.delenv("REPORTGEN_SHIFT_IMAGES", raising=False)
    # One torch thread for training and for every analysis alike: on a busy machine more threads only fight each
    # other (the shift grid took ten times longer), and with one setting for both, the shift grid's unshifted cell
    # repeats the run's own evaluation exactly, as reportgen checks.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    if not (root / "data").exists():
        write_idx_dataset(root / "idx", n_train=600, n_test=200)
        provision("fashion-mnist", root / "data", from_dir=root / "idx", skip_checksum=True, allow_download=False,
                  allow_install=False, log=lambda *_: None)
    yield root
    torch.set_num_threads(threads)
    mp.undo()


@pytest.fixture(scope="module")
def study(workspace):
    """A two-variant (LeNet, fully connected), two-seed study of real runs (1 epoch each) written by Store.write_run
    and read back by collect, exactly as `reportgen render` sees them. Tests that use it are ``slow``."""
    if "study" not in SHARED:
        import torch

        from reportgen.config import StudyConfig
        from reportgen.data import load_splits
        from reportgen.store import Store
        from reportgen.study import collect
        from reportgen.runs import execute, plan_runs
        exp = StudyConfig.model_validate(EXPERIMENT)
        splits = load_splits("fashion-mnist")
        store = Store(workspace / "results")
        # as `reportgen run` trains and stores them
        for run in plan_runs({exp.id: (None, exp)}, [exp.id], "smoke", store, {"fashion-mnist": splits.checksum}):
            execute(run, splits, torch.device("cpu"), store, "smoke", log=lambda *_: None, force=True)
        SHARED["results_before"] = tree_digest(workspace / "results")
        SHARED["study"] = collect(exp.id, exp, "smoke", store)
    return SHARED["study"]


@pytest.fixture(scope="module")
def rendered(study, workspace) -> Rendered:
    """``rendered[name]``: analysis ``name`` on the shared study, computed once (figures into docs/<study id>)."""
    if "rendered" not in SHARED:
        SHARED["rendered"] = Rendered(study, workspace / "docs" / study.id)
    return SHARED["rendered"]
