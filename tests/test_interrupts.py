"""Interruptions (issue 5, moved out of tests/test_faults.py so that ``pytest -n`` runs them beside the other
fault tests): a real ``python -m reportgen.cli run`` subprocess killed mid-epoch, while writing and while swapping a
run in, interrupted with SIGINT and SIGTERM, serial and with worker processes. Every interrupted run is either
missing or complete, and the next run gives exactly the numbers of an uninterrupted one.

Synthetic data only; the result helpers are tests/test_faults.py's.
"""
from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reportgen.store import MARKER, check_run
from tests.conftest import ROOT, run_main
from tests.test_faults import Result, one_line_error, run_numbers, tree_hash


@pytest.fixture
def rg():
    """Run ``reportgen ARGS`` in-process through the console entry point; returns (exit code, stdout, stderr)."""
    def call(*args: str) -> Result:
        return Result(*run_main(*args))
    return call


# ---- interruptions: real processes, killed -----------------------------------------------------------------------
SLOW_STUDY = """\
id: slow
title: A study slow enough to interrupt
dataset: fashion-mnist
training: {optimizer: adam, lr: 1.0e-3, batch_size: 8, epochs: 2}
profiles:
  smoke: {epochs: 2, seeds: [0], train_limit: 320, eval_limit: 200}
variants:
  - {name: a}
  - {name: b, model: {options: {dropout: 0.5}}}
"""
SLOTS = ("slow/a/seed-0", "slow/b/seed-0")


class Proc:
    """``python -m reportgen.cli ARGS`` in the background; stderr lines are collected by a thread."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]):
        # SIGINT back to its default in the child: a shell starts a background job with SIGINT ignored, the
        # ignoring is inherited, and Python then never turns Ctrl-C into KeyboardInterrupt (`make test &` or a
        # `nohup` CI wrapper made the Ctrl-C test fail: the run went on to finish, or slept out its stall).
        self.popen = subprocess.Popen([sys.executable, "-m", "reportgen.cli", *args], cwd=cwd, env=env,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.popen.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def wait_for(self, needle: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if needle in self.lines.get(timeout=0.05):
                    return
            except queue.Empty:
                if self.popen.poll() is not None and self.lines.empty():
                    break
        self.kill()
        pytest.fail(f"never saw {needle!r}; stderr:\n{''.join(self.stderr)}")

    def poll_path(self, found, timeout: float = 120) -> Path:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.popen.poll() is None:
            hit = found()
            if hit:
                return hit
            time.sleep(0.01)
        self.kill()
        pytest.fail(f"the moment to interrupt never came; stderr:\n{''.join(self.stderr)}")

    def signal(self, sig: int) -> tuple[int, str]:
        self.popen.send_signal(sig)
        return self.finish()

    def kill(self) -> tuple[int, str]:
        return self.signal(signal.SIGKILL) if self.popen.poll() is None else self.finish()

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        code = self.popen.wait(timeout=timeout)
        self.thread.join(timeout=10)
        return code, "".join(self.stderr)


@pytest.fixture(scope="module")
def slow(tmp_path_factory, synthetic_idx):
    """A project with the slow study, its data, and the numbers of one uninterrupted run (the reference)."""
    from reportgen.cli import main
    base = tmp_path_factory.mktemp("slow")
    (base / "experiments").mkdir()
    (base / "experiments" / "slow.yaml").write_text(SLOW_STUDY)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REPORTGEN_DATA": str(base / "data"), "REPORTGEN_OFFLINE": "1",
           "REPORTGEN_SKIP_CHECKSUM": "1"}
    env.pop("REPORTGEN_RESULTS", None)
    with pytest.MonkeyPatch.context() as m:
        m.chdir(base)
        for key in ("REPORTGEN_DATA", "REPORTGEN_OFFLINE", "REPORTGEN_SKIP_CHECKSUM"):
            m.setenv(key, env[key])
        for command in (["data", "fetch", "fashion-mnist", "--from", str(synthetic_idx)],
                        ["--results", "reference", "run", "--profile", "smoke"]):
            with pytest.raises(SystemExit) as exit_:
                main(command)
            assert exit_.value.code == 0
    reference = {slot: run_numbers(base / "reference" / slot) for slot in SLOTS}
    return base, env, reference


@pytest.fixture
def slow_run(slow, monkeypatch, rg):
    """(start a background run, run in-process, the results dir, assert the results equal the reference)."""
    base, env, reference = slow
    monkeypatch.chdir(base)
    for key in ("REPORTGEN_DATA", "REPORTGEN_OFFLINE", "REPORTGEN_SKIP_CHECKSUM"):
        monkeypatch.setenv(key, env[key])
    results = base / f"results-{os.urandom(4).hex()}"

    def start(*args: str, workers: int = 1, **extra_env: str) -> Proc:
        """One worker by default: the runs train one after the other, so each moment the tests wait for is well
        defined; the parallel tests pass ``workers=2``."""
        return Proc(["--results", str(results), "run", "--profile", "smoke", "--workers", str(workers), *args], base,
                    {**env, **extra_env})

    def run_here(*args: str) -> Result:
        return rg("--results", str(results), "run", "--profile", "smoke", *args)

    def same_as_reference() -> None:
        for slot in SLOTS:
            assert check_run(results / slot).status == "complete", slot
            assert run_numbers(results / slot) == reference[slot], f"{slot} differs from an uninterrupted run"
        assert not list(results.rglob(".seed-*")), "leftover staging directories"
    yield start, run_here, results, same_as_reference
    shutil.rmtree(results, ignore_errors=True)


def _staging_with_files(results: Path, slot: str, at_least: int):
    def found() -> Path | None:
        parent = (results / slot).parent
        for staging in parent.glob(f".{Path(slot).name}.partial-*"):
            files = [p for p in staging.iterdir() if not p.name.startswith(".")] if staging.is_dir() else []
            if len(files) >= at_least:
                return staging
        return None
    return found


@pytest.mark.slow
def test_sigkill_mid_epoch_then_while_writing_then_rerun_gives_identical_numbers(slow_run):
    start, run_here, results, same_as_reference = slow_run
    # 1. killed in the middle of the second epoch of the first run: nothing is left that looks complete
    proc = start()
    proc.wait_for(f"{SLOTS[0]} epoch 1/2")
    code, err = proc.kill()
    assert code == -signal.SIGKILL and f"{SLOTS[0]} epoch 2/2" not in err
    assert all(check_run(results / slot).status == "missing" for slot in SLOTS)
    # 2. killed while writing the first run's files (REPORTGEN_TEST_WRITE_DELAY: a pause after each file)
    proc = start(REPORTGEN_TEST_WRITE_DELAY="0.3")
    staging = proc.poll_path(_staging_with_files(results, SLOTS[0], at_least=2))
    code, _ = proc.kill()
    assert code == -signal.SIGKILL and staging.exists() and not (staging / MARKER).exists()
    assert check_run(results / SLOTS[0]).status == "missing"
    listed_complete = [slot for slot in SLOTS if check_run(results / slot).status == "complete"]
    assert listed_complete == []
    # 3. the next run cleans up and produces exactly the numbers of an uninterrupted run
    result = run_here()
    assert result.code == 0, result.err
    assert "removed 1 half-written run(s)" in result.err and "0 of 2 runs cached; 2 to run" in result.err
    same_as_reference()


@pytest.mark.slow
def test_sigkill_between_moving_the_old_run_aside_and_the_new_one_in(slow_run, slow):
    start, run_here, results, same_as_reference = slow_run
    shutil.copytree(slow[0] / "reference", results)
    proc = start("--force", REPORTGEN_TEST_WRITE_DELAY="0.2")
    old = proc.poll_path(lambda: next((results / SLOTS[0]).parent.glob(".seed-0.old-*"), None))
    code, _ = proc.kill()
    assert code == -signal.SIGKILL and not (results / SLOTS[0]).exists()  # the slot is empty at this moment
    assert check_run(old).status == "complete"
    result = run_here()
    assert result.code == 0, result.err
    assert "restored 1 complete run(s)" in result.err and "2 of 2 runs cached; 0 to run" in result.err
    same_as_reference()


@pytest.mark.slow
def test_ctrl_c_exits_130_keeps_finished_runs_and_a_second_run_is_refused(slow_run):
    start, run_here, results, same_as_reference = slow_run
    # The first run is written at once; writing the second stalls for a minute after its first file. Waiting for a
    # log line and then racing the process, as this test once did, failed on a loaded machine: the run finished
    # before the Ctrl-C arrived.
    proc = start(REPORTGEN_TEST_WRITE_DELAY="0,60")
    proc.poll_path(_staging_with_files(results, SLOTS[1], at_least=1))  # the first run is written, the second stalls
    # a second `reportgen run` on the same results directory refuses, in one line, and writes nothing
    before = tree_hash(results)
    second = run_here()
    one_line_error(second, 1, "another `reportgen run`", f"pid {proc.popen.pid}", "wait for it to finish")
    assert "half-written" not in second.err
    code, err = proc.signal(signal.SIGINT)
    assert code == 130 and "Traceback" not in err, err
    assert err.rstrip().splitlines()[-1] == ("interrupted: finished runs are kept; run the same command again "
                                              "to continue")
    assert {k: v for k, v in tree_hash(results).items() if k.startswith(SLOTS[0])} == \
        {k: v for k, v in before.items() if k.startswith(SLOTS[0])}
    assert check_run(results / SLOTS[0]).status == "complete"
    assert check_run(results / SLOTS[1]).status == "missing"
    assert not list(results.rglob(".seed-*")), "Ctrl-C left a staging directory"
    result = run_here()
    assert result.code == 0 and "1 of 2 runs cached; 1 to run" in result.err, result.err
    same_as_reference()


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_with_exit_143(slow_run):
    """`kill PID` (SIGTERM, also what CI timeouts and closing terminals send) while a run is being written."""
    start, run_here, results, same_as_reference = slow_run
    proc = start(REPORTGEN_TEST_WRITE_DELAY="0.3")
    proc.poll_path(_staging_with_files(results, SLOTS[0], at_least=1))
    code, err = proc.signal(signal.SIGTERM)
    assert code == 143 and "Traceback" not in err, err
    assert err.rstrip().splitlines()[-1] == ("terminated (SIGTERM): finished runs are kept; run the same command "
                                              "again to continue")
    assert all(check_run(results / slot).status == "missing" for slot in SLOTS)
    assert not list(results.rglob(".seed-*")), "SIGTERM left a staging directory"
    assert run_here().code == 0
    same_as_reference()


# ---- interruptions of parallel runs (`reportgen run --workers N`, the default on a multi-core CPU) ---------------
def _children(pid: int) -> list[int]:
    """The ids of the processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_sigkill_of_a_parallel_run_stops_its_workers_too(slow_run):
    """`kill -9` of `reportgen run` (or the OOM killer): its worker processes must die with it, not go on training
    and writing into a results directory whose lock nobody holds any more."""
    start, run_here, results, same_as_reference = slow_run
    proc = start(workers=2, REPORTGEN_TEST_WRITE_DELAY="0.3")  # writing a run takes > 2 s
    proc.wait_for("in 2 worker processes")
    proc.wait_for("epoch 1/2")
    workers = _children(proc.popen.pid)
    try:
        code, _ = proc.kill()
        proc.thread.join(timeout=30)  # stderr ends when every process holding it (the workers too) has exited
        err = "".join(proc.stderr)
        assert code == -signal.SIGKILL
        assert not proc.thread.is_alive(), "worker processes outlived their killed parent"
        assert [check_run(results / slot).status for slot in SLOTS] == ["missing", "missing"], (
            f"worker processes went on writing runs after their parent was killed:\n{err}")
    finally:
        for pid in workers:  # started by this test: none may outlive it, whatever the outcome
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    result = run_here()
    assert result.code == 0, result.err
    same_as_reference()


@pytest.mark.slow
def test_sigterm_of_a_parallel_run_leaves_no_half_written_run(slow_run):
    """SIGTERM (or Ctrl-C) while workers write their runs: exit 143, the one-line message, and the workers'
    staging directories are removed like a serial run's."""
    start, run_here, results, same_as_reference = slow_run
    proc = start(workers=2, REPORTGEN_TEST_WRITE_DELAY="0.3")
    proc.poll_path(_staging_with_files(results, SLOTS[0], at_least=1))
    code, _ = proc.signal(signal.SIGTERM)
    proc.thread.join(timeout=120)
    err = "".join(proc.stderr)
    assert code == 143 and "Traceback" not in err, err
    assert err.rstrip().splitlines()[-1] == ("terminated (SIGTERM): finished runs are kept; run the same command "
                                              "again to continue")
    assert not list(results.rglob(".seed-*")), f"SIGTERM left a worker's staging directory:\n{err}"
    assert {check_run(results / slot).status for slot in SLOTS} <= {"complete", "missing"}
    assert run_here().code == 0
    same_as_reference()



def test_the_write_delay_hook_takes_one_delay_per_run_written(monkeypatch):
    """``REPORTGEN_TEST_WRITE_DELAY``: one number for every pause, or one per run the process writes, the last holding
    for the rest; unset or unreadable, no pause at all."""
    from reportgen import fsutil
    slept: list[float] = []
    monkeypatch.setattr(fsutil.time, "sleep", slept.append)
    monkeypatch.setenv("REPORTGEN_TEST_WRITE_DELAY", "0,60")
    for index in (0, 1, 2):
        fsutil.pause_for_tests(index)
    monkeypatch.setenv("REPORTGEN_TEST_WRITE_DELAY", "0.3")
    fsutil.pause_for_tests(5)
    monkeypatch.setenv("REPORTGEN_TEST_WRITE_DELAY", "soon")
    fsutil.pause_for_tests()
    monkeypatch.delenv("REPORTGEN_TEST_WRITE_DELAY")
    fsutil.pause_for_tests()
    assert slept == [0.0, 60.0, 60.0, 0.3]
