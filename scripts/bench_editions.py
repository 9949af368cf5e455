"""One edition against both, side by side: a warm `reportgen build --langs en` and a warm `reportgen build` (English
and Portuguese), with nothing to render.

    python scripts/bench_editions.py [STUDY ...] [--profile quick] [--repeat 3]

Run it from the project root once results exist. It first builds both editions once (not timed: posts and figures
of both become warm), then times each command ``--repeat`` times, interleaved so that a busy machine slows both
alike, and prints the median wall seconds of each and their ratio (issue 18's goal: at most 1.5).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL = 1.5


def timed(argv: list[str], cwd: Path) -> float:
    """Wall seconds of one command, which must succeed."""
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("studies", nargs="*")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    project = Path.cwd()
    build = [sys.executable, "-m", "reportgen.cli", "build", *args.studies, "--profile", args.profile]
    commands = {"one edition (--langs en)": [*build, "--langs", "en"], "both editions": build}
    timed(build, project)  # warm: every post and figure of both editions
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, argv in commands.items():
            seconds[name].append(timed(argv, project))
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    for name, values in seconds.items():
        print(f"{name:<26} median {medians[name]:6.1f} s   runs: {', '.join(f'{v:.1f}' for v in values)}")
    one, both = medians.values()
    print(f"both / one = {both / one:.2f} (goal: at most {GOAL})")


if __name__ == "__main__":
    main()
