"""The store on the command line: ``--store`` on run/demo, and ``jobs``, ``job``, ``export``.

Written once for every backend; the core CLI registers it, and ``--store``
opens whatever the installed backends handle (``open_store`` hook). ``claudebatch job
NAME`` shows one job (the core's ``claudebatch status`` takes a batch id, so the store
does not reuse that name).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from typing import IO, TYPE_CHECKING, Any, Dict, List, Optional, cast

from claudebatch import ConfigurationError, hookimpl
from claudebatch.argtypes import bounded, duration

from ._errors import NoStoreError
from ._info import expiry_warnings, format_job, format_jobs
from ._location import STORE_ENV, default_location, user_store_path
from ._opening import StoreOptions, open_store

if TYPE_CHECKING:
    from ._jobstore import JobStore

#: ``claudebatch.cli.EXIT_JOB_MISSING``: some requests have no result line.
EXIT_OK = 0
EXIT_JOB_MISSING = 7


_seconds = bounded(float, what="seconds", low=0.0)


class _Stderr:
    """Whatever ``sys.stderr`` is when a note is written: a live progress display that
    takes stderr over prints the store's notes above its bars instead of through them."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _shown(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home):] if path.startswith(home + os.sep) else path


@hookimpl
def add_cli_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "persistence",
        "Every job is recorded in a job store so it survives its process: run the same "
        "command again to resume it, with no batch sent twice.")
    group.add_argument("--store", metavar="PATH|URL", default=None,
                       help=f"the store: a SQLite file, or postgresql://... shared by many "
                            f"hosts (default: ${STORE_ENV}, else your own store, "
                            f"{_shown(user_store_path())})")
    group.add_argument("--enqueue", action="store_true",
                       help="(run) put the job in the store for 'claudebatch worker' processes "
                            "on any host to run, instead of running it here (needs --name)")
    group.add_argument("--no-store", action="store_true",
                       help="record nothing: a run that stops cannot resume")
    group.add_argument("--store-wait", type=_seconds, metavar="S", default=None,
                       help="if another process is running this job on the store, wait up to "
                            "S seconds for it (default: refuse at once)")


@hookimpl
def plugins_from_cli(args: argparse.Namespace) -> Optional[List[JobStore]]:
    if getattr(args, "no_store", False):
        if getattr(args, "store", None):
            raise ConfigurationError("--store and --no-store: choose one")
        return None
    given = getattr(args, "store", None)
    location = given or default_location()
    if not given and not _backends():
        return None  # no store installed: the run says it cannot resume
    if getattr(args, "dry_run", False):
        try:  # it records nothing, but says which requests kept answers would answer
            return [open_store(location, StoreOptions(create=False, warn=False))]
        except NoStoreError:
            return None  # a dry run sends nothing: nothing to record, no store made
    return [open_store(location, StoreOptions(
        lock_timeout=getattr(args, "store_wait", None) or 0.0,
        stream=cast(IO[str], _Stderr())))]


def _backends() -> bool:
    """Whether any installed plugin opens stores."""
    from ..cli import cli_plugins

    return bool(cli_plugins().hook.open_store.get_hookimpls())


@hookimpl
def register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
                      common: argparse.ArgumentParser) -> None:
    store_help = f"the store (default: ${STORE_ENV}, else {_shown(user_store_path())})"

    def add(name: str, func: Any, text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = subparsers.add_parser(name, parents=[common], help=text,
                                                           description=text)
        p.add_argument("--store", metavar="PATH|URL", default=None, help=store_help)
        p.set_defaults(command=func)
        return p

    p = add("jobs", cmd_jobs, "List the jobs of a store: state, result counts, cost when "
                              "known (a job store).")
    p.add_argument("--json", action="store_true", help="one JSON object per job")
    p = add("job", cmd_job, "Show one job of a store with its batches (a job store).")
    p.add_argument("name", help="the job's name")
    p.add_argument("--json", action="store_true", help="as one JSON object")
    p.add_argument("--forget", action="store_true",
                   help="drop the job and all it stored (its batches stay on the service)")
    p = add("export", cmd_export, "Write a stored job's results to a file or object store, "
                                  "without the service (a job store).")
    p.add_argument("name", help="the job's name")
    p.add_argument("-o", "--output", required=True,
                   help="each request's latest result: a JSONL file of result lines, a table "
                        "by extension (.csv, .tsv, .parquet), or an fsspec URL (s3://...)")
    p = add("serve", cmd_serve, "Serve a read-only page of a store's jobs, refreshing itself "
                                "(a job store).")
    p.add_argument("--port", type=bounded(int, what="a port", low=0, high=65535), default=8787,
                   help="the port (default 8787; 0: any free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default 127.0.0.1: this machine only; the "
                        "page shows job names, paths and costs)")
    p.add_argument("--refresh", type=bounded(float, what="seconds", low=0.1, high=3600.0),
                   default=5.0, metavar="SECONDS",
                   help="how often the page fetches the jobs again (default 5)")
    p = add("worker", cmd_worker, "Work on the jobs enqueued in a store ('run ... --enqueue') "
                                  "beside other workers, on this host or any other.")
    p.add_argument("--job", metavar="NAME", default=None,
                   help="only this job, and stop when it is done (default: every job)")
    p.add_argument("--lease", type=bounded(float, what="seconds", low=1.0), default=60.0,
                   metavar="S", help="a batch stays this worker's S seconds without a "
                                     "heartbeat (default 60): a killed worker's batches are "
                                     "taken over after that")
    p.add_argument("--poll-interval", type=_seconds, default=None, metavar="S",
                   help="first wait between looks at a batch (default: the job's, else 30)")
    p.add_argument("--max-in-flight", type=bounded(int, what="requests", low=1), default=None,
                   metavar="N", help="requests in unfinished batches, per job (default: "
                                     "the job's --max-in-flight)")
    p.add_argument("--forever", action="store_true",
                   help="keep waiting for new jobs (default: stop when no job has work left)")
    reuse = subparsers.add_parser(
        "reuse", help="The answers a store keeps for reuse: stats, prune (a job store).",
        description="The succeeded answers a store keeps so no request is paid twice "
                    "(docs/reuse.md).")
    actions = reuse.add_subparsers(title="actions", metavar="ACTION")
    p = actions.add_parser("stats", parents=[common], help="how many answers, their size, "
                           "the requests they answered")
    p.add_argument("--store", metavar="PATH|URL", default=None, help=store_help)
    p.add_argument("--json", action="store_true", help="as one JSON object")
    p.set_defaults(command=cmd_reuse_stats)
    p = actions.add_parser("prune", parents=[common], help="drop answers kept longer ago "
                           "than AGE")
    p.add_argument("--store", metavar="PATH|URL", default=None, help=store_help)
    p.add_argument("--older-than", type=duration, required=True, metavar="AGE",
                   help="90s, 30m, 12h, 7d, 2w...")
    p.set_defaults(command=cmd_reuse_prune)
    reuse.set_defaults(command=lambda args: _usage(reuse))


def enqueue_from_cli(args: argparse.Namespace, client: Any, source: Any,
                     options: Dict[str, Any]) -> int:
    """``claudebatch run INPUT --enqueue --name NAME``: the job, for workers."""
    from ._worker import enqueue

    if getattr(args, "no_store", False):
        raise ConfigurationError("--enqueue puts the job in a store: drop --no-store")
    if not args.name:
        raise ConfigurationError("--enqueue needs --name NAME: the workers and 'claudebatch "
                                 "export NAME' find the job by it")
    location = args.store or default_location()
    with open_store(location, StoreOptions(lock_timeout=getattr(args, "store_wait", None)
                                           or 0.0, stream=cast(IO[str], _Stderr()))) as store:
        enqueue(store, client, source, name=args.name, poll_interval=args.poll_interval,
                max_in_flight=getattr(args, "max_in_flight", None), **options)
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    from ..cli import make_client
    from ._worker import Worker

    with open_existing(args) as store:
        store.worker_lease = args.lease
        worker = Worker(store, make_client(args), job=args.job, lease=args.lease,
                        check_interval=args.poll_interval, max_in_flight=args.max_in_flight,
                        until_idle=not args.forever, stream=cast(IO[str], _Stderr()))
        stopping = _stop_on_signals(worker)
        try:
            worker.run()
        except KeyboardInterrupt:  # a second Ctrl-C: stop at once (leases lapse by themselves)
            print(f"worker {worker.id}: interrupted; its leases lapse in {args.lease:g} s",
                  file=sys.stderr)
            return 130
        finally:
            stopping()
        if worker.stopped_by_signal:
            print(f"worker {worker.id}: stopped on a signal; its leases are released",
                  file=sys.stderr)
            return 130
        job = None if args.job is None else store.job(args.job)
        if job is not None and job.state == "failed":
            print(f"job {job.name} failed: {job.summary.get('error')}", file=sys.stderr)
            return 1
    return EXIT_OK


def _stop_on_signals(worker: Any) -> Any:
    """SIGTERM (systemd, docker stop) and the first SIGINT end the worker after the step
    under way, with its leases released; a second SIGINT interrupts at once. Returns what
    puts the previous handlers back."""
    import signal

    def first(signum: int, frame: Any) -> None:
        worker.stopped_by_signal = True
        worker.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {sig: signal.signal(sig, first) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def open_existing(args: argparse.Namespace) -> JobStore:
    """The store named on the command line; never creates one by accident."""
    return open_store(args.store or default_location(), StoreOptions(create=False, warn=False))


def cmd_jobs(args: argparse.Namespace) -> int:
    with open_existing(args) as store:
        jobs = store.jobs()
        if args.json:
            for job in jobs:
                print(json.dumps(asdict(job), default=str))
        elif jobs:
            print(format_jobs(jobs))
        else:
            print(f"no jobs in {store.location}")
        store.warn_expiring()
    return EXIT_OK


def cmd_job(args: argparse.Namespace) -> int:
    with open_existing(args) as store:
        if args.forget:
            store.forget(args.name)
            print(f"forgot job {args.name} (its batches stay on the service)")
            return EXIT_OK
        job = store.job(args.name)
        if args.json:
            print(json.dumps(asdict(job), default=str))
        else:
            print(format_job(job))
        for warning in expiry_warnings(job, time.time()):
            print(warning, file=sys.stderr)
    return EXIT_OK


@hookimpl
def show_status(name: str, args: argparse.Namespace) -> Optional[int]:
    """``claudebatch status NAME``: the job NAME of the default store, when there is one."""
    location = default_location()
    if not _backends():
        return None
    try:
        store = open_store(location, StoreOptions(create=False, warn=False))
    except NoStoreError:
        return None
    with store:
        if name not in {job.name for job in store.jobs()}:
            return None
    return cmd_job(argparse.Namespace(store=location, name=name, json=False, forget=False))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def cmd_reuse_stats(args: argparse.Namespace) -> int:
    with open_existing(args) as store:
        stats = store.reuse_stats()
    if args.json:
        print(json.dumps(stats))
        return EXIT_OK
    print(format_reuse_stats(store.location, stats))
    return EXIT_OK


def cmd_reuse_prune(args: argparse.Namespace) -> int:
    with open_existing(args) as store:
        dropped = store.prune_answers(args.older_than)
        left = store.reuse_stats()["answers"]
    print(f"pruned {dropped:,} answer(s) kept more than {_age(args.older_than)} ago; "
          f"{left:,} left in {store.location}")
    return EXIT_OK


def format_reuse_stats(path: str, stats: Dict[str, Any]) -> str:
    def when(value: Optional[float]) -> str:
        if value is None:
            return "-"
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))

    return "\n".join([
        f"answers kept for reuse in {path}:",
        f"  answers      {stats['answers']:,} from {stats['jobs']:,} job(s), "
        f"{stats['bytes'] / 1e6:,.1f} MB",
        f"  hits         {stats['hits']:,} time(s) found by a later job "
        f"({stats['answers_hit']:,} answer(s) found at least once)",
        f"  kept         {when(stats['oldest'])} .. {when(stats['newest'])}",
        f"  last hit     {when(stats['last_hit'])}",
    ])


def _age(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def cmd_serve(args: argparse.Namespace) -> int:
    from ._serve import address, make_server

    with open_existing(args) as store:
        server = make_server(store, args.host, args.port, refresh=args.refresh)
        host, port = address(server)
        print(f"serving the jobs of {store.location} at http://{host}:{port}/ (Ctrl-C to stop)",
              flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    with open_existing(args) as store:
        written, missing = store.export(args.name, args.output)
    print(f"exported {written:,} result(s) of job {args.name} to {args.output}")
    if missing:
        print(f"{missing:,} request(s) of the job have no stored result (resume the job to "
              "fetch them)", file=sys.stderr)
        return EXIT_JOB_MISSING
    return EXIT_OK
