"""JobReport: what a whole job did, for people (``summary()``) and for code (the fields)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple

import attrs

from .models import BatchResult, Request

if TYPE_CHECKING:
    from ._job import Job

RESULT_TYPES = ("succeeded", "errored", "canceled", "expired")
#: Stop reasons of succeeded results that did not finish the answer, and what to do.
UNFINISHED_STOPS = {
    "max_tokens": "hit max_tokens (the answer is cut short: raise max_tokens)",
    "refusal": "refused (the model declined: read them before using the output)",
    "pause_turn": "paused (a server tool's turn to continue: the retry plugin's "
                  "--continue-paused sends them again with the paused content)",
    "model_context_window_exceeded": "ran out of context window",
}


@attrs.define
class BatchSummary:
    """One batch of a job: which pass sent it, how many requests, what came back."""

    id: str
    pass_number: int
    index: int
    request_count: int
    counts: Dict[str, int] = attrs.field(factory=dict)
    missing: int = 0


@attrs.define
class JobPlan:
    """What a dry run found: the batches a job would send, and plugins' estimates."""

    name: str
    total_requests: int
    batches: List[Tuple[int, int]]  # (requests, body bytes) per batch
    plugins: Dict[str, Any] = attrs.field(factory=dict)
    #: Requests that would be answered from kept answers, or by an identical request.
    reused: int = 0
    duplicates: int = 0

    def summary(self) -> str:
        sent = sum(count for count, _ in self.batches)
        lines = [f"dry run of job {self.name}: {sent:,} requests would go in "
                 f"{len(self.batches)} batch(es); nothing was sent"]
        lines.extend(_reuse_lines(self.reused, self.duplicates, "would"))
        for index, (count, size) in enumerate(self.batches):
            lines.append(f"  batch {index}: {count:,} requests, {size:,} bytes")
        lines.extend(_plugin_lines(self.plugins))
        return "\n".join(lines)


@attrs.define
class JobReport:
    """The outcome of ``client.run()``.

    ``counts`` are per result type over the final output (one line per
    custom_id, the last attempt's), ``stop_reasons`` per stop reason of its
    succeeded results (``max_tokens``, ``refusal`` and ``pause_turn`` are
    successes that did not finish); ``missing`` lists custom_ids that got no
    result at all; ``plugins`` holds each plugin's summary.
    """

    name: str
    output: str
    total_requests: int
    counts: Dict[str, int]
    batches: List[BatchSummary]
    missing: List[str]
    passes: int
    elapsed_seconds: float
    plugins: Dict[str, Any] = attrs.field(factory=dict)
    stop_reasons: Dict[str, int] = attrs.field(factory=dict)
    #: Requests answered by an answer kept from an earlier job (not sent), and requests
    #: answered by an identical request of this job (sent once).
    reused: int = 0
    duplicates: int = 0
    #: Where the table was written (a path or URL), when the job wrote one.
    table: Optional[str] = None
    _job: Optional[Job] = attrs.field(default=None, repr=False, eq=False)

    @property
    def batch_ids(self) -> List[str]:
        return [b.id for b in self.batches]

    @property
    def complete(self) -> bool:
        """Every request has a result line in the output."""
        return not self.missing and sum(self.counts.values()) == self.total_requests

    @property
    def all_succeeded(self) -> bool:
        return self.complete and self.counts.get("succeeded", 0) == self.total_requests

    @property
    def unfinished(self) -> Dict[str, int]:
        """Succeeded results that stopped before the answer was done, by stop reason."""
        return {reason: count for reason, count in self.stop_reasons.items()
                if reason in UNFINISHED_STOPS and count}

    def results(self) -> Iterator[Tuple[Request, BatchResult]]:
        """``(request, result)`` pairs joined by custom_id, read back from the output."""
        if self._job is None:
            raise RuntimeError("this report is not attached to its job")
        return self._job.results()

    def _attached(self) -> Job:
        if self._job is None:
            raise RuntimeError("this report is not attached to its job")
        return self._job

    def to_arrow(self) -> Any:
        """The job's table as a pyarrow Table: the input's columns (for a job over rows,
        in its order), then each answer's (see :mod:`claudebatch.tables`). Needs
        ``claudebatch[parquet]``."""
        return self._attached().to_arrow()

    def to_pandas(self) -> Any:
        """The job's table as a pandas DataFrame (``claudebatch[pandas]``)."""
        from ._extras import need

        need("pandas", "report.to_pandas()")
        return self.to_arrow().to_pandas()

    def to_polars(self) -> Any:
        """The job's table as a polars DataFrame (``claudebatch[polars]``)."""
        from ._extras import need

        polars = need("polars", "report.to_polars()")
        return polars.from_arrow(self.to_arrow())

    def summary(self) -> str:
        """A few lines for a person: counts, batches, time, output, plugin summaries."""
        counts = Counter({t: self.counts.get(t, 0) for t in RESULT_TYPES})
        lines = [
            f"job {self.name}: {self.total_requests:,} requests in {len(self.batches)} "
            f"batch(es), {self.passes} pass(es), {self.elapsed_seconds:.1f} s",
            "  " + "  ".join(f"{t} {counts[t]:,}" for t in RESULT_TYPES),
        ]
        lines.extend(_reuse_lines(self.reused, self.duplicates, "were"))
        if self.stop_reasons:
            lines.append("  stop reasons: " + "  ".join(
                f"{reason} {count:,}" for reason, count in sorted(
                    self.stop_reasons.items(), key=lambda item: (-item[1], item[0]))))
        for reason, count in self.unfinished.items():
            lines.append(f"  NOT FINISHED: {count:,} {UNFINISHED_STOPS[reason]}")
        if self.missing:
            shown = ", ".join(self.missing[:5]) + (" ..." if len(self.missing) > 5 else "")
            lines.append(f"  NO RESULT for {len(self.missing):,} request(s): {shown}")
        if self.table is not None:
            lines.append(f"  table: {self.table}")
            lines.append(f"  result lines: {self.output}")
        else:
            lines.append(f"  output: {self.output}")
        lines.extend(_plugin_lines(self.plugins))
        return "\n".join(lines)


def _reuse_lines(reused: int, duplicates: int, verb: str) -> List[str]:
    """What reuse saved, for a summary (nothing when it saved nothing)."""
    parts = []
    if reused:
        parts.append(f"{reused:,} answered by answers kept from earlier jobs")
    if duplicates:
        parts.append(f"{duplicates:,} answered by an identical request sent once")
    if not parts:
        return []
    return [f"  reuse: {' and '.join(parts)} ({reused + duplicates:,} {verb} not "
            f"{'sent' if verb == 'were' else 'be sent'})"]


def _plugin_lines(plugins: Dict[str, Any]) -> List[str]:
    lines = []
    for name, value in plugins.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        lines.append(f"  {name}: {value}")
    return lines
