"""What the report says about the requests that failed for good."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

#: How many failures the one-line summary names before it only counts the rest.
SHOWN_IN_SUMMARY = 5

NOT_RETRYABLE = "not retryable"
RETRIES_EXHAUSTED = "retries exhausted"


@dataclass(frozen=True)
class Failure:
    """A request's last result when that result was not a success.

    ``type`` is the result type (errored, expired, canceled); ``error_type`` and
    ``message`` are the API's error for errored results (None / "" otherwise);
    ``attempts`` counts the times the request was sent; ``reason`` is
    ``"not retryable"`` or ``"retries exhausted"``.
    """

    custom_id: str
    type: str
    error_type: Optional[str]
    message: str
    attempts: int
    reason: str

    @property
    def error(self) -> str:
        """``error_type: message`` for errored results, else the result type."""
        if self.error_type is None:
            return self.type
        return f"{self.error_type}: {self.message}" if self.message else self.error_type

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class FailedForGood(Dict[str, Dict[str, Any]]):
    """``custom_id -> Failure.to_dict()`` for ``report.plugins["retry"]``.

    A plain dict for code (and JSON); printed in a job summary it names the
    first few failures and counts the rest, so a large tail stays one line.
    """

    def __str__(self) -> str:
        if not self:
            return "0"
        shown = [f"{custom_id} ({value.get('error_type') or value.get('type')})"
                 for custom_id, value in list(self.items())[:SHOWN_IN_SUMMARY]]
        more = len(self) - len(shown)
        return f"{len(self)}: " + ", ".join(shown) + (f", and {more} more" if more else "")
