"""``claudebatch ...``: the command line, one subcommand per endpoint (plus the emulator).

Exit codes scripts can trust (see docs/cli.md):
0 success, 1 an API or network error, 2 bad usage, 3 invalid input,
4 a wait that timed out, 5 the batch has not ended (results asked too early).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Sequence

from . import __version__
from .client import BatchClient
from .errors import (
    BatchNotEndedError,
    ClaudeBatchError,
    ConfigurationError,
    ValidationError,
    WaitTimeoutError,
)
from .serde import unstructure

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_INVALID_INPUT = 3
EXIT_TIMEOUT = 4
EXIT_NOT_ENDED = 5

Command = Callable[[argparse.Namespace], int]


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
    try:
        return command(args)
    except ConfigurationError as exc:
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
    common.add_argument("--max-retries", type=int, default=None,
                        help="HTTP retries per call (default 4)")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    def add(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(command=func)
        return p

    p = add("submit", cmd_submit, "Create one batch from a JSONL file of requests.")
    p.add_argument("input", help="JSONL file: one {\"custom_id\", \"params\"} object per line")
    p = add("status", cmd_status, "Show one batch as JSON.")
    p.add_argument("batch_id")
    p = add("wait", cmd_wait, "Poll a batch until it has ended; print it as JSON.")
    p.add_argument("batch_id")
    p.add_argument("--timeout", type=float, default=None, help="give up after S seconds")
    p.add_argument("--poll-interval", type=float, default=None,
                   help="first wait between polls in seconds (default 30; grows with backoff)")
    p = add("results", cmd_results, "Stream an ended batch's results as JSONL.")
    p.add_argument("batch_id")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p = add("list", cmd_list, "List batches, newest first, one JSON object per line.")
    p.add_argument("--limit", type=int, default=None, help="stop after N batches")
    p = add("cancel", cmd_cancel, "Cancel a batch; print it as JSON.")
    p.add_argument("batch_id")
    p = add("delete", cmd_delete, "Delete an ended batch.")
    p.add_argument("batch_id")
    sub.add_parser("emulator", help="Run the local Batches API emulator (see "
                                    "'claudebatch emulator --help').")
    return parser


def make_client(args: argparse.Namespace) -> BatchClient:
    kwargs: Dict[str, Any] = {"base_url": args.base_url}
    if args.max_retries is not None:
        kwargs["max_retries"] = args.max_retries
    return BatchClient(**kwargs)


def print_json(value: Any, out: IO[str] = sys.stdout) -> None:
    out.write(json.dumps(value, ensure_ascii=False) + "\n")


def read_jsonl(path: str) -> Iterator[Any]:
    """Parse a JSONL file, naming file and line for a bad line."""
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        problems: List[str] = []
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{path} line {number}: not valid JSON: {exc.msg} "
                                f"(column {exc.colno})")
        if problems:
            raise ValidationError(f"{path} was not sent", problems)


def cmd_submit(args: argparse.Namespace) -> int:
    client = make_client(args)
    items = list(read_jsonl(args.input))
    batch = client.create(items)
    print_json(unstructure(batch))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    print_json(unstructure(make_client(args).retrieve(args.batch_id)))
    return EXIT_OK


def cmd_wait(args: argparse.Namespace) -> int:
    client = make_client(args)
    batch = client.wait(args.batch_id, timeout=args.timeout, poll_interval=args.poll_interval)
    print_json(unstructure(batch))
    return EXIT_OK


def cmd_results(args: argparse.Namespace) -> int:
    client = make_client(args)
    results = client.results(args.batch_id, raw=True)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            for value in results:
                print_json(value, out)
    else:
        for value in results:
            print_json(value)
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    client = make_client(args)
    for number, batch in enumerate(client.list(), start=1):
        print_json(unstructure(batch))
        if args.limit is not None and number >= args.limit:
            break
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    print_json(unstructure(make_client(args).cancel(args.batch_id)))
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    print_json(unstructure(make_client(args).delete(args.batch_id)))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
