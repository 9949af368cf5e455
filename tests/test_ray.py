"""``reportgen run --executor ray`` on a real Ray cluster (not a mock): the same weights as a serial run, a killed
worker that loses nothing, and an unreachable address that is one line, fast.

The cluster lives in a network namespace of its own (``unshare -n``, loopback only): outside one, Ray connects
through the machine's own interface address even when told 127.0.0.1, and test traffic must stay on loopback. One
head (2 CPUs) serves every test here; it is started once (seconds) and its processes are ended by id afterwards.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from reportgen.store import check_run
from tests.conftest import ROOT, run_main

pytestmark = pytest.mark.slow
PORT = 6379


def _namespaces_available() -> str | None:
    """Why a loopback-only network namespace cannot be made here (None: it can)."""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return "unshare/nsenter (util-linux) are not installed"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace (unshare -n needs root): {probe.stderr.strip()}"
    return None


class Namespace:
    """A network namespace with only loopback up, held open by a process we started; commands run in it."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(["unshare", "-n", "bash", "-c", "ip link set lo up && exec sleep infinity"])
        self.path = f"/proc/{self.holder.pid}/ns/net"
        for _ in range(100):  # until bash has brought loopback up and become sleep
            if Path(f"/proc/{self.holder.pid}/cmdline").read_bytes().startswith(b"sleep"):
                break
            time.sleep(0.05)
        self.inode = os.readlink(self.path)

    def command(self, *args: str) -> list[str]:
        return ["nsenter", f"--net={self.path}", *args]

    def processes(self) -> list[int]:
        """Every process in this namespace but its holder: only processes this test module started."""
        found = []
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                if int(entry.name) != self.holder.pid and os.readlink(entry / "ns" / "net") == self.inode:
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    def close(self) -> None:
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.holder.kill()
        self.holder.wait()


def ray_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ray.scripts.scripts", *args]


@pytest.fixture(scope="module")
def cluster():
    """A Ray head with 2 CPUs on 127.0.0.1 inside its own namespace: (namespace, address)."""
    reason = _namespaces_available()
    if reason:
        pytest.skip(f"Ray tests need a loopback-only network namespace: {reason}")
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    ns = Namespace()
    temp = tempfile.mkdtemp(prefix="rg-ray-", dir="/tmp")  # short: Ray's socket paths must stay < 108 bytes
    try:
        started = subprocess.run(ns.command(*ray_cli("start", "--head", "--node-ip-address=127.0.0.1",
                                                     f"--port={PORT}", "--num-cpus=2", f"--temp-dir={temp}",
                                                     "--disable-usage-stats", "--include-dashboard=false",
                                                     "--object-store-memory=200000000")),
                                 capture_output=True, text=True, timeout=180,
                                 env={**os.environ, "RAY_worker_niceness": "0"})  # not starved on a busy machine
        assert started.returncode == 0, started.stdout + started.stderr
        yield ns, f"127.0.0.1:{PORT}"
    finally:
        ns.close()  # the head, raylet and workers: by id, every process in the namespace
        shutil.rmtree(temp, ignore_errors=True)


def smoke_project(project: Path, epochs: int = 1) -> None:
    """The shipped dropout study with a smoke profile of two seeds and ``epochs`` epochs."""
    study = yaml.safe_load((ROOT / "experiments" / "dropout.yaml").read_text())
    study["profiles"] = {**study.get("profiles", {}), "smoke": {"epochs": epochs, "seeds": [0, 1]}}
    (project / "experiments" / "dropout.yaml").write_text(yaml.safe_dump(study, sort_keys=False))


def reportgen(ns: Namespace, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(ns.command(sys.executable, "-m", "reportgen.cli", *args), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)


def slots(results: Path) -> list[Path]:
    return sorted(p.relative_to(results) for p in results.glob("*/*/seed-*"))


def assert_same_runs(serial: Path, other: Path) -> None:
    assert slots(serial) and slots(serial) == slots(other)
    for slot in slots(serial):
        assert check_run(other / slot).status == "complete", slot
        for name in ("weights.safetensors", "predictions.npz", "metrics.json"):
            assert (serial / slot / name).read_bytes() == (other / slot / name).read_bytes(), (slot, name)


def _train_tasks(ns: Namespace) -> list[int]:
    found = []
    for pid in ns.processes():
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::_train_task"):
                found.append(pid)
        except OSError:
            continue
    return found


def test_a_study_on_ray_with_a_worker_killed_mid_run_has_the_weights_of_a_serial_run(cluster, project):
    """One Ray run of four runs, one of whose tasks is killed mid-run: Ray retries it, nothing is lost or left half
    written, and every run is byte for byte the serial run's. A second driver, given RAY_ADDRESS instead of
    --address, finds everything cached and submits nothing."""
    ns, address = cluster
    smoke_project(project, epochs=12)  # long enough to be killed while training
    code, _, err = run_main("--results", "serial", "run", "--profile", "smoke", "--workers", "1")
    assert code == 0, err
    proc = reportgen(ns, "--results", "on-ray", "run", "--profile", "smoke", "--executor", "ray", "--address",
                     address)
    deadline, killed = time.time() + 240, None
    while killed is None and time.time() < deadline and proc.poll() is None:
        tasks = _train_tasks(ns)
        if tasks:
            time.sleep(0.5)  # mid-epoch
            killed = tasks[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.1)
    out, _ = proc.communicate(timeout=600)
    assert killed is not None, f"no training task was seen to kill:\n{out}"
    assert proc.returncode == 0, out
    assert "4 runs submitted" in out and "dropout/dropout/seed-1: test accuracy" in out
    assert not list((project / "on-ray").rglob(".seed-*")), "a staging directory was left"
    assert_same_runs(project / "serial", project / "on-ray")
    record = (project / "on-ray" / "dropout" / "dropout" / "seed-0" / "run.json").read_text()
    assert '"executor": "ray"' in record
    assert list((project / ".cache" / "analysis").rglob("activation_stats-*.npz")), "precompute did not run"
    again = reportgen(ns, "--results", "on-ray", "run", "--profile", "smoke", "--executor", "ray",
                      env={**os.environ, "RAY_ADDRESS": address})
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0 and "4 of 4 runs cached; 0 to run" in out and "submitted" not in out, out


def test_sigterm_cancels_the_outstanding_tasks_and_keeps_every_finished_run(cluster, project):
    ns, address = cluster
    smoke_project(project, epochs=12)
    proc = reportgen(ns, "--results", "on-ray", "run", "--profile", "smoke", "--executor", "ray", "--address",
                     address)
    deadline = time.time() + 240
    while not _train_tasks(ns) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert _train_tasks(ns), "no training task started"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "Traceback" not in out, out
    assert out.rstrip().splitlines()[-1].startswith("terminated (SIGTERM): finished runs are kept")
    for _ in range(300):  # force-cancelled: their workers are killed
        if not _train_tasks(ns):
            break
        time.sleep(0.1)
    assert not _train_tasks(ns), "tasks went on running after the driver was stopped"
    results = project / "on-ray"
    assert not list(results.rglob(".seed-*")), "a staging directory was left"
    assert {check_run(results / slot).status for slot in slots(results)} <= {"complete"}


@pytest.mark.parametrize("address", ["127.0.0.1:6390", "10.255.255.1:6379"], ids=["refused", "no-route"])
def test_an_unreachable_cluster_is_one_line_and_exit_2_before_anything_trains(project, address):
    reason = _namespaces_available()
    if reason:
        pytest.skip(f"Ray tests need a loopback-only network namespace: {reason}")
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    ns = Namespace()  # nothing listens in a fresh namespace, and only loopback exists
    try:
        proc = reportgen(ns, "run", "--profile", "smoke", "--executor", "ray", "--address", address)
        out, _ = proc.communicate(timeout=60)  # ray.init alone would wait about two minutes
    finally:
        ns.close()
    lines = out.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, out
    assert lines[0].startswith(f"error: cannot reach the Ray cluster at {address}") and "ray start --head" in lines[0]
    assert not (project / "results").exists() or not slots(project / "results")
