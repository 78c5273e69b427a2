"""Peak RSS of a 1,000,000-request job (issue #19: < 100 MB).

A child process runs ``BatchClient(plugins=[], load_entry_points=False).run(...)`` on a
JSONL of ``--requests`` tiny requests (~110 bytes each) against the emulator in its own
process (``--rate inf``), and reports its own VmHWM from /proc/self/status: once after
its imports (the floor, for reference) and once after the job, and when in the job its
RSS was highest (sampled every 0.25 s). Also its wall time and
CPU (user + sys, ``os.wait4``). The output is checked: N lines, N distinct custom_ids.
With ``--bare``, the bare client (``benchmarks/bare_client.py``) runs the same job in
the same way, for comparison.

    python benchmarks/memory_1m.py [--requests 1000000] [--poll 0.5] [--bare]

Importable: ``measure(requests, poll, bare) -> dict``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    RESULT_MARK,
    EmulatorProcess,
    check_output,
    child_env,
    run_child,
    tiny_request,
    write_jsonl,
)

CHILD = """
import json, sys, threading, time
INPUT, OUTPUT, URL, POLL = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
{imports}
floor = peak_rss_mb()
started = time.perf_counter()
top = [0.0, 0.0]  # the largest VmRSS sampled, and when (seconds into the job)

def sample():
    while True:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
                    if rss > top[0]:
                        top[:] = [rss, time.perf_counter() - started]
        time.sleep(0.25)

threading.Thread(target=sample, daemon=True).start()
{run}
print({mark!r} + json.dumps(dict(info, job_s=time.perf_counter() - started,
                                 floor_mb=floor, peak_rss_mb=peak_rss_mb(),
                                 peak_at_s=top[1])))
"""

CONTENDERS = {
    "claudebatch": ("claudebatch, no plugins", "from claudebatch import BatchClient", """
client = BatchClient(api_key="x", base_url=URL, plugins=[], load_entry_points=False)
report = client.run(INPUT, output=OUTPUT, poll_interval=POLL)
assert report.complete, report.summary()
info = {"batches": len(report.batches)}
"""),
    "bare": ("bare client", "from bare_client import run_bare",
             "info = run_bare(INPUT, OUTPUT, URL, POLL)"),
}


def measure(requests: int = 1_000_000, poll: float = 0.5, bare: bool = False
            ) -> Dict[str, Any]:
    figures: Dict[str, Any] = {"requests": requests, "rows": {}}
    with tempfile.TemporaryDirectory(prefix="cb-mem1m-") as tmp:
        source = Path(tmp) / "requests.jsonl"
        figures["input_mb"] = write_jsonl(source, (tiny_request(i) for i in range(requests))
                                          ) / 1e6
        for name in ["claudebatch", *(["bare"] if bare else [])]:
            _, imports, run = CONTENDERS[name]
            output = Path(tmp) / f"{name}.out.jsonl"
            with EmulatorProcess() as emu:
                row = run_child(CHILD.format(imports=imports, run=run, mark=RESULT_MARK),
                                [str(source), str(output), emu.url, str(poll)],
                                env=child_env(tmp))
                row["emulator_rss_mb"] = emu.peak_rss_mb() or 0.0
            check_output(output, requests)
            output.unlink()
            figures["rows"][name] = row
    return figures


def print_figures(figures: Dict[str, Any]) -> None:
    print(f"job: {figures['requests']:,} tiny requests, {figures['input_mb']:.1f} MB JSONL; "
          f"emulator in its own process (--rate inf)   (goal: peak RSS < 100 MB)")
    for name, row in figures["rows"].items():
        print(f"  {CONTENDERS[name][0]:<24} peak RSS {row['peak_rss_mb']:>7.1f} MB "
              f"(after imports {row['floor_mb']:.1f} MB; highest {row['peak_at_s']:.0f} s "
              f"into the job)   wall {row['process_s']:>7.1f} s "
              f"(job {row['job_s']:.1f} s)   CPU {row['cpu_s']:>7.1f} s   "
              f"batches {row.get('batches', '?')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--poll", type=float, default=0.5, help="poll interval, seconds")
    parser.add_argument("--bare", action="store_true", help="also run the bare client")
    args = parser.parse_args()
    print_figures(measure(args.requests, args.poll, args.bare))


if __name__ == "__main__":
    main()
