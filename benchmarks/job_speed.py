"""One job of 100,000 requests, four ways: wall time, client CPU and peak RSS (issue #19).

The same JSONL (~0.75 KB a request) goes through a job against the emulator, which runs
in its own process (``python -m claudebatch emulator --rate inf``, a new one for every
run) so its CPU is not counted. Each contender runs in its own child process:

* bare client: ``benchmarks/bare_client.py`` (requests + orjson; the baseline)
* claudebatch, no plugins: ``BatchClient(plugins=[], load_entry_points=False).run(...)``
* claudebatch, four plugins: SQLiteStore, CostTracker, PromptCache, RetryPolicy
* the official ``anthropic`` SDK by hand: ``benchmarks/official_sdk_job.py``

all with a poll interval of 0.2 s. Figures per contender: wall time of the whole child
process (interpreter start and imports included) and of the job alone, CPU (user + sys
of the child, from ``os.wait4``) and peak RSS (the child's own VmHWM). Each output is
checked: N lines, N distinct custom_ids. Ratios are the ones issue #19 names:
claudebatch CPU / bare CPU (goal <= 2.5), four-plugins wall / no-plugins wall
(goal <= 1.3), official wall / claudebatch wall (goal >= 2).

    python benchmarks/job_speed.py [--requests 100000] [--repeat 1] [--poll 0.2]
        [--only bare,claudebatch,plugins,official]
    python benchmarks/job_speed.py --only claudebatch,sqlite,cost,cache,retry   # each alone
    python benchmarks/job_speed.py --only claudebatch,watch,cache   # a no-op on_result too

Importable: ``measure(requests, repeat, poll, contenders) -> dict``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    RESULT_MARK,
    EmulatorProcess,
    check_output,
    child_env,
    fmt_ratio,
    median_dict,
    run_child,
    ticket_request,
    write_jsonl,
)

CHILD = """
import sys, time
INPUT, OUTPUT, URL, POLL, TMP = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), \\
    sys.argv[5]
{imports}
started = time.perf_counter()
{run}
job_s = time.perf_counter() - started
print({report!r} + __import__("json").dumps(dict(info, job_s=job_s, peak_rss_mb=peak_rss_mb())))
"""

CLAUDEBATCH_RUN = """
client = BatchClient(api_key="x", base_url=URL, plugins=plugins, load_entry_points=False)
report = client.run(INPUT, output=OUTPUT, poll_interval=POLL)
assert report.complete, report.summary()
info = {"batches": len(report.batches)}
"""

#: name -> (label, imports, run); the run leaves a dict in ``info``.
CONTENDERS: Dict[str, Any] = {
    "bare": ("bare client (requests+orjson)", "from bare_client import run_bare",
             "info = run_bare(INPUT, OUTPUT, URL, POLL)"),
    "claudebatch": ("claudebatch, no plugins", "from claudebatch import BatchClient",
                    "plugins = []" + CLAUDEBATCH_RUN),
    "plugins": ("claudebatch, four plugins",
                "from claudebatch import BatchClient\n"
                "from claudebatch_sqlite import SQLiteStore\n"
                "from claudebatch_cost import CostTracker\n"
                "from claudebatch_cache import PromptCache\n"
                "from claudebatch_retry import RetryPolicy",
                "plugins = [SQLiteStore(TMP + '/store.db'), CostTracker(), PromptCache(), "
                "RetryPolicy()]" + CLAUDEBATCH_RUN),
    "official": ("official SDK by hand", "from official_sdk_job import run_official",
                 "info = run_official(INPUT, OUTPUT, URL, POLL)"),
}
#: The four contenders the issue's ratios compare; the others run when named in --only.
DEFAULT_CONTENDERS = tuple(CONTENDERS)
#: Each first-party plugin alone (``--only claudebatch,sqlite,cost,cache,retry``): what
#: each adds over no plugins.
ALONE = {"sqlite": ("claudebatch_sqlite", "SQLiteStore(TMP + '/store.db')"),
         "cost": ("claudebatch_cost", "CostTracker()"),
         "cache": ("claudebatch_cache", "PromptCache()"),
         "retry": ("claudebatch_retry", "RetryPolicy()"),
         # the floor under those that watch results: what the core charges any on_result
         "watch": ("result_watcher", "ResultWatcher()")}
for _name, (_module, _make) in ALONE.items():
    CONTENDERS[_name] = (f"claudebatch, {_name} alone",
                         f"from claudebatch import BatchClient\n"
                         f"from {_module} import {_make.split('(')[0]}",
                         f"plugins = [{_make}]" + CLAUDEBATCH_RUN)


def child_code(name: str) -> str:
    _, imports, run = CONTENDERS[name]
    return CHILD.format(imports=imports, run=run, report=RESULT_MARK)


def one_run(name: str, source: Path, count: int, poll: float) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cb-job-speed-") as tmp, EmulatorProcess() as emu:
        output = Path(tmp) / "out.jsonl"
        figures = run_child(child_code(name),
                            [str(source), str(output), emu.url, str(poll), tmp],
                            env=child_env(tmp))
        figures["emulator_rss_mb"] = emu.peak_rss_mb() or 0.0
        figures["emulator_cpu_s"] = emu.cpu_s() or 0.0
        check_output(output, count)
    return figures


def ratio(top: Optional[Dict[str, Any]], bottom: Optional[Dict[str, Any]], key: str
          ) -> Optional[float]:
    if not top or not bottom or not bottom.get(key):
        return None
    return float(top[key]) / float(bottom[key])


def measure(requests: int = 100_000, repeat: int = 1, poll: float = 0.2,
            contenders: Sequence[str] = DEFAULT_CONTENDERS, verbose: bool = True
            ) -> Dict[str, Any]:
    """Run every contender ``repeat`` times (median); figures and ratios as a dict."""
    with tempfile.TemporaryDirectory(prefix="cb-job-input-") as tmp:
        source = Path(tmp) / "requests.jsonl"
        size = write_jsonl(source, (ticket_request(i) for i in range(requests)))
        runs: Dict[str, List[Dict[str, Any]]] = {name: [] for name in contenders}
        for _ in range(repeat):  # interleaved, so drift in the machine's load is shared
            for name in contenders:
                runs[name].append(one_run(name, source, requests, poll))
                if verbose:
                    last = runs[name][-1]
                    print(f"  ... {name}: {last['process_s']:.2f} s wall, "
                          f"{last['cpu_s']:.2f} s CPU", file=sys.stderr)
    rows = {name: median_dict(found) for name, found in runs.items()}
    bare, ours = rows.get("bare"), rows.get("claudebatch")
    plugged, official = rows.get("plugins"), rows.get("official")
    return {
        "requests": requests, "input_mb": size / 1e6, "repeat": repeat, "poll": poll,
        "rows": rows,
        "cpu_ratio": ratio(ours, bare, "cpu_s"),
        "cpu_ratio_plugins": ratio(plugged, bare, "cpu_s"),
        "plugins_wall_ratio": ratio(plugged, ours, "process_s"),
        "official_wall_ratio": ratio(official, ours, "process_s"),
        "official_wall_ratio_plugins": ratio(official, plugged, "process_s"),
    }


def print_figures(figures: Dict[str, Any]) -> None:
    print(f"job: {figures['requests']:,} requests, {figures['input_mb']:.1f} MB JSONL; "
          f"emulator in its own process (--rate inf); poll {figures['poll']} s; "
          f"median of {figures['repeat']}")
    print(f"{'contender':<32}{'wall s':>9}{'job s':>9}{'CPU s':>9}{'peak RSS MB':>13}"
          f"{'emulator CPU s':>16}")
    for name, row in figures["rows"].items():
        print(f"{CONTENDERS[name][0]:<32}{row['process_s']:>9.2f}{row['job_s']:>9.2f}"
              f"{row['cpu_s']:>9.2f}{row['peak_rss_mb']:>13.1f}{row['emulator_cpu_s']:>16.2f}")
    print("(wall: the whole child process; job: the job alone, imports excluded; "
          "CPU: user+sys of the child; emulator CPU: the emulator's, not counted, and a "
          "floor under every wall time)")
    print(f"claudebatch CPU / bare CPU: no plugins {fmt_ratio(figures['cpu_ratio'])}, "
          f"four plugins {fmt_ratio(figures['cpu_ratio_plugins'])}   (goal <= 2.5)")
    print(f"four plugins wall / no plugins wall: {fmt_ratio(figures['plugins_wall_ratio'])}"
          f"   (goal <= 1.3)")
    print(f"official wall / claudebatch wall: no plugins "
          f"{fmt_ratio(figures['official_wall_ratio'])}, four plugins "
          f"{fmt_ratio(figures['official_wall_ratio_plugins'])}   (goal >= 2)")
    none = figures["rows"].get("claudebatch")
    alone = [name for name in ALONE if name in figures["rows"]]
    if none and alone:
        print("each plugin alone, CPU over no plugins: " + ", ".join(
            f"{name} +{figures['rows'][name]['cpu_s'] - none['cpu_s']:.2f} s"
            for name in alone))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the median")
    parser.add_argument("--poll", type=float, default=0.2, help="poll interval, seconds")
    parser.add_argument("--only", default=",".join(DEFAULT_CONTENDERS),
                        help=f"comma-separated contenders (of {', '.join(CONTENDERS)})")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contender(s): {', '.join(sorted(unknown))}")
    print_figures(measure(args.requests, args.repeat, args.poll, names))


if __name__ == "__main__":
    main()
