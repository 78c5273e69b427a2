"""What the store can tell about its jobs, for people (``claudebatch jobs``/``job``) and code.

Results are kept by the service for 29 days after a batch is created; a batch
whose results the store never got is flagged once it comes within 3 days of that.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from claudebatch.limits import RESULTS_KEPT_SECONDS

#: Warn this long before then.
WARN_BEFORE_SECONDS = 3 * 86400.0


@dataclass(frozen=True)
class BatchInfo:
    """One batch of a job as the store knows it."""

    pass_number: int
    index: int
    batch_id: Optional[str]  # None: queued for a worker, or the create never confirmed
    request_count: int
    status: Optional[str]  # the service's; "queued" before a worker sends it
    counts: Dict[str, int]
    created_at: Optional[float]
    expires_at: Optional[float]
    ended_at: Optional[float]
    results_done: bool
    results_stored: int

    @property
    def results_deleted_at(self) -> Optional[float]:
        """When the service deletes this batch's results (29 days after creation)."""
        return None if self.created_at is None else self.created_at + RESULTS_KEPT_SECONDS


@dataclass(frozen=True)
class JobInfo:
    """A job in the store: its state, what came back, and what it cost when known."""

    name: str
    state: str  # running | interrupted | done
    total_requests: int
    counts: Dict[str, int]  # result types of each request's latest stored attempt
    missing: int  # requests without any stored result
    output: Optional[str]
    fingerprint: str
    options: Dict[str, Any]
    runs: int
    created_at: float
    updated_at: float
    ended_at: Optional[float]
    owner: Optional[str]  # who holds the job's lock, when it is running
    cost: Optional[str]  # the cost plugin's batch price, when it ran
    summary: Dict[str, Any] = field(default_factory=dict)
    batches: List[BatchInfo] = field(default_factory=list)

    @property
    def results_stored(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class ExpiryWarning:
    """A batch whose results the store never got, close to (or past) their deletion."""

    job: str
    batch_id: str
    deleted_at: float
    seconds_left: float

    def __str__(self) -> str:
        when = _utc(self.deleted_at)
        if self.seconds_left <= 0:
            return (f"WARNING: job {self.job}: the results of batch {self.batch_id} were never "
                    f"downloaded and the service deleted them at {when}")
        return (f"WARNING: job {self.job}: the results of batch {self.batch_id} were never "
                f"downloaded; the service deletes them at {when} (in "
                f"{_duration(self.seconds_left)}). Resume the job now (run it again with "
                f"--name {self.job} and this --store).")


def expiry_warnings(job: JobInfo, now: float, *,
                    within: float = WARN_BEFORE_SECONDS) -> List[ExpiryWarning]:
    found = []
    for batch in job.batches:
        deleted = batch.results_deleted_at
        if batch.batch_id is None or batch.results_done or deleted is None:
            continue
        if deleted - now <= within:
            found.append(ExpiryWarning(job.name, batch.batch_id, deleted, deleted - now))
    return found


def cost_of(summary: Optional[Dict[str, Any]]) -> Optional[str]:
    """The batch price from the cost plugin's section of a job summary, if it ran."""
    section = (summary or {}).get("cost")
    if isinstance(section, dict):
        for key in ("batch", "batch_usd", "total", "total_usd", "usd", "so_far"):
            if section.get(key) is not None:
                return str(section[key])
        return None
    return None if section is None else str(section)


def _batches_made(job: JobInfo) -> str:
    """Batches created, and of how many when some wait to be sent (a job for workers)."""
    made = len([b for b in job.batches if b.batch_id])
    return str(made) if made == len(job.batches) else f"{made}/{len(job.batches)}"


def _utc(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    hours = int(seconds // 3600)
    if hours >= 48:
        return f"{hours // 24} days {hours % 24} h"
    if hours >= 1:
        return f"{hours} h {int(seconds % 3600 // 60)} min"
    return f"{max(1, int(seconds // 60))} min"


def when(timestamp: Optional[float]) -> str:
    return "-" if timestamp is None else _utc(timestamp)


def format_counts(counts: Dict[str, int]) -> str:
    order = ("succeeded", "errored", "canceled", "expired")
    parts = [f"{k} {counts[k]:,}" for k in order if counts.get(k)]
    parts += [f"{k} {v:,}" for k, v in sorted(counts.items()) if k not in order and v]
    return ", ".join(parts) or "none"


def format_jobs(jobs: List[JobInfo]) -> str:
    """The ``claudebatch jobs`` table."""
    headers = ("JOB", "STATE", "REQUESTS", "RESULTS", "BATCHES", "COST", "UPDATED")
    rows = [headers]
    for job in jobs:
        results = format_counts(job.counts)
        if job.missing:
            results += f"; {job.missing:,} without result"
        rows.append((job.name, job.state, f"{job.total_requests:,}", results,
                     _batches_made(job), job.cost or "-",
                     when(job.updated_at)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip()
                     for r in rows)


def format_job(job: JobInfo) -> str:
    """``claudebatch job NAME``: one job in full."""
    lines = [
        f"job {job.name}: {job.state}" + (f" ({job.owner})" if job.owner else ""),
        f"  requests  {job.total_requests:,} in {len(job.batches)} batch(es), "
        f"{max([b.pass_number for b in job.batches], default=1)} pass(es), {job.runs} run(s)",
        f"  results   {format_counts(job.counts)}"
        + (f"; {job.missing:,} request(s) without result" if job.missing else ""),
        f"  cost      {job.cost or 'unknown (run with the cost plugin to record it)'}",
        f"  output    {job.output or '-'}",
        f"  input     {job.fingerprint[:19]}...  split: "
        + ", ".join(f"{k}={v}" for k, v in sorted(job.options.items())
                    if k in ("max_batch_requests", "max_batch_bytes")),
        f"  created   {when(job.created_at)}   updated {when(job.updated_at)}"
        + (f"   ended {when(job.ended_at)}" if job.ended_at else ""),
        "  batches:",
    ]
    if job.summary.get("error"):
        lines.insert(1, f"  error     {job.summary['error']}")
    for b in job.batches:
        stored = ("all results stored" if b.results_done
                  else f"{b.results_stored:,} result(s) stored")
        queued = "(never sent: the job failed)" if job.state == "failed" \
            else "(queued for a worker)"
        ident = b.batch_id or (queued if b.status == "queued"
                               else "(create sent, id never confirmed)")
        lines.append(f"    pass {b.pass_number} #{b.index}  {ident}  {b.request_count:,} "
                     f"requests  {b.status or 'unknown'}  {stored}  created {when(b.created_at)}")
    return "\n".join(lines)
