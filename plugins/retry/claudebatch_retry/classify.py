"""Which results are worth sending again: the one place the retry rules live.

A request is resubmitted only when sending the same request again can succeed:
it ran out of time (``expired``) or met a transient fault on the service's side.
An error caused by the request itself, the account or the key fails the same
way every time, so resubmitting it would only cost money and time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Optional

#: Transient errors on the service's side: the same request can succeed later.
RETRYABLE_ERROR_TYPES = frozenset({
    "api_error",
    "overloaded_error",
    "rate_limit_error",
    "timeout_error",
})

#: Errors caused by the request, the key or the account: they fail again unchanged.
PERMANENT_ERROR_TYPES = frozenset({
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "billing_error",
    "not_found_error",
    "request_too_large",
})


class Verdict(str, enum.Enum):
    """What the policy does with one result."""

    SUCCEEDED = "succeeded"  # nothing to do
    RETRY = "retry"  # resubmit in the next pass (while passes are left)
    FINAL = "final"  # keep this result: sending the request again cannot help


@dataclass(frozen=True)
class Classification:
    """A result's verdict, with what the report shows about it."""

    verdict: Verdict
    result_type: str  # succeeded | errored | expired | canceled
    error_type: Optional[str] = None  # for errored results: the API's error type
    message: str = ""  # for errored results: the API's message
    reason: str = ""  # why this verdict, for people

    @property
    def retryable(self) -> bool:
        return self.verdict is Verdict.RETRY


def is_retryable_error(error_type: Optional[str]) -> bool:
    """True for the transient error types only; unknown types are not retried."""
    return error_type in RETRYABLE_ERROR_TYPES


def classify(result: Any, *, retry_canceled: bool = False) -> Classification:
    """The verdict for one :class:`~claudebatch.BatchResult`.

    ``canceled`` is retried only with ``retry_canceled=True``: a batch is
    canceled on purpose, by someone who did not want those requests run.
    """
    outcome = result.result
    kind = str(outcome.type)
    if kind == "succeeded":
        return Classification(Verdict.SUCCEEDED, kind)
    if kind == "expired":
        return Classification(Verdict.RETRY, kind,
                              reason="expired: the batch ended before it was processed")
    if kind == "canceled":
        if retry_canceled:
            return Classification(Verdict.RETRY, kind, reason="canceled (retry_canceled)")
        return Classification(Verdict.FINAL, kind,
                              reason="canceled: not retried without retry_canceled")
    if kind == "errored":
        error = outcome.error.error  # ErroredResult.error is the ErrorResponse
        error_type = str(error.type)
        message = str(error.message or "")
        if error_type in RETRYABLE_ERROR_TYPES:
            return Classification(Verdict.RETRY, kind, error_type, message,
                                  reason=f"{error_type}: transient")
        if error_type in PERMANENT_ERROR_TYPES:
            return Classification(Verdict.FINAL, kind, error_type, message,
                                  reason=f"{error_type}: fails again unchanged")
        return Classification(Verdict.FINAL, kind, error_type, message,
                              reason=f"{error_type}: unknown error type, not retried")
    return Classification(Verdict.FINAL, kind, reason=f"unknown result type {kind!r}")
