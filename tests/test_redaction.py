"""The API key appears in no exception message, repr or log line, whatever goes wrong."""

from __future__ import annotations

import logging
import traceback
from typing import Any, Callable

import pytest
import requests
import responses

from claudebatch import BatchClient, ClaudeBatchError

KEY = "sk-ant-SECRET-123"
BASE = "https://api.anthropic.com"
BATCHES = f"{BASE}/v1/messages/batches"
BATCH_URL = f"{BATCHES}/b1"


def assert_no_key(exc: BaseException, key: str = KEY) -> None:
    """Not in str, repr, args, nor anywhere in the printed traceback (chained causes too)."""
    assert key not in str(exc)
    assert key not in repr(exc)
    assert all(key not in repr(arg) for arg in exc.args)
    printed = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    assert key not in printed


def raised(call: Callable[[], Any]) -> BaseException:
    with pytest.raises(ClaudeBatchError) as info:
        call()
    return info.value


@pytest.fixture
def client(clock: Any) -> BatchClient:
    return BatchClient(api_key=KEY, base_url=BASE, clock=clock, max_retries=1)


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 409, 413, 429, 500, 504, 529])
def test_no_key_in_api_errors(client: BatchClient, mock: responses.RequestsMock,
                              error_body: Any, status: int) -> None:
    mock.get(BATCH_URL, status=status, json=error_body("some_error", "it failed"),
             headers={"request-id": "req_1"})
    assert_no_key(raised(lambda: client.retrieve("b1")))


@pytest.mark.parametrize("exc", [
    requests.ConnectionError("connection refused"),
    requests.ReadTimeout("read timed out"),
    requests.ConnectTimeout("connect timed out"),
    requests.exceptions.SSLError("certificate verify failed"),
    requests.exceptions.ProxyError("proxy refused"),
])
def test_no_key_in_connection_errors(client: BatchClient, mock: responses.RequestsMock,
                                     exc: Exception) -> None:
    mock.get(BATCH_URL, body=exc)
    assert_no_key(raised(lambda: client.retrieve("b1")))


def test_no_key_in_a_lost_create(client: BatchClient, mock: responses.RequestsMock,
                                 make_requests: Any) -> None:
    mock.post(BATCHES, body=requests.ConnectionError("reset"))
    mock.get(BATCHES, body=requests.ConnectionError("reset"))
    assert_no_key(raised(lambda: client.create(make_requests(1))))


def test_no_key_in_validation_errors(client: BatchClient, mock: responses.RequestsMock) -> None:
    error = raised(lambda: client.create([{"custom_id": "bad id", "params": {}}]))
    assert_no_key(error)


def test_no_key_in_results_errors(client: BatchClient, mock: responses.RequestsMock,
                                  batch_json: Any, result_line: Any) -> None:
    mock.get(f"{BATCHES}/running", json=batch_json("running", "in_progress"))
    mock.get(f"{BATCHES}/elsewhere", json=batch_json(
        "elsewhere", "ended", results_url="https://evil.example/r"))
    mock.get(f"{BATCHES}/broken", json=batch_json("broken", "ended"))
    mock.get(f"{BATCHES}/broken/results", body=result_line("a", "canceled") + "{oops\n")
    assert_no_key(raised(lambda: client.results("running")))
    assert_no_key(raised(lambda: list(client.results("elsewhere"))))
    assert_no_key(raised(lambda: list(client.results("broken"))))


def test_no_key_in_wait_timeouts(client: BatchClient, mock: responses.RequestsMock,
                                 batch_json: Any) -> None:
    mock.get(BATCH_URL, json=batch_json("b1", "in_progress"))
    assert_no_key(raised(lambda: client.wait("b1", timeout=0)))


def test_no_key_in_reprs(client: BatchClient) -> None:
    for text in (repr(client), str(client), repr(client.transport), str(client.transport)):
        assert KEY not in text
    assert BASE in repr(client)


def test_no_key_when_the_key_itself_is_malformed(clock: Any, mock: responses.RequestsMock,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = BatchClient(api_key=KEY + "\n", base_url=BASE, clock=clock, max_retries=1)
    try:
        client.retrieve("b1")
    except Exception as exc:  # refusing the key up front (ConfigurationError) is fine too
        assert_no_key(exc)
    assert KEY not in caplog.text


def test_no_key_in_logs_at_debug_level(client: BatchClient, mock: responses.RequestsMock,
                                       caplog: pytest.LogCaptureFixture, batch_json: Any,
                                       error_body: Any, result_line: Any,
                                       make_requests: Any) -> None:
    caplog.set_level(logging.DEBUG)
    mock.post(BATCHES, status=529, json=error_body("overloaded_error"))
    mock.post(BATCHES, json=batch_json("b1"))
    mock.get(BATCH_URL, body=requests.ConnectionError("reset"))
    mock.get(BATCH_URL, json=batch_json("b1", "ended"))
    mock.get(f"{BATCH_URL}/results", body=result_line("a", "canceled"))
    mock.get(f"{BATCHES}/b2", status=401, json=error_body("authentication_error",
                                                          "invalid x-api-key"))
    client.create(make_requests(1))
    list(client.results("b1"))
    with pytest.raises(ClaudeBatchError):
        client.retrieve("b2")
    assert caplog.records, "the client logs its retries; this test must see them"
    assert KEY not in caplog.text
    for record in caplog.records:
        assert KEY not in record.getMessage()
