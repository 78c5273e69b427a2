"""The command-line side: ``--budget``, ``--pricing`` and friends on ``run`` and ``demo``.

Installed, the tracker is active for every ``claudebatch run`` and ``demo``: its
figures appear in the summary, and ``run --dry-run`` prints its estimate.
(``claudebatch cost NAME`` needs the job store of claudebatch-sqlite: not here yet.)
"""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation
from typing import Any, List, Optional

from claudebatch import hookimpl

from .tracker import CostTracker


def _usd(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().lstrip("$"))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount in USD: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"the budget must be >= 0 USD, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return value


@hookimpl
def add_cli_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cost (claudebatch-cost)")
    group.add_argument("--budget", type=_usd, metavar="USD", default=None,
                       help="refuse the job, before anything is sent, if its worst-case cost "
                            "(batch price, output at max_tokens) would pass USD; the same for "
                            "each resubmission pass, counting what was spent")
    group.add_argument("--pricing", metavar="FILE", default=None,
                       help="JSON or CSV file of model prices (USD per million tokens) that "
                            "add to or replace the packaged table")
    group.add_argument("--expected-output", type=_fraction, metavar="FRACTION", default=0.5,
                       help="share of max_tokens the expected estimate assumes (default 0.5)")
    group.add_argument("--count-tokens", action="store_true",
                       help="count input tokens with the free token-counting endpoint (one "
                            "call per request) instead of approximating")


@hookimpl
def plugins_from_cli(args: argparse.Namespace) -> Optional[List[Any]]:
    return [CostTracker(
        budget_usd=getattr(args, "budget", None),
        pricing=getattr(args, "pricing", None),
        expected_output_fraction=getattr(args, "expected_output", 0.5),
        count_tokens=bool(getattr(args, "count_tokens", False)))]
