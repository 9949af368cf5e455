"""Ray against the local process pool, side by side on this machine: the same studies trained from an empty store by
``reportgen run --executor local --workers 2`` and by ``--executor ray`` on a 2-CPU Ray head, alternately, and the
wall time of each split into where it goes.

    sudo python scripts/bench_executors.py [STUDY...] [--profile smoke] [--repeat 2]

It runs in a network namespace of its own (it re-executes itself under ``unshare -n``, which needs root), where
loopback is the only interface: the Ray head and its workers never reach the machine's network. The head is
started once, before timing (a teacher starts a cluster once, not per report), and its processes are ended by id.

Phases, from the time each line of ``reportgen run`` reaches this script:
- start: Python, imports, checks, provisioning and planning, up to "N of M runs cached";
- connect: (Ray only) up to "ray: connected", i.e. ``ray.init`` with the package shipped in ``runtime_env``;
- train: from there to the last run written ("... test accuracy ...");
- precompute: the analysis cache and the exit.
``busy`` is the sum of the runs' own training time (``wall_seconds`` in run.json): the work both sides share.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PORT = 6379
# Ray starts its workers at nice 15 (they yield to everything else on a machine); the local pool's run at nice 0.
# On a shared machine that alone would decide the comparison, so the head here gives its workers nice 0.
HEAD_ENV = {"RAY_worker_niceness": "0"}


def in_namespace() -> bool:
    return os.environ.get("RG_BENCH_NS") == "1"


def reexec_in_namespace() -> None:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        sys.exit("bench_executors: needs root and unshare (util-linux) for a loopback-only network namespace")
    command = f"ip link set lo up && exec {sys.executable} {' '.join(map(repr, sys.argv))}"
    sys.exit(subprocess.call(["unshare", "-n", "bash", "-c", command], env={**os.environ, "RG_BENCH_NS": "1"}))


def start_head(temp: str) -> None:
    subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--node-ip-address=127.0.0.1",
                    f"--port={PORT}", "--num-cpus=2", f"--temp-dir={temp}", "--disable-usage-stats",
                    "--include-dashboard=false", "--object-store-memory=200000000"],
                   check=True, capture_output=True, env={**os.environ, **HEAD_ENV})


def stop_namespace_processes() -> None:
    """Every other process in this namespace (the Ray head, raylet, workers): started here, ended by id."""
    mine = os.readlink("/proc/self/ns/net")
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            pid = int(entry.name)
            if pid != os.getpid() and os.readlink(entry / "ns" / "net") == mine:
                os.kill(pid, 9)
        except (OSError, ValueError):
            continue


def timed_run(args: list[str], workdir: Path, env: dict[str, str]) -> tuple[float, dict[str, float], str]:
    """Run ``reportgen`` in ``workdir``; (wall seconds, seconds at each milestone line, output)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "reportgen.cli", *args], cwd=workdir, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    marks: dict[str, float] = {}
    lines = []
    for line in proc.stdout:  # type: ignore[union-attr]
        at = time.perf_counter() - started
        lines.append(line)
        if " runs cached" in line and "planned" not in marks:
            marks["planned"] = at
        elif line.startswith("ray: connected"):
            marks["connected"] = at
        elif ": test accuracy " in line:
            marks["last_run"] = at
    code = proc.wait()
    wall = time.perf_counter() - started
    if code != 0:
        sys.exit(f"bench_executors: reportgen {' '.join(args)} exited {code}:\n{''.join(lines[-20:])}")
    return wall, marks, "".join(lines)


def busy_seconds(results: Path) -> float:
    return sum(json.loads(p.read_text())["wall_seconds"] for p in results.glob("*/*/seed-*/run.json"))


def one_side(name: str, extra: list[str], studies: list[str], profile: str, base: Path) -> dict[str, float]:
    work = base / f"{name}-{time.monotonic_ns()}"
    work.mkdir()
    os.symlink(ROOT / "experiments", work / "experiments")
    env = {**os.environ, "REPORTGEN_CACHE": str(work / ".cache"),
           "REPORTGEN_DATA": os.environ.get("REPORTGEN_DATA", str(ROOT / "data"))}
    wall, marks, _ = timed_run(["--results", str(work / "results"), "run", *studies, "--profile", profile, *extra],
                               work, env)
    planned = marks.get("planned", 0.0)
    connected = marks.get("connected", planned)
    last = marks.get("last_run", connected)
    return {"wall": wall, "start": planned, "connect": connected - planned, "train": last - connected,
            "precompute": wall - last, "busy": busy_seconds(work / "results"),
            "runs": float(len(list((work / "results").glob("*/*/seed-*/run.json"))))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("studies", nargs="*")
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--repeat", type=int, default=2)
    opts = parser.parse_args()
    if not in_namespace():
        reexec_in_namespace()
    temp = tempfile.mkdtemp(prefix="rg-bench-", dir="/tmp")
    base = Path(temp) / "work"
    base.mkdir()
    sides = {"local": ["--executor", "local", "--workers", "2"],
             "ray": ["--executor", "ray", "--address", f"127.0.0.1:{PORT}"]}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    try:
        started = time.perf_counter()
        start_head(temp)
        print(f"ray head (2 CPUs) started in {time.perf_counter() - started:.1f}s (not counted)", flush=True)
        for round_ in range(opts.repeat):
            for name, extra in sides.items():  # alternately, so load changes on the machine hit both sides
                results[name].append(one_side(name, extra, opts.studies, opts.profile, base))
                r = results[name][-1]
                print(f"round {round_ + 1} {name:>5}: {r['wall']:6.1f}s wall = start {r['start']:.1f} + connect "
                      f"{r['connect']:.1f} + train {r['train']:.1f} + precompute/exit {r['precompute']:.1f}; "
                      f"{int(r['runs'])} runs, {r['busy']:.1f}s of training in them", flush=True)
    finally:
        stop_namespace_processes()
        shutil.rmtree(temp, ignore_errors=True)
    mean = {name: {k: sum(r[k] for r in rs) / len(rs) for k in rs[0]} for name, rs in results.items()}
    what = " ".join(opts.studies) or "all studies"
    print(f"\n{what}, profile {opts.profile}, mean of {opts.repeat} round(s), load {os.getloadavg()[0]:.2f}:")
    for name, m in mean.items():
        print(f"  {name:>5}: {m['wall']:6.1f}s (start {m['start']:.1f}, connect {m['connect']:.1f}, train "
              f"{m['train']:.1f}, precompute/exit {m['precompute']:.1f}; busy {m['busy']:.1f})")
    print(f"ray / local wall time: {mean['ray']['wall'] / mean['local']['wall']:.2f}x; training phase alone: "
          f"{mean['ray']['train'] / max(mean['local']['train'], 1e-9):.2f}x")


if __name__ == "__main__":
    main()
