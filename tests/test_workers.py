"""``reportgen run --workers N``: runs trained in parallel processes give exactly the numbers of a serial run."""
from __future__ import annotations

import json

import pytest

from reportgen.executors import default_workers
from reportgen.runs import split_twins
from tests.conftest import invoke


@pytest.mark.slow
def test_parallel_runs_are_identical_to_serial_runs(project):
    serial = invoke("--results", "serial", "run", "--profile", "smoke", "--workers", "1")
    assert serial.exit_code == 0, serial.output
    parallel = invoke("--results", "parallel", "run", "--profile", "smoke", "--workers", "2")
    assert parallel.exit_code == 0, parallel.output
    assert "in 2 worker processes" in parallel.output
    runs = sorted(p.relative_to(project / "serial") for p in (project / "serial").glob("*/*/seed-*"))
    assert len(runs) == 2
    for run in runs:
        a, b = project / "serial" / run, project / "parallel" / run
        assert (a / "weights.safetensors").read_bytes() == (b / "weights.safetensors").read_bytes(), run
        assert (a / "predictions.npz").read_bytes() == (b / "predictions.npz").read_bytes(), run
        ma, mb = json.loads((a / "metrics.json").read_text()), json.loads((b / "metrics.json").read_text())
        assert ma["test_acc"] == mb["test_acc"] and ma["best_epoch"] == mb["best_epoch"], run
        for side in (a, b):  # the record states the threads the run trained on, not the parent's count
            assert json.loads((side / "run.json").read_text())["device"].endswith(", 1 thread)"), side
    # the second time everything is cached, whatever the worker count
    again = invoke("--results", "parallel", "run", "--profile", "smoke", "--workers", "2")
    assert "2 of 2 runs cached; 0 to run" in again.output


class _Run:
    def __init__(self, key: str):
        self.key = key


def test_a_run_declared_twice_is_trained_once_then_copied():
    runs = [_Run("a"), _Run("b"), _Run("a"), _Run("c"), _Run("b")]
    first, later = split_twins(runs, force=False)
    assert [r.key for r in first] == ["a", "b", "c"] and [r.key for r in later] == ["a", "b"]
    first, later = split_twins(runs, force=True)  # --force retrains every run, twins included
    assert len(first) == 5 and not later


def test_one_worker_per_core_on_a_cpu_and_one_on_an_accelerator():
    assert default_workers("cuda") == 1 and default_workers("mps") == 1
    assert default_workers("cpu") >= 1
