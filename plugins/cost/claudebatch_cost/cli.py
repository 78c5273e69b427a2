"""The command-line side: ``--budget``, ``--pricing`` and friends on ``run`` and ``demo``.

Installed, the tracker is active for every ``claudebatch run`` and ``demo``: its
figures appear in the summary, and ``run --dry-run`` prints its estimate.
``claudebatch cost NAME`` prices a stored job from the results the
job store kept (every attempt of every pass), without the service.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, List, Optional

from claudebatch import hookimpl
from claudebatch.argtypes import bounded

from .costing import price_result
from .pricing import load_pricing
from .summary import job_section
from .totals import Totals
from .tracker import CostTracker


def _usd(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().lstrip("$"))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount in USD: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"the budget must be >= 0 USD, got {text!r}")
    return value


_fraction = bounded(float, what="a fraction", low=0.0, high=1.0)


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


@hookimpl
def register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
                      common: argparse.ArgumentParser) -> None:
    text = ("Price a job kept by a job store, from its stored results "
            "(every attempt of every pass): batch cost, standard-API cost, per model.")
    p = subparsers.add_parser("cost", parents=[common], help=text, description=text)
    p.add_argument("name", help="the job's name (see 'claudebatch jobs')")
    p.add_argument("--store", metavar="PATH|URL", default=None,
                   help="the store (default: $CLAUDEBATCH_STORE, else your own store)")
    p.add_argument("--pricing", metavar="FILE", default=None,
                   help="JSON or CSV file of model prices that add to or replace the table")
    p.add_argument("--json", action="store_true", help="the figures as one JSON object")
    p.set_defaults(command=cmd_cost)


def _moment(created: Optional[float]) -> Optional[dt.datetime]:
    """A stored batch time as a datetime; None (today's price) if unrecorded or unreadable."""
    try:
        return None if created is None else dt.datetime.fromtimestamp(created, dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def cmd_cost(args: argparse.Namespace) -> int:
    from claudebatch.store import StoreOptions, default_location, open_store

    table = load_pricing(args.pricing)
    job = Totals()
    reused = Totals()  # answers not bought by this job (reuse): what they would have cost
    by_model: Dict[str, Totals] = {}
    location = getattr(args, "store", None) or default_location()
    with open_store(location, StoreOptions(create=False, warn=False)) as store:
        for _pass, _custom_id, line, created in store.dated_results(args.name):
            value = json.loads(line)
            cost = price_result(value, table, _moment(created))
            if "reused_from" in value:
                reused.add(cost)
                continue
            job.add(cost)
            if cost.model is not None:
                by_model.setdefault(cost.model, Totals()).add(cost)
    section = job_section(job, by_model, budget_usd=None, committed_usd=Decimal(0), notes=(),
                          reused=reused)
    if args.json:
        print(json.dumps({"job": args.name, **section}))
    else:
        print(f"job {args.name}: {job.results:,} stored results")
        for key, value in section.items():
            print(f"  {key}: {value}")
    return 0 if job.complete else 1
