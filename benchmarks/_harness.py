"""Shared pieces of the issue #19 ("Fast at any size") benchmarks.

Not a benchmark itself: an emulator in its own process, a child process measured by
``os.wait4`` (its user+sys CPU) and by its own ``VmHWM`` (peak RSS), the generated
inputs, and a median. The scripts that use it run from the repository root or from
anywhere: they put the repository (and its plugins) first on ``sys.path``, and every
child gets the same ``PYTHONPATH``, so the code measured is this tree's.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PLUGIN_DIRS = sorted(str(p) for p in (REPO / "plugins").iterdir()
                     if p.is_dir()) if (REPO / "plugins").is_dir() else []
#: What children import from: this tree first, then the benchmarks (bare_client, ...).
SEARCH_PATH = [str(REPO), *PLUGIN_DIRS, str(BENCH)]

for _entry in reversed(SEARCH_PATH):
    if _entry not in sys.path:
        sys.path.insert(0, _entry)

#: Prepended to every child's code: its own peak RSS, read by itself (not ``ru_maxrss``,
#: which on Linux keeps the parent's high-water mark across fork and exec).
from tests.peak_rss import PEAK_RSS_FUNCTION  # noqa: E402  (this tree is on sys.path now)

RESULT_MARK = "@@BENCH-RESULT "


def child_env(state_dir: Optional[str] = None) -> Dict[str, str]:
    """The environment of every child: this tree first on PYTHONPATH, a private state dir."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*SEARCH_PATH, *filter(None, [env.get("PYTHONPATH")])])
    env["XDG_STATE_HOME"] = state_dir or env.get("XDG_STATE_HOME") or tempfile.mkdtemp(
        prefix="cb-bench-state-")
    env.pop("ANTHROPIC_API_KEY", None)
    env.pop("ANTHROPIC_BASE_URL", None)
    # as installed packages run: from their .pyc files (a sandbox may forbid writing them,
    # and then every start compiles every module it imports, for every contender alike)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def job_script_main(run: Any) -> None:
    """The command line of a baseline job script: ``INPUT -o OUT --base-url URL [--poll S]``;
    prints what ``run(input, output, base_url, poll)`` counted, and the seconds it took."""
    import argparse

    parser = argparse.ArgumentParser(description=(sys.modules["__main__"].__doc__ or "")
                                     .splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--poll", type=float, default=0.2, help="poll interval, seconds")
    args = parser.parse_args()
    started = time.perf_counter()
    counts = run(args.input, args.output, args.base_url, args.poll)
    counts["seconds"] = round(time.perf_counter() - started, 3)
    print(json.dumps(counts))


def venv_script(name: str) -> str:
    """A console script beside this interpreter (the venv's ``claudebatch``)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


class EmulatorProcess:
    """``python -m claudebatch emulator --port 0 --rate inf --quiet`` in its own process.

    Its CPU is not the client's: a contender's figures are its own child's only.
    """

    def __init__(self, *extra: str, seed: int = 1) -> None:
        self.args = ["--rate", "inf", "--seed", str(seed), *extra]
        self.proc: Optional[subprocess.Popen[str]] = None
        self.url = ""

    def __enter__(self) -> EmulatorProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "claudebatch", "emulator", "--port", "0", "--quiet",
             *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=child_env())
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            found = re.search(r"export ANTHROPIC_BASE_URL=(\S+)", line)
            if found:
                self.url = found.group(1)
                return self
        raise SystemExit("the emulator did not start")

    def peak_rss_mb(self) -> Optional[float]:
        assert self.proc is not None
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def cpu_s(self) -> Optional[float]:
        """The emulator's own CPU so far (user + sys, from /proc/PID/stat)."""
        assert self.proc is not None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc: Any) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def run_child(code: str, args: Sequence[str], *, env: Optional[Dict[str, str]] = None,
              timeout: Optional[float] = None) -> Dict[str, Any]:
    """Run ``python -c PEAK_RSS_FUNCTION + code ARGS``; its figures and the JSON it reported.

    The child reports one line ``RESULT_MARK {json}`` on stdout. Returned: that JSON plus
    ``process_s`` (wall time of the whole process, interpreter start included),
    ``cpu_s`` (user + sys from ``os.wait4``) and ``ru_maxrss_mb``.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", PEAK_RSS_FUNCTION + code, *args],
                                stdout=out, stderr=err, env=env or child_env())
        deadline = None if timeout is None else started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                raise SystemExit(f"child timed out after {timeout} s")
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise SystemExit(f"child exited {proc.returncode}:\n{tail}")
    reported = [line[len(RESULT_MARK):] for line in stdout.splitlines()
                if line.startswith(RESULT_MARK)]
    if not reported:
        raise SystemExit(f"child reported nothing:\n{stdout[-2000:]}\n{stderr[-2000:]}")
    result: Dict[str, Any] = json.loads(reported[-1])
    result.update(process_s=elapsed, cpu_s=usage.ru_utime + usage.ru_stime,
                  ru_maxrss_mb=usage.ru_maxrss / 1024)
    return result


def report_line(values: Dict[str, Any]) -> str:
    """The line a child prints for ``run_child`` (put in child code as a string)."""
    return RESULT_MARK + json.dumps(values)


# --- inputs -----------------------------------------------------------------------------

def ticket_request(i: int) -> Dict[str, Any]:
    """One ~0.8 KB request, the shape issue #19's job figures use."""
    return {"custom_id": f"req-{i:07d}", "params": {
        "model": "claude-haiku-4-5", "max_tokens": 256,
        "system": "You label support tickets with one word. " * 8,
        "messages": [{"role": "user", "content": (
            f"Ticket {i}: the export to CSV fails on page {i % 97} after the update. ") * 4}]}}


def tiny_request(i: int) -> Dict[str, Any]:
    return {"custom_id": f"r{i}", "params": {
        "model": "claude-haiku-4-5", "max_tokens": 16,
        "messages": [{"role": "user", "content": f"q{i}"}]}}


def large_request(i: int, size: int) -> Dict[str, Any]:
    """One request of about ``size`` bytes: a long document in the user turn."""
    words = "The export to CSV fails on page seven after the update; see the log. "
    text = (words * (size // len(words) + 1))[:max(0, size - 200)]
    return {"custom_id": f"doc-{i:06d}", "params": {
        "model": "claude-haiku-4-5", "max_tokens": 512,
        "messages": [{"role": "user", "content": f"Document {i}:\n{text}"}]}}


def _dumps() -> Any:
    try:
        import orjson

        return orjson.dumps
    except ImportError:
        return lambda value: json.dumps(value, separators=(",", ":")).encode()


def write_jsonl(path: Path, rows: Iterator[Dict[str, Any]]) -> int:
    """Write rows one per line; the bytes written."""
    dumps = _dumps()
    with open(path, "wb") as out:
        buffer: List[bytes] = []
        for row in rows:
            buffer.append(dumps(row) + b"\n")
            if len(buffer) >= 4096:
                out.write(b"".join(buffer))
                buffer.clear()
        out.write(b"".join(buffer))
    return path.stat().st_size


def check_output(path: Path, expected: int) -> int:
    """Raise unless ``path`` has ``expected`` lines with as many distinct custom_ids."""
    try:
        import orjson

        loads: Any = orjson.loads
    except ImportError:
        loads = json.loads
    ids = set()
    lines = 0
    with open(path, "rb") as handle:
        for line in handle:
            if line.strip():
                lines += 1
                ids.add(loads(line)["custom_id"])
    if lines != expected or len(ids) != expected:
        raise SystemExit(f"{path}: {lines:,} lines, {len(ids):,} distinct custom_ids; "
                         f"expected {expected:,}")
    return lines


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def median_dict(runs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Per key, the median of the numbers across runs (other values from the first run)."""
    merged: Dict[str, Any] = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[key] = median([run[key] for run in runs])
    merged["runs"] = len(runs)
    return merged


def fmt_ratio(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2f}x"
