"""``claudebatch ...``: the command line, one subcommand per endpoint (plus the emulator).

Exit codes scripts can trust (see docs/cli.md):
0 success (for run/demo: every request succeeded), 1 an API or network error,
2 bad usage, 3 invalid input (nothing was sent), 4 a wait that timed out (for a
batch, or for room in the service's queue),
5 the batch has not ended (results asked too early), 6 a job ended with failed
requests (each has an errored/expired/canceled line), 7 a job ended with
requests that got no result line at all.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from typing import IO, TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Sequence

from . import __version__
from ._demo import DEMO_MODEL
from ._rowargs import add_row_options, job_options, rows_from_args
from ._versions import API_VERSION_2023_06_01, API_VERSIONS, DEFAULT_API_VERSION
from .argtypes import batch_id, bounded, duration, seconds
from .errors import (
    BatchNotEndedError,
    ClaudeBatchError,
    ConfigurationError,
    InvalidBatchIdError,
    ValidationError,
    WaitTimeoutError,
)
from .limits import DEFAULT_MAX_IN_FLIGHT, MAX_REQUESTS_PER_BATCH

if TYPE_CHECKING:  # imported where used: ``claudebatch --help`` needs none of them
    from ._client import BatchClient

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_INVALID_INPUT = 3
EXIT_TIMEOUT = 4
EXIT_NOT_ENDED = 5
EXIT_JOB_FAILURES = 6
EXIT_JOB_MISSING = 7

Command = Callable[[argparse.Namespace], int]
#: Set to show the traceback of an unexpected error instead of one line.
DEBUG_ENV = "CLAUDEBATCH_DEBUG"

#: The emulator as the demo runs it: a few seconds of visible processing.
#: Its answers are a triage's short JSON, within the tickets' max_tokens of 128.
DEMO_EMULATOR: Dict[str, Any] = {"rate": 1000.0, "answer_tokens": (16, 110)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["emulator"]:
        from .emulator.cli import main as emulator_main

        return emulator_main(args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    command: Optional[Command] = getattr(args, "command", None)
    if command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if getattr(args, "verbose", 0):
        from .logcontext import log_to_stderr

        log_to_stderr(args.verbose)
    try:
        return command(args)
    except (ConfigurationError, InvalidBatchIdError) as exc:
        return fail(f"error: {exc}", EXIT_USAGE)
    except ValidationError as exc:
        return fail(f"invalid input: {exc}", EXIT_INVALID_INPUT)
    except WaitTimeoutError as exc:
        return fail(f"timed out: {exc}", EXIT_TIMEOUT)
    except BatchNotEndedError as exc:
        return fail(f"not ended: {exc}", EXIT_NOT_ENDED)
    except ClaudeBatchError as exc:
        return fail(f"error: {exc}", EXIT_API_ERROR)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except OSError as exc:  # a file the command reads or writes
        where = f" {exc.filename}" if exc.filename else ""
        return fail(f"error:{where}: {exc.strerror or exc}", EXIT_API_ERROR)
    except Exception as exc:  # a defect: say so plainly, never a traceback
        if os.environ.get(DEBUG_ENV):
            raise
        return fail(f"internal error: {type(exc).__name__}: {exc}\n(this is a claudebatch "
                    f"defect; set {DEBUG_ENV}=1 to see the traceback, and report it)",
                    EXIT_API_ERROR)


def fail(message: str, code: int) -> int:
    print(message, file=sys.stderr)
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="claudebatch",
        description="Run work through Anthropic's Message Batches API.")
    parser.add_argument("--version", action="version", version=f"claudebatch {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base-url", help="API base URL (default: $ANTHROPIC_BASE_URL or "
                                           "https://api.anthropic.com)")
    common.add_argument("--max-retries", type=bounded(int, what="a whole number", low=0),
                        default=None, help="HTTP retries per call (default 4)")
    common.add_argument("--allow-origin", action="append", default=[], metavar="URL",
                        help="another origin (such as a gateway serving results) the API key "
                             "may be sent to; repeatable")
    common.add_argument("--api-version", choices=API_VERSIONS, default=DEFAULT_API_VERSION,
                        help=f"anthropic-version to send (default {DEFAULT_API_VERSION}, the "
                             f"latest; {API_VERSION_2023_06_01} still takes temperature, top_p "
                             "and top_k)")
    common.add_argument("--beta", action="append", default=[], metavar="NAME",
                        help="a beta to enable (sent in the anthropic-beta header); repeatable")
    common.add_argument("-v", "--verbose", action="count", default=0,
                        help="log what claudebatch and its plugins do on stderr, each record "
                             "naming its job and batch (-vv: debug)")
    common.add_argument("--allow-http", action="store_true",
                        help="allow plain http:// to a host other than this machine (the key "
                             "and prompts cross the network unencrypted)")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    def add(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(command=func)
        return p

    p = add("submit", cmd_submit, "Create one batch from a JSONL file of requests.")
    p.add_argument("input", help="JSONL file: one {\"custom_id\", \"params\"} object per line")
    p = add("status", cmd_status, "Show one batch as JSON (or, with a job store installed, "
                                  "one job by name).")
    p.add_argument("batch_id", metavar="ID_OR_NAME")  # checked in cmd_status
    p = add("wait", cmd_wait, "Poll a batch until it has ended; print it as JSON.")
    p.add_argument("batch_id", type=batch_id)
    p.add_argument("--timeout", type=seconds(allow_zero=True), default=None,
                   help="give up after S seconds")
    p.add_argument("--poll-interval", type=seconds(), default=None,
                   help="first wait between polls in seconds (default 30; grows with backoff)")
    p = add("results", cmd_results, "Stream an ended batch's results as JSONL.")
    p.add_argument("batch_id", type=batch_id)
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p = add("list", cmd_list, "List batches, newest first, one JSON object per line.")
    p.add_argument("--limit", type=bounded(int, what="a whole number", low=1), default=None,
                   help="stop after N batches")
    p = add("cancel", cmd_cancel, "Cancel a batch; print it as JSON.")
    p.add_argument("batch_id", type=batch_id)
    p = add("delete", cmd_delete, "Delete an ended batch.")
    p.add_argument("batch_id", type=batch_id)
    p = add("run", cmd_run, "Run a whole dataset: validate, split, submit, poll, "
                            "stream every result to OUTPUT.")
    p.add_argument("input", help="JSONL file of requests (one {\"custom_id\", \"params\"} "
                                 "object per line); or, with --template, a table of rows")
    p.add_argument("-o", "--output", help="where the results go (required unless --dry-run): "
                                          "a JSONL file of result lines, or a table by its "
                                          "extension (.csv, .tsv, .parquet; .jsonl with "
                                          "--template); a path or an fsspec URL (s3://...)")
    p.add_argument("--dry-run", action="store_true",
                   help="validate, split and estimate; send nothing")
    add_row_options(p)
    add_job_options(p)
    p = add("demo", cmd_demo, "Triage generated support tickets end to end, against the "
                              "built-in emulator unless --live.")
    p.add_argument("--requests", type=bounded(int, what="a whole number", low=1), default=5000,
                   help="how many tickets (default 5000)")
    p.add_argument("-o", "--output", default="demo-results.jsonl",
                   help="JSONL file for the results (default demo-results.jsonl)")
    p.add_argument("--live", action="store_true",
                   help="use the real service with $ANTHROPIC_API_KEY (costs money)")
    p.add_argument("--from-csv", metavar="FILE",
                   help="your own rows instead of the tickets (any table: CSV, JSONL, "
                        "Parquet), with --template; -o names the table to write")
    add_row_options(p, model_default=DEMO_MODEL)
    add_job_options(p, poll_default=None)
    cli_plugins().hook.register_commands(subparsers=sub, common=common)
    sub.add_parser("emulator", help="Run the local Batches API emulator (see "
                                    "'claudebatch emulator --help').")
    return parser


def add_job_options(parser: argparse.ArgumentParser, *,
                    poll_default: Optional[float] = None) -> None:
    parser.add_argument("--name", help="job name (default: job-<UTC time>)")
    parser.add_argument("--poll-interval", type=seconds(), default=poll_default,
                        help="first wait between polls in seconds (default 30; grows with "
                             "backoff); small values suit the emulator")
    parser.add_argument("--max-batch-requests", type=bounded(int, what="requests", low=1,
                                                             high=MAX_REQUESTS_PER_BATCH),
                        default=None, metavar="N",
                        help=f"requests per batch at most (default and limit "
                             f"{MAX_REQUESTS_PER_BATCH:,}): smaller batches end sooner and "
                             "spread over more workers")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress lines (--progress json events still come)")
    parser.add_argument("--progress", choices=("lines", "json"), default="lines",
                        help="how progress goes to stderr: lines for people (default), or "
                             "json: one event a line (job_start, batch_submitted, poll, "
                             "queue_wait, batch_ended, pass_end, job_end) for scripts")
    queue = parser.add_argument_group(
        "the service's queue", "The service limits the batch requests waiting in a "
        "workspace's processing queue (docs/queue.md).")
    queue.add_argument("--max-in-flight", type=bounded(int, what="a whole number", low=0),
                       default=None, metavar="N",
                       help=f"keep at most N of the job's requests waiting in the service's "
                            f"queue, sending each batch as earlier ones end; batches are cut "
                            f"no larger (default {DEFAULT_MAX_IN_FLIGHT:,}, the smallest "
                            "tier's limit; 0: no limit of its own)")
    queue.add_argument("--queue-patience", type=duration, default=None, metavar="AGE",
                       help="how long a create the service refuses for a full queue (429) is "
                            "tried again while none of the job's batches is in flight (90s, "
                            "30m, 12h; default 24h)")
    group = parser.add_argument_group(
        "reuse", "Never pay twice: a request whose answer a job store kept is not sent again, "
                 "and identical requests in one job are sent once (docs/reuse.md).")
    group.add_argument("--reuse", action=argparse.BooleanOptionalAction, default=None,
                       help="answer requests from the answers a store kept and send identical "
                            "requests once (default: on when a job store is on); --no-reuse "
                            "sends every request for a fresh answer")
    group.add_argument("--reuse-max-age", type=duration, default=None, metavar="AGE",
                       help="reuse only answers kept within AGE (90s, 30m, 12h, 7d, 2w) of "
                            "the job's first run (default: any age)")
    cli_plugins().hook.add_cli_options(parser=parser)


@functools.lru_cache(maxsize=1)
def cli_plugins() -> Any:
    """A plugin manager holding the installed plugins, for their options and commands."""
    return cli_plugin_manager()


def cli_plugin_manager(plugins: Iterable[Any] = (), *, load_entry_points: bool = True) -> Any:
    """The installed plugins (or ``plugins``) and the shared store layer's options and
    commands (``--store``, ``jobs``, ``export``...), which every store backend uses."""
    from ._plugins import make_plugin_manager
    from .store import _cli as store_cli

    pm = make_plugin_manager(plugins, load_entry_points=load_entry_points)
    pm.register(store_cli, name="claudebatch.store")
    return pm


def plugins_from_args(args: argparse.Namespace) -> List[Any]:
    found: List[Any] = []
    for group in cli_plugins().hook.plugins_from_cli(args=args):
        found.extend(group or ())
    return found


def make_client(args: argparse.Namespace, **extra: Any) -> BatchClient:
    from ._client import BatchClient

    kwargs: Dict[str, Any] = {"base_url": args.base_url, "allow_http": args.allow_http,
                              "allowed_origins": args.allow_origin,
                              "api_version": args.api_version, "betas": args.beta,
                              "reuse": getattr(args, "reuse", None),
                              "reuse_max_age": getattr(args, "reuse_max_age", None), **extra}
    if args.max_retries is not None:
        kwargs["max_retries"] = args.max_retries
    return BatchClient(**kwargs)


def _unstructure(value: Any) -> Any:
    from ._serde import unstructure

    return unstructure(value)


def print_json(value: Any, out: Optional[IO[str]] = None) -> None:
    (out or sys.stdout).write(json.dumps(value, ensure_ascii=False) + "\n")


def cmd_submit(args: argparse.Namespace) -> int:
    client = make_client(args)
    batch = client.create(args.input)
    print_json(_unstructure(batch))
    return EXIT_OK


def run_job(client: BatchClient, source: Any, args: argparse.Namespace) -> int:
    if not client.hook.resume_state.get_hookimpls():
        print("note: no job store is on, so a run that stops cannot resume: its batches "
              "(already paid) would be sent again. To make it resumable, pip install "
              "claudebatch-sqlite and add --store FILE.", file=sys.stderr)
    report = client.run(source, name=args.name, output=args.output,
                        poll_interval=args.poll_interval, **job_options(args),
                        **queue_options(args))
    print(report.summary())
    if report.missing or not report.complete:
        return EXIT_JOB_MISSING
    return EXIT_OK if report.all_succeeded else EXIT_JOB_FAILURES


def queue_options(args: argparse.Namespace) -> Dict[str, Any]:
    """``client.run`` options for the service's queue, as given on the command line."""
    options: Dict[str, Any] = {}
    if args.max_in_flight is not None:
        options["max_in_flight"] = args.max_in_flight
    if args.queue_patience is not None:
        options["queue_patience"] = args.queue_patience
    return options


def job_plugins(args: argparse.Namespace) -> List[Any]:
    from ._progress import JsonProgress, Progress

    progress: Any = JsonProgress() if args.progress == "json" else \
        Progress(interval=2.0 if args.demo else 10.0)
    if args.progress == "lines" and sys.stderr.isatty():
        from ._progress import BarProgress

        progress = BarProgress()  # a terminal: live bars
    shown = not args.quiet or args.progress == "json"  # --quiet silences lines, not events
    return [*plugins_from_args(args), *([progress] if shown else [])]


def cmd_run(args: argparse.Namespace) -> int:
    args.demo = False
    rows = rows_from_args(args, args.input)
    source = rows if rows is not None else args.input
    if args.dry_run and getattr(args, "enqueue", False):
        raise ConfigurationError("--enqueue and --dry-run: choose one")
    if args.dry_run:
        key = os.environ.get("ANTHROPIC_API_KEY") or "dry-run"  # nothing is sent
        client = make_client(args, plugins=plugins_from_args(args), api_key=key)
        job = client.job(source, name=args.name, output=args.output, **job_options(args),
                         **queue_options(args))
        print(job.dry_run().summary())
        return EXIT_OK
    if getattr(args, "enqueue", False):
        from .store._cli import enqueue_from_cli

        key = os.environ.get("ANTHROPIC_API_KEY") or "enqueue"  # the workers send, not this
        return enqueue_from_cli(args, make_client(args, api_key=key), source, job_options(args))
    if not args.output:
        raise ConfigurationError("run needs -o/--output FILE for the results "
                                 "(or --dry-run to only check and estimate)")
    return run_job(make_client(args, plugins=job_plugins(args)), source, args)


def cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import support_tickets

    args.demo = True  # installed plugins activate with their defaults
    if args.name is None:  # each demo's emulator is new: an earlier demo is never continued
        from ._job.run import new_job_name

        args.name = new_job_name()
    if args.template and not args.from_csv:
        raise ConfigurationError("--template goes with --from-csv FILE (the rows it fills)")
    if args.from_csv and not args.template:
        raise ConfigurationError("--from-csv needs --template FILE: the user message made "
                                 "from each row")
    tickets: Any = rows_from_args(args, args.from_csv) if args.from_csv else \
        support_tickets(args.requests)
    if args.live:
        what = f"the rows of {args.from_csv}" if args.from_csv else f"{args.requests:,} tickets"
        print(f"demo: {what} against the real service", file=sys.stderr)
        return run_job(make_client(args, plugins=job_plugins(args)), tickets, args)
    from .emulator import Emulator

    with Emulator(**DEMO_EMULATOR) as emulator:
        what = f"the rows of {args.from_csv}" if args.from_csv else \
            f"{args.requests:,} support tickets"
        print(f"demo: {what} against the built-in emulator at "
              f"{emulator.url} (no API key needed; --live uses the real service)",
              file=sys.stderr)
        if args.poll_interval is None:
            args.poll_interval = 0.25
        client = make_client(args, plugins=job_plugins(args), api_key="emulator",
                             base_url=emulator.url)
        return run_job(client, tickets, args)


def cmd_status(args: argparse.Namespace) -> int:
    if not args.batch_id.startswith("msgbatch_"):  # a job name, for a plugin that keeps jobs
        code: Optional[int] = cli_plugins().hook.show_status(name=args.batch_id, args=args)
        if code is not None:
            return code
    try:
        batch_id(args.batch_id)
    except argparse.ArgumentTypeError as exc:
        raise ConfigurationError(f"{exc}; nor is it a job name a job store knows") from None
    print_json(_unstructure(make_client(args).retrieve(args.batch_id)))
    return EXIT_OK


def cmd_wait(args: argparse.Namespace) -> int:
    client = make_client(args)
    batch = client.wait(args.batch_id, timeout=args.timeout, poll_interval=args.poll_interval)
    print_json(_unstructure(batch))
    return EXIT_OK


def cmd_results(args: argparse.Namespace) -> int:
    client = make_client(args)
    results = client.results(args.batch_id, raw=True)
    from ._output import OutputFile, check_output, result_line

    if args.output:
        check_output(args.output)
        with OutputFile(args.output, append=False) as out:
            for value in results:
                out.write_line(result_line(value))
    else:
        for value in results:
            sys.stdout.write(result_line(value).decode("utf-8") + "\n")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    client = make_client(args)
    for number, batch in enumerate(client.list(), start=1):
        print_json(_unstructure(batch))
        if args.limit is not None and number >= args.limit:
            break
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    print_json(_unstructure(make_client(args).cancel(args.batch_id)))
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    print_json(_unstructure(make_client(args).delete(args.batch_id)))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
