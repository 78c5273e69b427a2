"""The HTTP retry schedule, through a real BatchClient with HTTP mocked by ``responses``."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

import pytest
import requests
import responses
from claudebatch_retry import HttpRetry, RetryPolicy

from claudebatch import GIVE_UP, BatchClient, InternalServerError, OverloadedError

URL = "https://api.anthropic.com/v1/messages/batches/msgbatch_01"


#: A client's context, for calling the policy by hand.
CONTEXT = BatchClient(api_key="k", base_url="http://127.0.0.1:9", load_entry_points=False).context


def make_client(clock: Any, policy: RetryPolicy, max_retries: int = 10) -> BatchClient:
    return BatchClient(api_key="sk-test", base_url="https://api.anthropic.com", clock=clock,
                       plugins=[policy], max_retries=max_retries)


def failing(mock: responses.RequestsMock, status: int, times: int, error_type: str = "api_error",
            headers: Optional[Dict[str, str]] = None) -> None:
    for _ in range(times):
        mock.add(responses.GET, URL, status=status, headers=headers,
                 json={"type": "error", "error": {"type": error_type, "message": "no"}})


def answer(mock: responses.RequestsMock, batch_json: Any) -> None:
    mock.add(responses.GET, URL, json=batch_json())


def response(status: int, headers: Optional[Dict[str, str]] = None) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.headers.update(headers or {})
    return r


def test_without_http_settings_the_builtin_schedule_applies(
        mock: responses.RequestsMock, clock: Any, batch_json: Any) -> None:
    policy = RetryPolicy()
    assert policy.retry_delay(attempt=0, response=response(529), error=None,
                              context=CONTEXT) is None  # no opinion
    failing(mock, 529, 2, "overloaded_error")
    answer(mock, batch_json)
    make_client(clock, policy).retrieve("msgbatch_01")
    # the core's default: 0.5 s then 1 s, shortened by up to a quarter
    assert 0.375 <= clock.sleeps[0] <= 0.5 and 0.75 <= clock.sleeps[1] <= 1.0


def test_a_configured_schedule_replaces_the_builtin_one(
        mock: responses.RequestsMock, clock: Any, batch_json: Any) -> None:
    policy = RetryPolicy(http=HttpRetry(attempts=4, initial_delay=2, max_delay=5, jitter=0))
    failing(mock, 503, 3)
    answer(mock, batch_json)
    assert make_client(clock, policy).retrieve("msgbatch_01").id == "msgbatch_01"
    assert clock.sleeps == [2.0, 4.0, 5.0]  # doubling, capped at max_delay


def test_attempts_count_the_first_try(mock: responses.RequestsMock, clock: Any) -> None:
    policy = RetryPolicy(http=HttpRetry(attempts=3, initial_delay=1, jitter=0))
    failing(mock, 503, 3)
    with pytest.raises(InternalServerError):
        make_client(clock, policy).retrieve("msgbatch_01")
    assert len(mock.calls) == 3 and clock.sleeps == [1.0, 2.0]


def test_only_the_chosen_statuses_are_retried(mock: responses.RequestsMock, clock: Any) -> None:
    # the built-in schedule would retry a 529; this one retries 503 only
    policy = RetryPolicy(http=HttpRetry(statuses=frozenset({503})))
    failing(mock, 529, 1, "overloaded_error")
    with pytest.raises(OverloadedError):
        make_client(clock, policy).retrieve("msgbatch_01")
    assert len(mock.calls) == 1 and clock.sleeps == []


def test_connection_errors_are_retried_unless_switched_off(
        mock: responses.RequestsMock, clock: Any, batch_json: Any) -> None:
    mock.add(responses.GET, URL, body=requests.ConnectionError("reset"))
    answer(mock, batch_json)
    policy = RetryPolicy(http=HttpRetry(initial_delay=1, jitter=0))
    make_client(clock, policy).retrieve("msgbatch_01")
    assert clock.sleeps == [1.0]
    off = RetryPolicy(http=HttpRetry(connection_errors=False))
    assert off.retry_delay(attempt=0, response=None, error=requests.ConnectionError(),
                           context=CONTEXT) == GIVE_UP


def test_no_retry_starts_after_the_budget(mock: responses.RequestsMock, clock: Any) -> None:
    policy = RetryPolicy(http=HttpRetry(attempts=50, initial_delay=1, max_delay=1, jitter=0,
                                        budget=2.5))
    failing(mock, 503, 3)
    with pytest.raises(InternalServerError):
        make_client(clock, policy).retrieve("msgbatch_01")
    # retries at 1 s and 2 s after the first failure; the next would start at 3 s > 2.5 s
    assert clock.sleeps == [1.0, 1.0] and len(mock.calls) == 3


def test_the_budget_counts_from_each_calls_first_failure(
        mock: responses.RequestsMock, clock: Any, batch_json: Any) -> None:
    policy = RetryPolicy(http=HttpRetry(attempts=50, initial_delay=1, max_delay=1, jitter=0,
                                        budget=1.5))
    client = make_client(clock, policy)
    for _ in range(2):  # two calls, each needing one retry: both fit their own budget
        failing(mock, 503, 1)
        answer(mock, batch_json)
        client.retrieve("msgbatch_01")
    assert clock.sleeps == [1.0, 1.0]


@pytest.mark.parametrize(("hint", "expected"), [("3", 3.0), ("30", 8.0)])
def test_a_servers_retry_after_is_honoured_up_to_max_delay(
        mock: responses.RequestsMock, clock: Any, batch_json: Any, hint: str,
        expected: float) -> None:
    policy = RetryPolicy(http=HttpRetry(initial_delay=0.5, max_delay=8, jitter=0))
    failing(mock, 429, 1, "rate_limit_error", headers={"retry-after": hint})
    answer(mock, batch_json)
    make_client(clock, policy).retrieve("msgbatch_01")
    assert clock.sleeps == [expected]


def test_the_servers_x_should_retry_wins() -> None:
    policy = RetryPolicy(http=HttpRetry(initial_delay=1, jitter=0))
    no = response(503, {"x-should-retry": "false"})
    yes = response(400, {"x-should-retry": "true"})
    assert policy.retry_delay(attempt=0, response=no, error=None, context=CONTEXT) == GIVE_UP
    assert policy.retry_delay(attempt=0, response=yes, error=None, context=CONTEXT) == 1.0


def test_jitter_only_shortens_a_wait() -> None:
    policy = RetryPolicy(http=HttpRetry(initial_delay=4, max_delay=4, jitter=0.5))
    delays: List[Optional[float]] = [
        policy.retry_delay(attempt=1, response=response(503), error=None, context=CONTEXT)
        for _ in range(200)]
    assert all(d is not None and 2.0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 1


def test_the_clients_max_retries_still_caps_the_attempts(
        mock: responses.RequestsMock, clock: Any, caplog: pytest.LogCaptureFixture) -> None:
    policy = RetryPolicy(http=HttpRetry(attempts=6, initial_delay=1, jitter=0))
    failing(mock, 503, 2)
    with caplog.at_level(logging.WARNING, logger="claudebatch.retry"), \
            pytest.raises(InternalServerError):
        make_client(clock, policy, max_retries=1).retrieve("msgbatch_01")
    assert len(mock.calls) == 2
    assert "capped by the client's max_retries=1" in caplog.text


@pytest.mark.parametrize("kwargs", [
    {"attempts": 0}, {"initial_delay": 9, "max_delay": 8}, {"initial_delay": -1},
    {"jitter": 1.5}, {"budget": -1}, {"statuses": frozenset({200})}])
def test_bad_http_settings_are_refused(kwargs: Dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        HttpRetry(**kwargs)
