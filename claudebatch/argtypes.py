"""argparse types for numbers within bounds, for the core's and plugins' command-line options.

One place for the rule, so every option says the same thing about a bad value.
"""

from __future__ import annotations

import argparse
from typing import Callable, Optional, TypeVar

N = TypeVar("N", int, float)


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
