"""The plugin's command-line options, for ``claudebatch run`` and ``claudebatch demo``.

Registered through the ``claudebatch`` entry point, so installing the
distribution adds the options. The policy is active when any of them is given,
and always under ``claudebatch demo`` (with the defaults).
"""

from __future__ import annotations

import argparse
from typing import List, Optional

from claudebatch import ConfigurationError, hookimpl
from claudebatch.argtypes import bounded
from claudebatch.policies import RETRYABLE_STATUSES

from .http_policy import (
    DEFAULT_ATTEMPTS,
    DEFAULT_INITIAL_DELAY,
    DEFAULT_JITTER,
    DEFAULT_MAX_DELAY,
    HttpRetry,
)
from .policy import DEFAULT_PASSES, DEFAULT_PAUSE, MAX_EXTRA_PASSES, RetryPolicy

_HTTP_OPTIONS = ("http_attempts", "http_initial_delay", "http_max_delay", "http_jitter",
                 "http_statuses", "http_budget")


_passes = bounded(int, what="a whole number of passes", low=0, high=MAX_EXTRA_PASSES)
_attempts = bounded(int, what="a whole number of attempts (the first try counts)", low=1)
_seconds = bounded(float, what="seconds", low=0.0)
_share = bounded(float, what="a share", low=0.0, high=1.0)


def _statuses(text: str) -> List[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated HTTP statuses such as 429,500,529, got {text!r}") from None
    if not values or any(not 400 <= v <= 599 for v in values):
        raise argparse.ArgumentTypeError(f"expected HTTP error statuses (400-599), got {text!r}")
    return values


@hookimpl
def add_cli_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "retry policy (claudebatch-retry)",
        "Resubmit expired and transiently errored requests after each pass; configure HTTP "
        "retries. Any of these options turns the policy on.")
    group.add_argument("--resubmit", type=_passes, metavar="N", default=None,
                       help=f"extra passes for retryable failures (default {DEFAULT_PASSES}; "
                            "0: only report them)")
    group.add_argument("--retry-canceled", action="store_true", default=False,
                       help="resubmit canceled requests too")
    group.add_argument("--continue-paused", action="store_true", default=False,
                       help="send results that stopped with pause_turn (a server tool's long "
                            "turn) again with the paused content, so the turn goes on")
    group.add_argument("--retry-pause", type=_seconds, metavar="S", default=None,
                       help=f"seconds to wait before each extra pass (default {DEFAULT_PAUSE:g})")
    group.add_argument("--http-attempts", type=_attempts, metavar="N", default=None,
                       help=f"tries per HTTP call, the first included (default "
                            f"{DEFAULT_ATTEMPTS}); sets --max-retries to N-1 unless given")
    group.add_argument("--http-initial-delay", type=_seconds, metavar="S", default=None,
                       help=f"first wait before an HTTP retry (default {DEFAULT_INITIAL_DELAY:g})")
    group.add_argument("--http-max-delay", type=_seconds, metavar="S", default=None,
                       help=f"largest wait between HTTP retries, server hints included "
                            f"(default {DEFAULT_MAX_DELAY:g})")
    group.add_argument("--http-jitter", type=_share, metavar="F", default=None,
                       help=f"share by which a wait may be shortened at random "
                            f"(default {DEFAULT_JITTER:g})")
    group.add_argument("--http-statuses", type=_statuses, metavar="CODES", default=None,
                       help="comma-separated HTTP statuses to retry (default "
                            "408,409,429,500,502,503,504,529)")
    group.add_argument("--http-budget", type=_seconds, metavar="S", default=None,
                       help="no HTTP retry starts later than S seconds after a call's first "
                            "failure (default: no limit)")


def http_from_args(args: argparse.Namespace) -> Optional[HttpRetry]:
    """An HttpRetry when any ``--http-*`` option was given, else None (built-in schedule)."""
    given = {name: getattr(args, name, None) for name in _HTTP_OPTIONS}
    if all(value is None for value in given.values()):
        return None
    initial = given["http_initial_delay"]
    maximum = given["http_max_delay"]
    if initial is None:
        initial = min(DEFAULT_INITIAL_DELAY, maximum if maximum is not None else DEFAULT_MAX_DELAY)
    if maximum is None:
        maximum = max(DEFAULT_MAX_DELAY, initial)
    try:
        return HttpRetry(
            attempts=given["http_attempts"] or DEFAULT_ATTEMPTS,
            initial_delay=initial, max_delay=maximum,
            jitter=DEFAULT_JITTER if given["http_jitter"] is None else given["http_jitter"],
            statuses=frozenset(given["http_statuses"] or RETRYABLE_STATUSES),
            budget=given["http_budget"])
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


@hookimpl
def plugins_from_cli(args: argparse.Namespace) -> Optional[List[RetryPolicy]]:
    resubmit = getattr(args, "resubmit", None)
    retry_canceled = bool(getattr(args, "retry_canceled", False))
    continue_paused = bool(getattr(args, "continue_paused", False))
    pause = getattr(args, "retry_pause", None)
    http = http_from_args(args)
    wanted = (resubmit is not None or retry_canceled or continue_paused or pause is not None
              or http is not None or bool(getattr(args, "demo", False)))
    if not wanted:
        return None
    if http is not None and getattr(args, "max_retries", 0) is None:
        # The transport caps retries at --max-retries; on the command line the user chose
        # the attempts here, so let that choice stand unless --max-retries says otherwise.
        args.max_retries = http.retries
    return [RetryPolicy(
        passes=DEFAULT_PASSES if resubmit is None else resubmit,
        retry_canceled=retry_canceled,
        pause=DEFAULT_PAUSE if pause is None else pause,
        http=http, continue_paused=continue_paused)]
