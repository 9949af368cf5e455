"""Independent runs in parallel processes: ``reportgen run --workers N``.

Every CPU run trains on one thread (:data:`reportgen.settings.CPU_THREADS_PER_RUN`), so a run's numbers are the
same whether it trains alone or beside others, and N runs fill N cores. Each run is written to the store
atomically by the process that trained it (the parent holds the store's lock for the whole command); a run that
several studies declare identically is trained once, and its copies are made after it finished.

Progress stays readable: workers print whole lines (no progress bars), each starting with the run's name.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable

Log = Callable[[str], None]


def default_workers(device_type: str) -> int:
    """One worker per core on a CPU; one on an accelerator (it is a single device)."""
    if device_type != "cpu":
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def split_twins(todo: list[Any], force: bool) -> tuple[list[Any], list[Any]]:
    """The first run of each cache key, and the later ones (copied from it once it exists)."""
    first, later, seen = [], [], set()
    for p in todo:
        (later if (p.key in seen and not force) else first).append(p)
        seen.add(p.key)
    return first, later


def execute_all(todo: list[Any], device: Any, store: Any, profile: str, log: Log, force: bool, workers: int,
                serial: Callable[[Any], None]) -> None:
    """Run ``todo``: serially through ``serial(run)`` with one worker (or one run), else in ``workers`` processes;
    runs that are copies of another run in ``todo`` go last, serially."""
    first, later = split_twins(todo, force)
    if workers > 1 and not force:  # a run another study already trained is a copy: no process needed for it
        copies = [p for p in first if store.find_complete(p.key, exclude=store.run_dir(p.study, p.variant,
                                                                                    p.seed)) is not None]
        first, later = [p for p in first if p not in copies], copies + later
    if workers <= 1 or len(first) <= 1:
        for p in first + later:
            serial(p)
        return
    workers = min(workers, len(first))
    log(f"training {len(first)} runs in {workers} worker processes, one thread each")
    context = multiprocessing.get_context("spawn")  # no fork: torch's threads and the store lock stay in the parent
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                               initargs=(os.getpid(),))
    try:
        futures = [pool.submit(_train_one, p, str(device), str(store.root), profile, force) for p in first]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            future.result()  # the first failure (one line, from the run's own error) propagates
    except BaseException:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()  # Ctrl-C or SIGTERM: a worker exits through its SIGTERM handler, which unwinds
        pool.shutdown(wait=True, cancel_futures=True)  # the run it was writing (its staging folder goes)
        store.clean_partials()  # and whatever a worker killed harder left behind
        raise
    pool.shutdown(wait=True)
    for p in later:
        serial(p)


# ---- inside a worker process ---------------------------------------------------------------------------------
_SPLITS: dict[str, Any] = {}


def _init_worker(parent: int) -> None:
    import signal

    from . import train
    if sys.platform.startswith("linux"):  # die with the parent, even after its kill -9 (PR_SET_PDEATHSIG = 1)
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    train.PROGRESS_BARS = False
    train.deterministic()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it terminates the workers on Ctrl-C
    # SIGTERM unwinds like an exception, so a run being written removes its staging folder (never a half run)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _train_one(run: Any, device: str, store_root: str, profile: str, force: bool) -> str:
    try:
        import torch

        from .data import load_splits
        from .store import Store
        from .train import execute
        if run.dataset not in _SPLITS:
            _SPLITS[run.dataset] = load_splits(run.dataset)
        return str(execute(run, _SPLITS[run.dataset], torch.device(device), Store(Path(store_root)), profile, _log,
                           force=force))
    except SystemExit as exc:  # SIGTERM (the parent died or gave up): the run being written has unwound by now;
        sys.stderr.flush()     # leave at once, since the pool would catch the exit and hand this worker its next run
        os._exit(exc.code if isinstance(exc.code, int) else 143)
