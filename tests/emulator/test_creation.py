"""What is refused at creation (400/413), and what is accepted but comes back errored."""

from __future__ import annotations

import http.client
import json
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List

import pytest

from claudebatch.emulator import Emulator, ManualClock

if TYPE_CHECKING:
    from conftest import Api

Req = Callable[..., Dict[str, Any]]


def create_error(api: Api, body: Any, raw: bool = False) -> Dict[str, Any]:
    r = api.call("POST", "", data=body) if raw else api.call("POST", "", json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize("body, words", [
    ({"requests": []}, "at least 1 item"),
    ({}, "requests: Field required"),
    ({"requests": {"a": 1}}, "valid list"),
    ({"requests": [{"custom_id": "a"}]}, "requests.0.params: Field required"),
    ({"requests": [{"params": {}}]}, "requests.0.custom_id: Field required"),
    ({"requests": [{"custom_id": "a", "params": []}]}, "valid dictionary"),
    ({"requests": [{"custom_id": "a b", "params": {}}]}, "should match pattern"),
    ({"requests": [{"custom_id": "x" * 65, "params": {}}]}, "should match pattern"),
    ({"requests": [{"custom_id": "", "params": {}}]}, "should match pattern"),
    ({"requests": [{"custom_id": 5, "params": {}}]}, "valid string"),
    ({"requests": [{"custom_id": "a", "params": {}, "extra": 1}]}, "Extra inputs"),
    ({"requests": [{"custom_id": "a", "params": {}}], "model": "x"}, "model: Extra inputs"),
    ({"requests": [{"custom_id": "a", "params": {}}, {"custom_id": "a", "params": {}}]},
     "Duplicate custom_id 'a'"),
    ([1, 2], "JSON object"),
])
def test_refused_at_creation(api: Api, body: Any, words: str) -> None:
    assert words in create_error(api, body)["message"]
    assert api.emu.batches_created == 0


def test_invalid_json_is_refused(api: Api) -> None:
    assert "not valid JSON" in create_error(api, b'{"requests": [', raw=True)["message"]
    assert "empty" in create_error(api, b"", raw=True)["message"]


def test_more_than_100000_requests_is_refused(api: Api) -> None:
    item = b'{"custom_id":"r","params":{}}'
    body = b'{"requests":[' + b",".join([item] * 100_001) + b"]}"
    message = create_error(api, body, raw=True)["message"]
    assert "at most 100000 items" in message
    assert api.emu.batches_created == 0


def test_exactly_100000_requests_are_accepted(api: Api, clock: ManualClock) -> None:
    parts = [b'{"custom_id":"r%d","params":{"model":"m"}}' % i for i in range(100_000)]
    r = api.call("POST", "", data=b'{"requests":[' + b",".join(parts) + b"]}")
    assert r.status_code == 200
    assert r.json()["request_counts"]["processing"] == 100_000


@pytest.mark.parametrize("params, error_type, words", [
    ({"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
     "invalid_request_error", "model: Field required"),
    ({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]},
     "invalid_request_error", "max_tokens: Field required"),
    ({"model": "claude-sonnet-4-5", "max_tokens": -1,
      "messages": [{"role": "user", "content": "hi"}]},
     "invalid_request_error", "max_tokens: Input should be greater than or equal to 1"),
    ({"model": "claude-sonnet-4-5", "max_tokens": "10",
      "messages": [{"role": "user", "content": "hi"}]},
     "invalid_request_error", "max_tokens: Input should be a valid integer"),
    ({"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": []},
     "invalid_request_error", "at least one message"),
    ({"model": "claude-sonnet-4-5", "max_tokens": 10},
     "invalid_request_error", "messages: Field required"),
    ({"model": "claude-sonnet-4-5", "max_tokens": 10, "stream": True,
      "messages": [{"role": "user", "content": "hi"}]},
     "invalid_request_error", "stream"),
    ({"model": "not-a-model", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
     "not_found_error", "model: not-a-model"),
    ({"model": "claude-sonnet-4-5", "max_tokens": 10, "temperature": 2,
      "messages": [{"role": "user", "content": "hi"}]},
     "invalid_request_error", "temperature"),
    ({"model": "claude-sonnet-4-5", "max_tokens": 10,
      "messages": [{"role": "bot", "content": "x"}]},
     "invalid_request_error", "messages.0.role"),
    ({"model": "claude-sonnet-4-5", "max_tokens": 10,
      "messages": [{"role": "user", "content": ""}]},
     "invalid_request_error", "non-empty content"),
    ({"model": "claude-sonnet-4-5", "max_tokens": 10, "frequency_penalty": 1,
      "messages": [{"role": "user", "content": "hi"}]},
     "invalid_request_error", "frequency_penalty: Extra inputs are not permitted"),
    ({"model": "claude-sonnet-4-5", "max_tokens": 100_000,
      "messages": [{"role": "user", "content": "hi"}]},
     "invalid_request_error", "maximum allowed number of output tokens"),
    ({"model": "claude-sonnet-4-5", "max_tokens": 2000,
      "thinking": {"type": "enabled", "budget_tokens": 100},
      "messages": [{"role": "user", "content": "hi"}]},
     "invalid_request_error", "budget_tokens"),
    ({"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}}
        for i in range(5)]}]},
     "invalid_request_error", "A maximum of 4 blocks with cache_control may be provided. Found 5."),
    ({"model": "claude-sonnet-4-5", "max_tokens": 10,
      "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
      "messages": [{"role": "user", "content": [
          {"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}]},
     "invalid_request_error", "ttl='1h' cannot come after"),
])
def test_bad_params_come_back_errored_not_refused(
    api: Api, clock: ManualClock, req: Req, params: Dict[str, Any], error_type: str, words: str
) -> None:
    batch = api.create([{"custom_id": "bad", "params": params}, req("good")])
    assert batch["processing_status"] == "in_progress"
    clock.advance(60)
    counts = api.retrieve(batch["id"])["request_counts"]
    assert counts["errored"] == 1 and counts["succeeded"] == 1
    results = {line["custom_id"]: line["result"] for line in api.results(batch["id"])}
    assert results["good"]["type"] == "succeeded"
    assert results["bad"]["type"] == "errored"
    error = results["bad"]["error"]
    assert error["type"] == "error"
    assert error["error"]["type"] == error_type
    assert words in error["error"]["message"]


def test_any_claude_model_is_known_unless_a_list_is_given(
    make_emulator: Callable[..., Emulator], make_api: Callable[..., Api],
    clock: ManualClock, req: Req,
) -> None:
    models = ["claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1",
              "claude-sonnet-4-6", "claude-opus-4-6", "claude-sonnet-4-5-20250929",
              "claude-3-5-haiku-20241022", "claude-3-haiku-20240307", "claude-future-9"]
    api = make_api(make_emulator())
    batch = api.create([req(f"m{i}", model=m, max_tokens=100) for i, m in enumerate(models)])
    clock.advance(60)
    assert api.retrieve(batch["id"])["request_counts"]["succeeded"] == len(models)

    strict = make_api(make_emulator(models=["claude-haiku-4-5"]))
    batch = strict.create([req("ok", model="claude-haiku-4-5"), req("no", model="claude-opus-4-6")])
    clock.advance(60)
    results = {line["custom_id"]: line["result"] for line in strict.results(batch["id"])}
    assert results["ok"]["type"] == "succeeded"
    assert results["no"]["error"]["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("extra", [{"max_tokens": 0}, {"speed": "fast"}, {"store": True},
                                   {"previous_thread_event_id": "evt_1"},
                                   {"cache_hint": "x"}, {"context_hint": "x"},
                                   {"research_preview_2026_02": "active"}])
def test_what_a_batch_refuses_comes_back_errored(api: Api, clock: ManualClock, req: Req,
                                                 extra: Dict[str, Any]) -> None:
    # the spec allows max_tokens 0 (a cache pre-warm) and these parameters outside a batch;
    # inside one, the service answers a validation error for the request
    batch = api.create([req("r", **extra)])
    clock.advance(60)
    (line,) = api.results(batch["id"])
    assert line["result"]["type"] == "errored"
    error = line["result"]["error"]["error"]
    assert error["type"] == "invalid_request_error" and next(iter(extra)) in error["message"]


# --- 413: a body over the limit, never read into memory --------------------------------


def _error_of(response: http.client.HTTPResponse) -> Dict[str, Any]:
    body = json.loads(response.read())
    assert body["type"] == "error"
    assert body["request_id"] == response.getheader("request-id")
    return body["error"]  # type: ignore[no-any-return]


def test_declared_length_over_256_mib_is_refused_before_reading(api: Api) -> None:
    """Only the headers and a few bytes are sent: the answer cannot depend on the body."""
    conn = http.client.HTTPConnection("127.0.0.1", api.emu.port, timeout=10)
    conn.putrequest("POST", "/v1/messages/batches")
    conn.putheader("x-api-key", "k")
    conn.putheader("anthropic-version", "2023-06-01")
    conn.putheader("content-type", "application/json")
    conn.putheader("content-length", str(256 * 1024 * 1024 + 1))
    conn.endheaders(b'{"requests": [')
    started = time.monotonic()
    response = conn.getresponse()
    assert time.monotonic() - started < 5
    assert response.status == 413
    error = _error_of(response)
    assert error["type"] == "request_too_large"
    assert response.getheader("connection") == "close"
    conn.close()
    assert api.emu.batches_created == 0


def test_expect_100_continue_over_the_limit_is_refused_without_a_body(api: Api) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", api.emu.port, timeout=10)
    conn.putrequest("POST", "/v1/messages/batches")
    conn.putheader("x-api-key", "k")
    conn.putheader("anthropic-version", "2023-06-01")
    conn.putheader("content-length", str(300 * 1024 * 1024))
    conn.putheader("expect", "100-continue")
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413
    assert _error_of(response)["type"] == "request_too_large"
    conn.close()


def test_chunked_body_over_the_limit_is_counted_while_spooling(
    make_emulator: Callable[..., Emulator], make_api: Callable[..., Api]
) -> None:
    emu = make_emulator(max_body_bytes=1_000_000)
    api = make_api(emu)

    def body() -> Iterator[bytes]:  # no length known up front: requests sends it chunked
        yield b'{"requests":['
        item = b'{"custom_id":"r%d","params":{"model":"claude-sonnet-4-5","max_tokens":5}},'
        for i in range(30_000):
            yield item % i

    r = api.call("POST", "", data=body())
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "request_too_large"
    assert emu.batches_created == 0
    assert not [p for p in __import__("os").listdir(emu.spool_dir) if p.startswith("body-")]


def test_chunked_body_under_the_limit_is_accepted(api: Api, req: Req) -> None:
    items: List[bytes] = [json.dumps(req(f"r{i}")).encode() for i in range(200)]

    def body() -> Iterator[bytes]:
        yield b'{"requests":['
        yield b",".join(items)
        yield b"]}"

    r = api.call("POST", "", data=body())
    assert r.status_code == 200
    assert r.json()["request_counts"]["processing"] == 200
