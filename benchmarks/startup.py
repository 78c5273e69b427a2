"""Start-up time of the ``claudebatch`` command (issue #19: ``claudebatch --help`` < 0.3 s).

Median wall time of ``--runs`` runs (default 10) of ``claudebatch --help`` (the console
script beside this interpreter, in a subprocess, output discarded), against two
baselines measured in the same run, alternated with it: ``python -c pass`` (the
interpreter alone) and ``python -c "import requests"`` (the one HTTP library a bare
client imports). Every child gets this tree first on PYTHONPATH.

    python benchmarks/startup.py [--runs 10]

Importable: ``measure(runs) -> dict``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import child_env, fmt_ratio, median, venv_script

COMMANDS: Dict[str, List[str]] = {
    "claudebatch --help": [venv_script("claudebatch"), "--help"],
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import requests'": [sys.executable, "-c", "import requests"],
}


def seconds(command: Sequence[str], env: Dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                   check=True)
    return time.perf_counter() - started


def measure(runs: int = 10) -> Dict[str, float]:
    """Median seconds of each command (alternated, after one warm-up run of each)."""
    env = child_env()
    times: Dict[str, List[float]] = {name: [] for name in COMMANDS}
    for command in COMMANDS.values():
        seconds(command, env)  # warm the page cache and the .pyc files
    for _ in range(runs):
        for name, command in COMMANDS.items():
            times[name].append(seconds(command, env))
    return {name: median(found) for name, found in times.items()}


def print_figures(figures: Dict[str, float], runs: int) -> None:
    print(f"start-up, median of {runs} runs (goal: claudebatch --help < 0.3 s)")
    for name, value in figures.items():
        print(f"  {name:<30} {value * 1000:>8.1f} ms")
    ours, bare, requests = figures.values()
    print(f"claudebatch --help / python -c pass: {fmt_ratio(ours / bare)}   "
          f"/ python -c 'import requests': {fmt_ratio(ours / requests)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    print_figures(measure(args.runs), args.runs)


if __name__ == "__main__":
    main()
