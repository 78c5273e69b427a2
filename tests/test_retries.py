"""HTTP retry rules (with a fake clock: nothing sleeps) and the ambiguous ``create``."""

from __future__ import annotations

import json
import random
from email.utils import formatdate
from typing import Any, Callable, List, Optional, Tuple

import pytest
import requests
import responses

from claudebatch import (
    GIVE_UP,
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    BatchClient,
    InternalServerError,
    MessageBatch,
    RateLimitError,
    hookimpl,
)

KEY = "sk-ant-SECRET-123"
BASE = "https://api.anthropic.com"
BATCHES = f"{BASE}/v1/messages/batches"
BATCH_URL = f"{BATCHES}/b1"
EPOCH = 1_700_000_000.0


def make_client(clock: Any, **kwargs: Any) -> BatchClient:
    return BatchClient(api_key=KEY, base_url=BASE, clock=clock, **kwargs)


@pytest.fixture
def jitter(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Pin the random draw behind the backoff jitter (0 = none, towards 1 = the most)."""
    def pin(value: float) -> None:
        monkeypatch.setattr(random, "random", lambda: value)
    return pin


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_retryable_statuses_are_retried(clock: Any, client: BatchClient,
                                        mock: responses.RequestsMock, error_body: Any,
                                        batch_json: Any, status: int) -> None:
    mock.get(BATCH_URL, status=status, json=error_body("some_error"))
    mock.get(BATCH_URL, json=batch_json("b1"))
    assert client.retrieve("b1").id == "b1"
    assert len(mock.calls) == 2
    assert len(clock.sleeps) == 1
    assert 0 < clock.sleeps[0] <= 10


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 413, 422])
def test_client_errors_are_not_retried(clock: Any, client: BatchClient,
                                       mock: responses.RequestsMock, error_body: Any,
                                       status: int) -> None:
    mock.get(BATCH_URL, status=status, json=error_body("some_error"))
    with pytest.raises(Exception) as info:
        client.retrieve("b1")
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert len(mock.calls) == 1
    assert clock.sleeps == []


def test_retries_are_bounded_by_max_retries_with_growing_delays(
        clock: Any, mock: responses.RequestsMock, error_body: Any, jitter: Any) -> None:
    jitter(0.5)
    client = make_client(clock, max_retries=3)
    mock.get(BATCH_URL, status=503, json=error_body("api_error"))
    with pytest.raises(InternalServerError):
        client.retrieve("b1")
    assert len(mock.calls) == 4  # the first try and three retries
    assert len(clock.sleeps) == 3
    assert 0 < clock.sleeps[0] < clock.sleeps[1] < clock.sleeps[2], clock.sleeps


def test_backoff_is_capped(clock: Any, mock: responses.RequestsMock, error_body: Any,
                           jitter: Any) -> None:
    jitter(0.0)
    client = make_client(clock, max_retries=12)
    mock.get(BATCH_URL, status=500, json=error_body("api_error"))
    with pytest.raises(InternalServerError):
        client.retrieve("b1")
    assert len(clock.sleeps) == 12
    assert clock.sleeps[-1] == clock.sleeps[-2]  # reached the cap
    assert max(clock.sleeps) <= 60.0


def test_backoff_has_jitter(clock: Any, mock: responses.RequestsMock, error_body: Any,
                            batch_json: Any, jitter: Any) -> None:
    client = make_client(clock)
    for draw in (0.0, 0.99):
        jitter(draw)
        mock.get(BATCH_URL, status=503, json=error_body("api_error"))
        mock.get(BATCH_URL, json=batch_json("b1"))
        client.retrieve("b1")
    calm, jittered = clock.sleeps
    assert 0 < jittered < calm


def test_max_retries_zero_sends_once(clock: Any, mock: responses.RequestsMock,
                                     error_body: Any) -> None:
    client = make_client(clock, max_retries=0)
    mock.get(BATCH_URL, status=529, json=error_body("overloaded_error"))
    with pytest.raises(InternalServerError):
        client.retrieve("b1")
    assert len(mock.calls) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("headers, expected", [
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after": "3"}, 3.0),
    ({"retry-after": "2.5"}, 2.5),
    ({"retry-after": formatdate(EPOCH + 7, usegmt=True)}, 7.0),
    ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the finer one wins
])
def test_server_requested_delay_is_honoured(clock: Any, client: BatchClient,
                                            mock: responses.RequestsMock, error_body: Any,
                                            batch_json: Any, headers: dict,
                                            expected: float) -> None:
    mock.get(BATCH_URL, status=429, json=error_body("rate_limit_error"), headers=headers)
    mock.get(BATCH_URL, json=batch_json("b1"))
    client.retrieve("b1")
    assert clock.sleeps == [pytest.approx(expected)]


def test_an_absurd_retry_after_is_not_slept(clock: Any, client: BatchClient,
                                            mock: responses.RequestsMock, error_body: Any,
                                            batch_json: Any) -> None:
    mock.get(BATCH_URL, status=429, json=error_body("rate_limit_error"),
             headers={"retry-after": "86400"})
    mock.get(BATCH_URL, json=batch_json("b1"))
    client.retrieve("b1")
    assert len(clock.sleeps) == 1
    assert clock.sleeps[0] <= 60


def test_x_should_retry_true_retries_even_a_400(clock: Any, client: BatchClient,
                                                mock: responses.RequestsMock, error_body: Any,
                                                batch_json: Any) -> None:
    mock.get(BATCH_URL, status=400, json=error_body("invalid_request_error"),
             headers={"x-should-retry": "true"})
    mock.get(BATCH_URL, json=batch_json("b1"))
    assert client.retrieve("b1").id == "b1"
    assert len(mock.calls) == 2


@pytest.mark.parametrize("status", [429, 503, 529])
def test_x_should_retry_false_stops_retries(clock: Any, client: BatchClient,
                                            mock: responses.RequestsMock, error_body: Any,
                                            status: int) -> None:
    mock.get(BATCH_URL, status=status, json=error_body("some_error"),
             headers={"x-should-retry": "false"})
    with pytest.raises(Exception) as info:
        client.retrieve("b1")
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert len(mock.calls) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("exc, cls", [
    (requests.ConnectionError("reset by peer"), APIConnectionError),
    (requests.ReadTimeout("read timed out"), APITimeoutError),
])
def test_connection_errors_and_timeouts_are_retried(
        clock: Any, client: BatchClient, mock: responses.RequestsMock, batch_json: Any,
        exc: Exception, cls: type) -> None:
    mock.get(BATCH_URL, body=exc)
    mock.get(BATCH_URL, json=batch_json("b1"))
    assert client.retrieve("b1").id == "b1"
    assert len(mock.calls) == 2
    assert len(clock.sleeps) == 1


def test_connection_errors_give_up_after_max_retries(clock: Any, mock: responses.RequestsMock
                                                     ) -> None:
    client = make_client(clock, max_retries=2)
    mock.get(BATCH_URL, body=requests.ConnectionError("unreachable"))
    with pytest.raises(APIConnectionError):
        client.retrieve("b1")
    assert len(mock.calls) == 3


class FixedDelay:
    """A retry-policy plugin: always this delay; records what it was asked."""

    def __init__(self, delay: Optional[float]):
        self.delay = delay
        self.seen: List[Tuple[int, Optional[int], Optional[str]]] = []

    @hookimpl
    def retry_delay(self, attempt: int, response: Optional[requests.Response],
                    error: Optional[BaseException], context: Any) -> Optional[float]:
        self.seen.append((attempt, None if response is None else response.status_code,
                          None if error is None else type(error).__name__))
        return self.delay


def test_a_plugin_retry_delay_replaces_the_default(clock: Any, mock: responses.RequestsMock,
                                                   error_body: Any, batch_json: Any) -> None:
    policy = FixedDelay(42.0)
    client = make_client(clock, plugins=[policy])
    mock.get(BATCH_URL, status=503, json=error_body("api_error"))
    mock.get(BATCH_URL, body=requests.ConnectionError("reset"))
    mock.get(BATCH_URL, json=batch_json("b1"))
    client.retrieve("b1")
    assert clock.sleeps == [42.0, 42.0]
    assert policy.seen == [(0, 503, None), (1, None, "APIConnectionError")]


def test_a_plugin_can_retry_what_the_default_would_not(
        clock: Any, mock: responses.RequestsMock, error_body: Any, batch_json: Any) -> None:
    client = make_client(clock, plugins=[FixedDelay(0.0)])
    mock.get(BATCH_URL, status=400, json=error_body("invalid_request_error"))
    mock.get(BATCH_URL, json=batch_json("b1"))
    assert client.retrieve("b1").id == "b1"
    assert len(mock.calls) == 2


def test_a_plugin_returning_give_up_stops_at_once(clock: Any, mock: responses.RequestsMock,
                                                  error_body: Any) -> None:
    client = make_client(clock, plugins=[FixedDelay(GIVE_UP)])
    mock.get(BATCH_URL, status=529, json=error_body("overloaded_error"))
    with pytest.raises(InternalServerError):
        client.retrieve("b1")
    assert len(mock.calls) == 1
    assert clock.sleeps == []


def test_a_plugin_returning_none_leaves_the_default(clock: Any, mock: responses.RequestsMock,
                                                    error_body: Any) -> None:
    policy = FixedDelay(None)
    client = make_client(clock, plugins=[policy], max_retries=4)
    mock.get(BATCH_URL, status=400, json=error_body("invalid_request_error"))
    with pytest.raises(BadRequestError):
        client.retrieve("b1")
    assert len(mock.calls) == 1  # the default does not retry a 400
    assert len(policy.seen) == 1


def test_a_plugin_cannot_exceed_max_retries(clock: Any, mock: responses.RequestsMock,
                                            error_body: Any) -> None:
    client = make_client(clock, plugins=[FixedDelay(1.0)], max_retries=2)
    mock.get(BATCH_URL, status=429, json=error_body("rate_limit_error"))
    with pytest.raises(RateLimitError):
        client.retrieve("b1")
    assert len(mock.calls) == 3
    assert clock.sleeps == [1.0, 1.0]


def test_a_retried_create_resends_the_same_body(clock: Any, client: BatchClient,
                                                mock: responses.RequestsMock, error_body: Any,
                                                batch_json: Any, make_requests: Any) -> None:
    mock.post(BATCHES, status=529, json=error_body("overloaded_error"))
    mock.post(BATCHES, json=batch_json("b_new", processing=3))
    assert client.create(make_requests(3)).id == "b_new"
    posts = [c for c in mock.calls if c.request.method == "POST"]
    assert len(posts) == 2
    assert posts[0].request.body == posts[1].request.body
    assert len(json.loads(posts[1].request.body)["requests"]) == 3


# --- the ambiguous create ---------------------------------------------------------------

class SubmitRecorder:
    def __init__(self) -> None:
        self.batches: List[MessageBatch] = []

    @hookimpl
    def after_submit(self, batch: MessageBatch) -> None:
        self.batches.append(batch)


def list_page(*batches: dict) -> dict:
    return {"data": list(batches), "has_more": False,
            "first_id": batches[0]["id"] if batches else None,
            "last_id": batches[-1]["id"] if batches else None}


@pytest.mark.parametrize("lost", [requests.ConnectionError("connection reset after send"),
                                  requests.ReadTimeout("read timed out")])
def test_a_create_whose_answer_was_lost_returns_the_batch_it_made(
        clock: Any, mock: responses.RequestsMock, batch_json: Any, make_requests: Any,
        lost: Exception) -> None:
    recorder = SubmitRecorder()
    client = make_client(clock, plugins=[recorder])
    made = batch_json("b_made", processing=2, created_at=EPOCH + 1)
    mock.post(BATCHES, body=lost)
    mock.get(BATCHES, json=list_page(made, batch_json("b_old", processing=2,
                                                        created_at=EPOCH - 86400)))
    mock.get(f"{BATCHES}/b_made", json=made)
    batch = client.create(make_requests(2))
    assert batch.id == "b_made"
    assert [c.request.method for c in mock.calls].count("POST") == 1
    assert [b.id for b in recorder.batches] == ["b_made"]


def test_a_lost_create_is_retried_when_no_batch_was_made(
        clock: Any, client: BatchClient, mock: responses.RequestsMock, batch_json: Any,
        make_requests: Any) -> None:
    mock.post(BATCHES, body=requests.ConnectionError("connection reset after send"))
    mock.post(BATCHES, json=batch_json("b_new", processing=2, created_at=EPOCH + 2))
    mock.get(BATCHES, json=list_page(
        batch_json("b_other_count", processing=5, created_at=EPOCH + 1),  # recent, 5 requests
        batch_json("b_old", processing=2, created_at=EPOCH - 86400),  # 2 requests, long ago
    ))
    batch = client.create(make_requests(2))
    assert batch.id == "b_new"
    assert [c.request.method for c in mock.calls] == ["POST", "GET", "POST"]


def test_a_lost_create_does_not_adopt_a_batch_this_client_already_made(
        clock: Any, client: BatchClient, mock: responses.RequestsMock, batch_json: Any,
        make_requests: Any) -> None:
    first = batch_json("b_first", processing=2, created_at=EPOCH)
    mock.post(BATCHES, json=first)
    assert client.create(make_requests(2)).id == "b_first"

    mock.post(BATCHES, body=requests.ConnectionError("connection reset after send"))
    mock.post(BATCHES, json=batch_json("b_second", processing=2, created_at=EPOCH + 1))
    mock.get(BATCHES, json=list_page(first))
    assert client.create(make_requests(2, prefix="again")).id == "b_second"
    assert [c.request.method for c in mock.calls].count("POST") == 3
