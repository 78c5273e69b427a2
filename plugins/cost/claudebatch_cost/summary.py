"""The ``cost`` section of the run / demo / dry-run summaries (``job_summary``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Dict, Iterable, Mapping, Optional

from .estimate import EstimateCost
from .totals import Totals


def usd(amount: Decimal) -> str:
    """Dollars to four decimals: small batches cost fractions of a cent."""
    return f"${amount:,.4f}"


def _percent(part: Decimal, whole: Decimal) -> str:
    return f"{part / whole * 100:.1f}%" if whole else "0%"


def _unknown(count: int, models: Iterable[str], noun: str) -> str:
    return (f"{count:,} {noun}(s) of {', '.join(sorted(models))} not priced "
            "(not in the pricing table; add it with --pricing)")


def job_section(job: Totals, by_model: Mapping[str, Totals], *,
                budget_usd: Optional[Decimal], committed_usd: Decimal,
                notes: Iterable[str], reused: Optional[Totals] = None) -> Dict[str, str]:
    """Actual cost of a finished job: batch price, standard-API price, the saving, and
    what reused answers would have cost again."""
    unknown = "" if job.complete else " + unknown"
    section: Dict[str, str] = {
        "batch": usd(job.batch_usd) + unknown,
        "standard API": usd(job.standard_usd) + unknown,
        "saved": f"{usd(job.saved_usd)} ({_percent(job.saved_usd, job.standard_usd)})",
    }
    if not job.complete:
        section["saved"] += " on the priced results"
    t = job.tokens
    section["tokens"] = (f"{t['input']:,} in + {t['cache_write_5m'] + t['cache_write_1h']:,} "
                         f"cache write + {t['cache_read']:,} cache read + {t['output']:,} out")
    if t["web_search"]:
        section["web searches"] = f"{t['web_search']:,}"
    section["priced results"] = f"{job.succeeded - job.unknown:,} succeeded"
    if job.not_billed:
        section["priced results"] += f" ({job.not_billed:,} errored/canceled/expired: $0)"
    if not job.complete:
        section["unknown"] = _unknown(job.unknown, job.unknown_models, "result")
    if len(by_model) > 1:
        for model, totals in sorted(by_model.items()):
            amount = usd(totals.batch_usd) if totals.complete else "unknown"
            section[model] = f"{amount} ({totals.succeeded:,} results)"
    if reused is not None and (reused.succeeded or reused.not_billed):
        unknown_reused = "" if reused.complete else " + unknown"
        section["not spent (reused)"] = (
            f"{usd(reused.batch_usd)}{unknown_reused} for {reused.succeeded:,} answer(s) "
            "reused instead of bought again (priced as when they were bought)")
    if budget_usd is not None:
        left = budget_usd - committed_usd
        section["budget"] = f"{usd(budget_usd)} ({usd(left)} left)"
    for number, note in enumerate(notes, start=1):
        section[f"note {number}"] = note
    return section


def plan_section(estimate: EstimateCost, *, expected_fraction: Decimal,
                 budget_usd: Optional[Decimal], committed_usd: Decimal) -> Dict[str, str]:
    """A dry run's estimate: worst case, expected, standard-API worst case, the budget."""
    how = "counted" if estimate.counted else "approx."
    section: Dict[str, str] = {
        "worst case": f"{usd(estimate.worst_batch_usd)} (batch price, output at max_tokens)",
        "expected": (f"{usd(estimate.expected_batch_usd)} (repeated prefixes read from the "
                     f"cache, output at {expected_fraction * 100:.0f}% of max_tokens)"),
        "standard API worst case": usd(estimate.worst_standard_usd),
        "input tokens": (f"{estimate.input_tokens:,} ({how}; worst case "
                         f"{estimate.cache_write_tokens:,} cache writes, expected "
                         f"{estimate.expected_cache_read_tokens:,} cache reads)"),
        "max output tokens": f"{estimate.max_output_tokens:,}",
    }
    if estimate.web_searches:
        section["web searches (max)"] = f"{estimate.web_searches:,}"
    if estimate.unknown_requests:
        section["unknown"] = _unknown(estimate.unknown_requests, estimate.unknown_models,
                                      "request")
    if budget_usd is not None:
        projected = committed_usd + estimate.worst_batch_usd
        if estimate.unknown_requests:
            verdict = "cannot check: some models are not priced; the job would be refused"
        elif projected > budget_usd:
            verdict = "OVER: the job would be refused before anything is sent"
        else:
            verdict = f"within ({usd(budget_usd - projected)} to spare in the worst case)"
        section["budget"] = f"{usd(budget_usd)}: {verdict}"
    return section
