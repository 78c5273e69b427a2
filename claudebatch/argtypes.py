"""argparse types for numbers within bounds, for the core's and plugins' command-line options.

One place for the rule, so every option says the same thing about a bad value.
"""

from __future__ import annotations

import argparse
import math
import re
from typing import Callable, Optional, TypeVar

N = TypeVar("N", int, float)

#: What the service's batch ids look like (checked before a call, so a bad one costs nothing).
BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,256}")


def bounded(convert: Callable[[str], N], *, what: str, low: Optional[N] = None,
            high: Optional[N] = None) -> Callable[[str], N]:
    """An argparse ``type=`` that parses with ``convert`` and checks ``low <= value <= high``.

    ``what`` names the kind of value in the error ("seconds", "a share").
    """
    if low is not None and high is not None:
        span = f" from {low} to {high}"
    elif low is not None:
        span = f" >= {low}"
    elif high is not None:
        span = f" <= {high}"
    else:
        span = ""

    def parse(text: str) -> N:
        try:
            value = convert(text)
        except (ValueError, ArithmeticError):
            raise argparse.ArgumentTypeError(f"expected {what}{span}, got {text!r}") from None
        if (low is not None and not value >= low) or (high is not None and not value <= high):
            raise argparse.ArgumentTypeError(f"expected {what}{span}, got {text!r}")
        return value

    parse.__name__ = what.replace(" ", "_")  # argparse names the type in its messages
    return parse


def seconds(*, allow_zero: bool = False) -> Callable[[str], float]:
    """An argparse ``type=`` for a finite number of seconds, > 0 (or >= 0 with allow_zero)."""
    bound = ">= 0" if allow_zero else "> 0"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(
                f"expected a finite number of seconds {bound}, got {text!r}")
        return value

    parse.__name__ = "seconds"
    return parse


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def duration(text: str) -> float:
    """An argparse ``type=`` for a span of time: ``90`` or ``90s``, ``30m``, ``12h``, ``7d``,
    ``2w``; as seconds (> 0)."""
    number, unit = text.strip(), "s"
    if number[-1:].lower() in _UNITS:
        number, unit = number[:-1], number[-1].lower()
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a span of time > 0 such as 90s, 30m, 12h, 7d or 2w, got {text!r}")
    return value


def batch_id(text: str) -> str:
    """An argparse ``type=`` for a batch id (``msgbatch_...``), checked before any call."""
    if not BATCH_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"not a batch id: {text!r} (expected letters, digits, '_' or '-', such as "
            "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF)")
    return text
