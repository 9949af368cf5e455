"""A warm `make report` against its floor, side by side: `reportgen run` + `reportgen build` with nothing to do,
and a bare `mkdocs build` of the same docs/ (the command `reportgen build` runs, into a scratch folder) for every
edition of the site: the floor is the sum of those bare builds.

    python scripts/bench_warm.py [STUDY ...] [--profile quick] [--repeat 3] [--edition CONFIG ...]

``--edition`` names the MkDocs config of one edition (default: mkdocs.yml alone, the one edition today); give it
once per edition, e.g. ``--edition mkdocs.yml --edition <the Portuguese edition's config>``, and the floor is the
bare builds of all of them, each run with the same interpreter on the same docs, in the same rounds.

Run it from the project root once results exist (`reportgen run` must have nothing to train: the script refuses
to time a run that trained). It first makes everything warm (one run and one build, not timed), then times each
command ``--repeat`` times, interleaved so that a busy machine slows all three alike, and prints the median wall
and CPU seconds of each and the ratio of the warm report to the bare build (the goal: at most 2).
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 2.0


def timed(argv: list[str], cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child, its output) of one command, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("studies", nargs="*", help="the studies of the report (default: all)")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--edition", action="append", default=[], metavar="CONFIG",
                        help="the MkDocs config of one edition (repeat for each; default: mkdocs.yml)")
    args = parser.parse_args()
    project = Path.cwd()
    reportgen = [sys.executable, "-m", "reportgen.cli"]
    run = reportgen + ["run", *args.studies, "--profile", args.profile]
    build = reportgen + ["build", *args.studies, "--profile", args.profile]
    for argv in (run, build):  # warm: the analysis cache, the figures, the posts, the vendored packages
        timed(argv, project)
    scratch = Path(tempfile.mkdtemp(prefix=".bench-site-", dir=project))
    bares = [[sys.executable, "-m", "mkdocs", "build", "--clean", "--strict", "--config-file",
              str(project / config), "--site-dir", str(scratch / f"site-{index}")]
             for index, config in enumerate(args.edition or ["mkdocs.yml"])]
    times: dict[str, list[tuple[float, float]]] = {"run": [], "build": [], "mkdocs": []}
    try:
        for _ in range(args.repeat):
            for name, argv in (("run", run), ("build", build)):
                wall, cpu, output = timed(argv, project)
                if name == "run" and "; 0 to run" not in output:
                    sys.exit(f"`reportgen run` was not warm (it trained):\n{output}")
                times[name].append((wall, cpu))
            editions = [timed(argv, project)[:2] for argv in bares]  # the floor: every edition's bare build
            times["mkdocs"].append((sum(w for w, _ in editions), sum(c for _, c in editions)))
    finally:
        subprocess.run(["rm", "-rf", str(scratch)], check=False)
    median = {name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
              for name, t in times.items()}
    report = (median["run"][0] + median["build"][0], median["run"][1] + median["build"][1])
    env_note = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    print(f"warm report of {', '.join(args.studies) or 'every study'} ({args.profile}); medians of {args.repeat}, "
          f"{env_note} at the end; floor: bare build of {', '.join(args.edition or ['mkdocs.yml'])}")
    print(f"{'':24}{'wall s':>8}{'CPU s':>8}")
    for label, (wall, cpu) in (("reportgen run", median["run"]), ("reportgen build", median["build"]),
                               ("warm report (both)", report), ("bare mkdocs build(s)", median["mkdocs"])):
        print(f"{label:24}{wall:8.2f}{cpu:8.2f}")
    ratio = report[0] / median["mkdocs"][0], report[1] / median["mkdocs"][1]
    print(f"ratio warm report / bare build: {ratio[0]:.2f} (wall), {ratio[1]:.2f} (CPU); goal <= {GOAL:g}")


if __name__ == "__main__":
    main()
