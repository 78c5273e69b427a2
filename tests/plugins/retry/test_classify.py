"""Which results the policy resubmits: every error type, and every result type."""

from __future__ import annotations

from typing import Any, Dict

import pytest
from claudebatch_retry import (
    PERMANENT_ERROR_TYPES,
    RETRYABLE_ERROR_TYPES,
    Verdict,
    classify,
    is_retryable_error,
)

from claudebatch._results import to_result


def line(custom_id: str, result: Dict[str, Any]) -> Any:
    """A results line as the API streams it, parsed the way the client parses it."""
    return to_result({"custom_id": custom_id, "result": result}, source="test")


def errored(error_type: str, message: str = "something") -> Any:
    return line("req-1", {"type": "errored", "error": {
        "type": "error", "error": {"type": error_type, "message": message},
        "request_id": "req_011"}})


@pytest.mark.parametrize("error_type", [
    "api_error", "overloaded_error", "rate_limit_error", "timeout_error"])
def test_transient_errors_are_resubmitted(error_type: str) -> None:
    verdict = classify(errored(error_type, "try later"))
    assert verdict.verdict is Verdict.RETRY and verdict.retryable
    assert (verdict.result_type, verdict.error_type, verdict.message) == (
        "errored", error_type, "try later")


@pytest.mark.parametrize("error_type", [
    "invalid_request_error", "authentication_error", "permission_error", "billing_error",
    "not_found_error", "request_too_large"])
def test_errors_of_the_request_or_account_are_never_resubmitted(error_type: str) -> None:
    verdict = classify(errored(error_type, "no"))
    assert verdict.verdict is Verdict.FINAL and not verdict.retryable
    assert verdict.error_type == error_type
    # retry_canceled is about canceled results only: it never makes these retryable
    assert not classify(errored(error_type), retry_canceled=True).retryable


def test_an_unknown_error_type_is_not_resubmitted() -> None:
    verdict = classify(errored("quota_melted_error", "new in the API"))
    assert verdict.verdict is Verdict.FINAL
    assert "unknown error type" in verdict.reason
    assert not is_retryable_error("quota_melted_error") and not is_retryable_error(None)


def test_expired_is_resubmitted() -> None:
    verdict = classify(line("req-1", {"type": "expired"}))
    assert verdict.verdict is Verdict.RETRY
    assert (verdict.result_type, verdict.error_type) == ("expired", None)


def test_canceled_is_resubmitted_only_when_asked() -> None:
    canceled = line("req-1", {"type": "canceled"})
    assert classify(canceled).verdict is Verdict.FINAL
    assert classify(canceled, retry_canceled=True).verdict is Verdict.RETRY


def test_succeeded_needs_nothing() -> None:
    succeeded = line("req-1", {"type": "succeeded", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
        "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1}}})
    assert classify(succeeded).verdict is Verdict.SUCCEEDED


def test_the_two_lists_are_the_documented_ones_and_do_not_overlap() -> None:
    assert RETRYABLE_ERROR_TYPES == {"api_error", "overloaded_error", "rate_limit_error",
                                     "timeout_error"}
    assert {"invalid_request_error", "authentication_error", "permission_error",
            "billing_error", "not_found_error"} <= PERMANENT_ERROR_TYPES
    assert not RETRYABLE_ERROR_TYPES & PERMANENT_ERROR_TYPES
