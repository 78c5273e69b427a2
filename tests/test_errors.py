"""Every documented error status maps to its own class; connection failures have their own."""

from __future__ import annotations

from typing import Any, Type

import pytest
import requests
import responses

import claudebatch
from claudebatch import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchClient,
    BillingError,
    ClaudeBatchError,
    ConflictError,
    GatewayTimeoutError,
    InternalServerError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
)

BATCH_URL = "https://api.anthropic.com/v1/messages/batches/b1"

DOCUMENTED = [
    (400, "invalid_request_error", BadRequestError),
    (401, "authentication_error", AuthenticationError),
    (402, "billing_error", BillingError),
    (403, "permission_error", PermissionDeniedError),
    (404, "not_found_error", NotFoundError),
    (409, "conflict_error", ConflictError),
    (413, "request_too_large", RequestTooLargeError),
    (429, "rate_limit_error", RateLimitError),
    (500, "api_error", InternalServerError),
    (504, "timeout_error", GatewayTimeoutError),
    (529, "overloaded_error", OverloadedError),
]


@pytest.fixture
def no_retry_client(clock: Any) -> BatchClient:
    return BatchClient(api_key="sk-ant-SECRET-123", base_url="https://api.anthropic.com",
                       max_retries=0, clock=clock)


@pytest.mark.parametrize("status, error_type, cls", DOCUMENTED)
def test_each_documented_status_raises_its_class_with_the_details(
        no_retry_client: BatchClient, mock: responses.RequestsMock, error_body: Any,
        status: int, error_type: str, cls: Type[APIStatusError]) -> None:
    mock.get(BATCH_URL, status=status, json=error_body(error_type, "the server's words"),
             headers={"request-id": "req_011CAbc"})
    with pytest.raises(cls) as info:
        no_retry_client.retrieve("b1")
    error = info.value
    assert type(error) is cls
    assert isinstance(error, APIStatusError)
    assert isinstance(error, ClaudeBatchError)
    assert error.status_code == status
    assert error.error_type == error_type
    assert error.message == "the server's words"
    assert error.request_id == "req_011CAbc"
    assert error.body == error_body(error_type, "the server's words")
    text = str(error)
    for part in (str(status), error_type, "the server's words", "req_011CAbc"):
        assert part in text


def test_every_error_class_is_exported_from_the_package() -> None:
    for _status, _type, cls in DOCUMENTED:
        assert getattr(claudebatch, cls.__name__) is cls


@pytest.mark.parametrize("status, cls", [(529, OverloadedError), (504, GatewayTimeoutError),
                                         (503, InternalServerError), (502, InternalServerError)])
def test_server_errors_are_caught_by_except_internal_server_error(
        no_retry_client: BatchClient, mock: responses.RequestsMock, error_body: Any,
        status: int, cls: Type[APIStatusError]) -> None:
    mock.get(BATCH_URL, status=status, json=error_body("overloaded_error"))
    try:
        no_retry_client.retrieve("b1")
    except InternalServerError as exc:
        assert type(exc) is cls
        assert exc.status_code == status
    else:
        pytest.fail("no InternalServerError raised")


def test_client_errors_are_not_server_errors() -> None:
    for status, _type, cls in DOCUMENTED:
        assert issubclass(cls, InternalServerError) == (status >= 500)


def test_an_undocumented_status_is_still_an_api_status_error(
        no_retry_client: BatchClient, mock: responses.RequestsMock, error_body: Any) -> None:
    mock.get(BATCH_URL, status=418, json=error_body("teapot_error", "short and stout"))
    with pytest.raises(APIStatusError) as info:
        no_retry_client.retrieve("b1")
    assert info.value.status_code == 418
    assert info.value.message == "short and stout"


def test_request_id_is_read_from_the_body_when_the_header_is_missing(
        no_retry_client: BatchClient, mock: responses.RequestsMock) -> None:
    mock.get(BATCH_URL, status=404, json={"type": "error", "request_id": "req_in_body",
                                          "error": {"type": "not_found_error", "message": "no"}})
    with pytest.raises(NotFoundError) as info:
        no_retry_client.retrieve("b1")
    assert info.value.request_id == "req_in_body"


def test_a_non_json_error_body_keeps_its_text(
        no_retry_client: BatchClient, mock: responses.RequestsMock) -> None:
    mock.get(BATCH_URL, status=502, body="<html>Bad Gateway from the proxy</html>",
             content_type="text/html")
    with pytest.raises(InternalServerError) as info:
        no_retry_client.retrieve("b1")
    assert info.value.status_code == 502
    assert info.value.error_type is None
    assert "Bad Gateway from the proxy" in str(info.value)


def test_a_success_with_a_body_that_is_not_json_is_a_clear_error(
        no_retry_client: BatchClient, mock: responses.RequestsMock) -> None:
    mock.get(BATCH_URL, status=200, body="<html>captive portal</html>")
    with pytest.raises(ClaudeBatchError, match="not JSON"):
        no_retry_client.retrieve("b1")


def test_a_connection_error_is_an_api_connection_error_not_a_timeout(
        no_retry_client: BatchClient, mock: responses.RequestsMock) -> None:
    mock.get(BATCH_URL, body=requests.ConnectionError("connection refused"))
    with pytest.raises(APIConnectionError) as info:
        no_retry_client.retrieve("b1")
    assert not isinstance(info.value, APITimeoutError)
    assert not isinstance(info.value, APIStatusError)
    assert "connection refused" in str(info.value)


@pytest.mark.parametrize("exc", [requests.ReadTimeout("read timed out"),
                                 requests.ConnectTimeout("connect timed out")])
def test_timeouts_are_api_timeout_errors(no_retry_client: BatchClient,
                                         mock: responses.RequestsMock, exc: Exception) -> None:
    mock.get(BATCH_URL, body=exc)
    with pytest.raises(APITimeoutError) as info:
        no_retry_client.retrieve("b1")
    assert isinstance(info.value, ClaudeBatchError)
    assert "timed out" in str(info.value)


def test_errors_from_other_endpoints_map_the_same_way(
        no_retry_client: BatchClient, mock: responses.RequestsMock, error_body: Any) -> None:
    mock.post(f"{BATCH_URL}/cancel", status=404, json=error_body("not_found_error"))
    mock.delete(BATCH_URL, status=400, json=error_body("invalid_request_error",
                                                       "batch is still in progress"))
    with pytest.raises(NotFoundError):
        no_retry_client.cancel("b1")
    with pytest.raises(BadRequestError, match="still in progress"):
        no_retry_client.delete("b1")
