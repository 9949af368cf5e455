"""``reportgen run --executor ray``: every run is a Ray task on a cluster (``ray start --head`` on one machine,
``ray start --address=HEAD:6379`` on the others); the driver keeps the results store.

- Code: the local ``reportgen`` package travels to every node with ``runtime_env`` (``py_modules``); a node whose
  torch differs from the driver's is refused in one line, since the numbers (and cache keys) depend on it.
- Data: the driver provisions and checksums each dataset once and puts its uint8 tensors into Ray's object store;
  no worker downloads anything or needs ``data/``.
- Results: a task returns the run's files as bytes; the driver writes them with the store's atomic swap and
  ``COMPLETE.json``, as each finishes (``ray.wait``). The analysis precompute travels the same way: a task gets
  the study's run files and returns the cache files it computed.
- Faults: an address that does not answer is one line within seconds (exit 2) before anything trains; a worker or
  node that dies is retried by Ray (``max_retries``); Ctrl-C or SIGTERM cancel the outstanding tasks.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from . import __version__
from .executors import Executor, ExecutorError, OnTrained, PrecomputeJob
from .runs import PlannedRun, TrainedRun
from .store import Store
from .train import TrainingError

Log = Callable[[str], None]
MAX_RETRIES = 3          # times Ray reruns a task whose worker process or node died
CONNECT_TIMEOUT_S = 10   # seconds to wait for the head's port before giving up (ray.init alone waits minutes)
WAIT_POLL_S = 1.0        # ray.wait returns this often, so Ctrl-C and SIGTERM are handled at once
INSTALL_HINT = "pip install 'reportgen[ray]' (or, in a clone: pip install -e '.[ray]')"


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """ExecutorError unless something answers at ``address`` (``host:port`` or ``ray://host:port``)."""
    if address in ("auto", "local"):
        return
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(f"--address {address}: expected HOST:PORT of a Ray head (e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
        raise ExecutorError(f"cannot reach the Ray cluster at {address} ({reason}); start it with `ray start "
                            f"--head` on the head machine, or fix --address / RAY_ADDRESS") from None


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, device: torch.device, store: Store, profile: str, log: Log, address: str | None,
                 splits_of: Callable[[str], Any]):
        self.device, self.store, self.profile, self.log = device, store, profile, log
        self.address, self.splits_of = address, splits_of
        self.data: dict[str, Any] = {}  # dataset -> ObjectRef of its Splits
        self.trained: set[str] = set()  # studies with a run trained on the cluster by this command
        self.connected = False

    @classmethod
    def connect(cls, device: torch.device, store: Store, profile: str, log: Log, address: str | None,
                splits_of: Callable[[str], Any]) -> "RayExecutor":
        """Check that Ray is installed and the cluster answers; connecting itself waits for the first task."""
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ExecutorError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from None
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address:
            check_reachable(address)
        return cls(device, store, profile, log, address, splits_of)

    def _init(self) -> None:
        if self.connected:
            return
        # every worker's epoch lines, as the local executor prints them (not folded into "repeated 3x"), uncoloured
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
        import ray
        ours = signal.getsignal(signal.SIGTERM)  # ray.init installs its own SIGTERM handler: keep the CLI's
        package = str(Path(__file__).resolve().parent)
        try:
            info = ray.init(address=self.address, logging_level="WARNING", log_to_driver=True,
                            runtime_env={"py_modules": [package], "excludes": ["__pycache__"]})
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ExecutorError(f"cannot connect to the Ray cluster at {self.address or 'a new local instance'}: "
                                + " ".join(str(exc).split())[:200]) from None
        finally:
            signal.signal(signal.SIGTERM, ours)
        self.connected = True
        cpus = int(ray.cluster_resources().get("CPU", 0))
        self.log(f"ray: connected to {info.address_info.get('gcs_address', self.address or 'a local instance')} "
                 f"({len(ray.nodes())} node(s), {cpus} CPUs)")

    def _data(self, dataset: str) -> Any:
        import ray
        if dataset not in self.data:
            self.data[dataset] = ray.put(self.splits_of(dataset))
        return self.data[dataset]

    def train(self, runs: list[PlannedRun], on_trained: OnTrained) -> None:
        if not runs:
            return
        import ray
        self._init()
        gpus = 1 if self.device.type == "cuda" else 0
        task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=MAX_RETRIES)(_train_task)
        expected = _versions()
        refs = {task.remote(run, self._data(run.dataset), str(self.device), self.profile, expected): run
                for run in runs}
        self.log(f"ray: {len(runs)} runs submitted, one task each")
        self.trained |= {run.study for run in runs}
        self._collect(refs, on_trained)

    def precompute(self, jobs: list[PrecomputeJob]) -> None:
        """On the cluster for the studies that trained there now; in this process for the others (their cache is
        normally filled already, so this only checks it)."""
        from .pipeline import precompute_study
        remote = [job for job in jobs if job.study in self.trained]
        for job in jobs:
            if job not in remote:
                precompute_study(job.study, job.exp, job.profile, self.store, self.log)
        if not remote:
            return
        import ray
        task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(_precompute_task)
        refs = {}
        for job in remote:
            bundle = _study_bundle(job, self.store)
            if bundle is None:
                precompute_study(job.study, job.exp, job.profile, self.store, self.log)  # says what is missing
                continue
            runs, cached, datasets = bundle
            refs[task.remote(job, runs, cached, _versions(), datasets, *[self._data(d) for d in datasets])] = job
        self._collect(refs, lambda job, files: _write_cache(files))

    def _collect(self, refs: dict[Any, Any], on_done: Callable[[Any, Any], Any]) -> None:
        """``on_done(job, result)`` for each task as it finishes; the first failure is one line naming its job.
        Whatever stops this (a failure, Ctrl-C, SIGTERM) cancels the tasks still outstanding."""
        import ray
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=WAIT_POLL_S)
                for ref in done:
                    on_done(refs[ref], _result(ray, ref, refs[ref]))
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise

    def __exit__(self, *exc: object) -> None:
        if self.connected:
            import ray
            ray.shutdown()
            self.connected = False


def _result(ray: Any, ref: Any, job: Any) -> Any:
    """The task's result, or its failure as one line naming the study, variant and seed (or the study)."""
    from ray.exceptions import RayTaskError, TaskCancelledError
    name = getattr(job, "name", None) or f"{job.study} (analysis precompute)"
    try:
        return ray.get(ref)
    except RayTaskError as exc:
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        if isinstance(cause, (ExecutorError, TrainingError)):
            raise type(cause)(str(cause)) from None
        detail = " ".join(str(cause).split())[:300]
        raise TrainingError(f"{name}: failed on the Ray cluster: {type(cause).__name__}: {detail}") from None
    except TaskCancelledError:
        raise TrainingError(f"{name}: its Ray task was cancelled") from None
    except ray.exceptions.RayError as exc:  # the worker or node died more than MAX_RETRIES times, ...
        detail = " ".join(str(exc).split())[:200]
        raise TrainingError(f"{name}: lost on the Ray cluster after {MAX_RETRIES} retries "
                            f"({type(exc).__name__}: {detail})") from None


def _versions() -> dict[str, str]:
    """What must match between driver and worker for the same numbers (and the same cache keys)."""
    return {"reportgen": __version__, "torch": torch.__version__}


def _study_bundle(job: PrecomputeJob, store: Store) -> tuple[dict[str, bytes], dict[str, bytes], list[str]] | None:
    """What the precompute of ``job`` reads: its complete runs' files (paths relative to the store), the analysis
    cache files they have already, and their datasets; None if the study is not complete."""
    from .figures import cache_root
    from .study import RenderError, collect
    try:
        study = collect(job.study, job.exp, job.profile, store)
    except RenderError:
        return None
    runs, cached, datasets = {}, {}, set()
    for variant in study.variants:
        for run in variant.runs:
            datasets.add(run.config["dataset"])
            for file in run.path.iterdir():
                runs[file.relative_to(store.root).as_posix()] = file.read_bytes()
            key_dir = cache_root() / "analysis" / str(run.record.cache_key)
            for file in key_dir.glob("*.npz") if key_dir.is_dir() else ():
                cached[file.relative_to(cache_root()).as_posix()] = file.read_bytes()
    return runs, cached, sorted(datasets)


def _write_cache(files: dict[str, bytes]) -> None:
    from .figures import cache_root
    from .fsutil import atomic_write
    for rel, data in files.items():
        atomic_write(cache_root() / rel, data)


# ---- inside a Ray worker --------------------------------------------------------------------------------------
def _check_versions(expected: dict[str, str]) -> None:
    here = _versions()
    if here != expected:
        theirs = ", ".join(f"{k} {v}" for k, v in here.items())
        ours = ", ".join(f"{k} {v}" for k, v in expected.items())
        raise ExecutorError(f"a Ray node ({socket.gethostname()}) runs {theirs}, the driver {ours}: install the "
                            "same versions on every node (the numbers and cache keys depend on them)")


def _worker_setup(expected: dict[str, str]) -> None:
    from . import runs, train
    _check_versions(expected)
    train.PROGRESS_BARS = False
    runs.deterministic()


def _train_task(run: PlannedRun, splits: Any, device: str, profile: str, expected: dict[str, str]) -> TrainedRun:
    from .executors import worker_log
    from .runs import train_files
    _worker_setup(expected)
    return train_files(run, splits, torch.device(device), profile, RayExecutor.name, worker_log)


def _precompute_task(job: PrecomputeJob, runs: dict[str, bytes], cached: dict[str, bytes], expected: dict[str, str],
                     datasets: list[str], *splits: Any) -> dict[str, bytes]:
    """Rebuild the study's runs and cache in a temporary folder, precompute, and return the new cache files."""
    from .analyses import _common
    from .data import data_root
    from .executors import worker_log
    from .pipeline import precompute_study
    from .settings import ENV_CACHE
    _worker_setup(expected)
    # the threads the local executor computes analyses on (torch's default: one per core), not Ray's one per task
    torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    for name, data in zip(datasets, splits):  # the driver's checksummed splits, in place of reading data/
        _common._SPLITS[(name, str(data_root().resolve()))] = data
    with tempfile.TemporaryDirectory(prefix="reportgen-precompute-") as tmp:
        results, cache = Path(tmp) / "results", Path(tmp) / "cache"
        for rel, data in {**{f"results/{k}": v for k, v in runs.items()},
                          **{f"cache/{k}": v for k, v in cached.items()}}.items():
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / rel).write_bytes(data)
        before = os.environ.get(ENV_CACHE)
        os.environ[ENV_CACHE] = str(cache)
        try:
            precompute_study(job.study, job.exp, job.profile, Store(results), worker_log)
        finally:
            os.environ.pop(ENV_CACHE) if before is None else os.environ.__setitem__(ENV_CACHE, before)
        made = {p.relative_to(cache).as_posix(): p for p in cache.rglob("*") if p.is_file()}
        sys.stderr.flush()
        return {rel: p.read_bytes() for rel, p in made.items() if rel not in cached}
