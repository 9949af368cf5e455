"""Where runs train: an executor takes the planned runs and hands each trained run back to the driver, which
writes it into the results store (:func:`reportgen.runs.train_all`); it also spreads the analysis precompute that
follows training.

- :class:`LocalExecutor` (``reportgen run --executor local``, the default): this process for one worker, else a
  pool of ``--workers`` processes on this machine.
- :class:`reportgen.ray_executor.RayExecutor` (``--executor ray``): one Ray task per run, on any node of a cluster.

Every CPU run trains on one thread (:data:`reportgen.settings.CPU_THREADS_PER_RUN`), so a run's numbers are the
same whether it trains alone, beside others, or on another machine. Progress stays readable: workers print whole
lines (no progress bars), each starting with the run's name.
"""
from __future__ import annotations

import functools
import multiprocessing
import os
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .runs import PlannedRun, TrainedRun, deterministic, train_files
from .store import Store

if TYPE_CHECKING:  # imported by a worker that trains: a warm `run` needs no torch
    import torch

    from .schema import StudyConfig

Log = Callable[[str], None]
OnTrained = Callable[[PlannedRun, TrainedRun], Any]
EXECUTORS = ("local", "ray")


class ExecutorError(Exception):
    """An executor that cannot start (Ray not installed, a cluster that cannot be reached): one line, exit 2."""


@dataclass(frozen=True)
class PrecomputeJob:
    """Fill the analysis cache of one study (``reportgen.pipeline.precompute_study``)."""
    study: str
    exp: StudyConfig
    profile: str


class Executor:
    """The interface: ``train`` trains runs and calls ``on_trained`` in the driver for each, as it finishes;
    ``precompute`` fills the analysis cache of studies; both return when every job is done and raise the first
    failure. An executor is a context manager: leaving it releases its workers or its cluster connection."""
    name = "executor"

    def train(self, runs: list[PlannedRun], on_trained: OnTrained) -> None:
        raise NotImplementedError

    def precompute(self, jobs: list[PrecomputeJob]) -> None:
        raise NotImplementedError

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def default_workers(device_type: str) -> int:
    """One worker per core on a CPU; one on an accelerator (it is a single device)."""
    if device_type != "cpu":
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class LocalExecutor(Executor):
    """This machine: in this process with one worker, else in ``workers`` spawned processes."""
    name = "local"

    def __init__(self, device: torch.device, store: Store, profile: str, log: Log, workers: int,
                 splits_of: Callable[[str], Any]):
        self.device, self.store, self.profile, self.log = device, store, profile, log
        self.workers, self.splits_of = workers, splits_of

    def train(self, runs: list[PlannedRun], on_trained: OnTrained) -> None:
        if self.workers <= 1 or len(runs) <= 1:
            for run in runs:
                on_trained(run, train_files(run, self.splits_of(run.dataset), self.device, self.profile, self.name,
                                            self.log))
            return
        workers = min(self.workers, len(runs))
        self.log(f"training {len(runs)} runs in {workers} worker processes, one thread each")
        jobs = {run.name: run for run in runs}
        self._pool(workers, [(_train_one, run, str(self.device), self.profile) for run in runs],
                   lambda name, trained: on_trained(jobs[name], trained))

    def precompute(self, jobs: list[PrecomputeJob]) -> None:
        from .pipeline import precompute_study
        if self.workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                precompute_study(job.study, job.exp, job.profile, self.store, self.log)
            return
        self._pool(min(self.workers, len(jobs)),
                   [(_precompute_one, job, str(self.store.root)) for job in jobs], lambda *_: None)

    def _pool(self, workers: int, calls: list[tuple], on_result: Callable[[str, Any], Any]) -> None:
        """``calls`` (function, args...) in ``workers`` processes; ``on_result(name, result)`` in this process as
        each finishes. Ctrl-C, SIGTERM or a failure stop the workers; the first failure propagates."""
        context = multiprocessing.get_context("spawn")  # no fork: torch's threads and the store lock stay here
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                                   initargs=(os.getpid(),))
        try:
            pending: set[Future] = {pool.submit(*call) for call in calls}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    on_result(*future.result())  # a failure (one line, from the run's own error) propagates
        except BaseException:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()  # Ctrl-C or SIGTERM: a worker exits through its SIGTERM handler
            pool.shutdown(wait=True, cancel_futures=True)
            self.store.clean_partials()  # whatever a worker killed harder left behind
            raise
        pool.shutdown(wait=True)


def make_executor(name: str, device: torch.device, store: Store, profile: str, log: Log, workers: int | None,
                  address: str | None, splits_of: Callable[[str], Any]) -> Executor:
    """The executor ``--executor`` names; for ``ray``, connected (or refused in one line) before anything trains.
    Deterministic kernels are set in each process that computes: here for the local executor, in Ray's workers for
    ``ray`` (torch imports its compiler to set them: seconds that a Ray driver need not wait)."""
    if name == "ray":
        from .ray_executor import RayExecutor
        return RayExecutor.connect(device, store, profile, log, address, splits_of)
    count = workers if workers is not None else default_workers(device.type)
    deterministic()  # this process may train and precompute (one worker); pool workers set it in _init_worker
    return LocalExecutor(device, store, profile, log, count, splits_of)


# ---- inside a worker process ---------------------------------------------------------------------------------
_SPLITS: dict[str, Any] = {}


def _init_worker(parent: int) -> None:
    import signal

    from . import runs, train
    if sys.platform.startswith("linux"):  # die with the parent, even after its kill -9 (PR_SET_PDEATHSIG = 1)
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    train.PROGRESS_BARS = False
    runs.deterministic()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it terminates the workers on Ctrl-C
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def worker_log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _leave_on_exit(function: Callable[..., Any]) -> Callable[..., Any]:
    """SIGTERM (the parent died or gave up) unwinds as SystemExit: leave at once, since the pool would catch the
    exit and hand this worker its next job."""
    @functools.wraps(function)
    def wrapped(*args: Any) -> Any:
        try:
            return function(*args)
        except SystemExit as exc:
            sys.stderr.flush()
            os._exit(exc.code if isinstance(exc.code, int) else 143)
    return wrapped


@_leave_on_exit
def _train_one(run: PlannedRun, device: str, profile: str) -> tuple[str, TrainedRun]:
    import torch

    from .data import load_splits
    if run.dataset not in _SPLITS:
        _SPLITS[run.dataset] = load_splits(run.dataset)
    return run.name, train_files(run, _SPLITS[run.dataset], torch.device(device), profile, LocalExecutor.name,
                                 worker_log)


@_leave_on_exit
def _precompute_one(job: PrecomputeJob, store_root: str) -> tuple[str, None]:
    from .pipeline import precompute_study
    precompute_study(job.study, job.exp, job.profile, Store(Path(store_root)), worker_log)
    return job.study, None
