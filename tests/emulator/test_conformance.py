"""Every kind of body the emulator sends, validated against the official OpenAPI spec.

The ``api`` fixture validates each body as it arrives; these tests make sure every
endpoint (and its ``?beta=true`` twin), every result type and every error kind is
actually produced at least once.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Dict

import requests

from claudebatch.emulator import Emulator, Faults, ManualClock

if TYPE_CHECKING:
    from conftest import Api


def test_all_endpoints_and_all_result_types_match_the_spec(
    make_emulator: Callable[..., Emulator], make_api: Callable[..., Api],
    clock: ManualClock, req: Callable[..., Dict[str, Any]],
) -> None:
    emu = make_emulator(rate=10.0, expiry=60.0, faults=Faults(errored=0.3))
    api = make_api(emu)
    requests_ = [req(f"ok-{i}") for i in range(20)]
    requests_.append(req("unknown-model", model="not-a-model"))
    requests_.append(req("bad-max-tokens", max_tokens=-1))
    requests_.append(req("tool", tools=[{"name": "get_weather", "input_schema": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
        tool_choice={"type": "tool", "name": "get_weather"}))
    requests_.append(req("thinking", max_tokens=3000,
                         thinking={"type": "enabled", "budget_tokens": 1024}))
    requests_.append(req("cut", max_tokens=3))
    done = api.create(requests_)                       # succeeded + errored
    canceled = api.create([req(f"c-{i}") for i in range(50)])
    expired = api.create([req(f"e-{i}") for i in range(1000)])  # 100 s of work, 60 s window
    clock.advance(1.0)
    api.cancel(canceled["id"])                           # canceling...
    assert api.retrieve(canceled["id"])["processing_status"] == "canceling"
    clock.advance(100.0)                                 # ...then all three have ended

    types: Counter[str] = Counter()
    for batch in (done, canceled, expired):
        ended = api.retrieve(batch["id"])
        assert ended["processing_status"] == "ended"
        for line in api.results(batch["id"]):
            types[line["result"]["type"]] += 1
    assert set(types) == {"succeeded", "errored", "canceled", "expired"}
    assert api.retrieve(expired["id"])["request_counts"]["expired"] > 0

    page = api.list(limit=2)
    assert len(page["data"]) == 2 and page["has_more"]
    api.list(after_id=page["last_id"])
    api.delete(done["id"])


def test_beta_twins_match_the_spec(api: Api, clock: ManualClock,
                                   req: Callable[..., Dict[str, Any]]) -> None:
    batch = api.create([req("a"), req("b")], beta=True)
    assert api.call("GET", f"/{batch['id']}", kind="id", params={"beta": "true"}).ok
    assert api.call("GET", "", params={"beta": "true", "limit": 5}).ok
    assert api.call("POST", f"/{batch['id']}/cancel", kind="cancel", params={"beta": "true"}).ok
    clock.advance(60)
    r = api.session.get(api.url(f"/{batch['id']}/results"), params={"beta": "true"})
    assert r.status_code == 200
    for line in r.content.splitlines():
        api.validate(json.loads(line), "MessageBatchIndividualResponse")
    assert api.call("DELETE", f"/{batch['id']}", kind="id", params={"beta": "true"}).ok


def test_every_error_kind_matches_the_spec(
    make_emulator: Callable[..., Emulator], make_api: Callable[..., Api],
    req: Callable[..., Dict[str, Any]],
) -> None:
    emu = make_emulator(api_key="right", max_body_bytes=10_000)
    api = make_api(emu, api_key="right")
    seen = set()

    def expect(response: requests.Response, status: int, error_type: str) -> None:
        assert response.status_code == status, response.text
        body = api.check_error(response)
        assert body["error"]["type"] == error_type
        seen.add(error_type)

    expect(api.call("GET", "/msgbatch_01missing", kind="id"), 404, "not_found_error")
    expect(api.call("POST", "", json={"requests": []}), 400, "invalid_request_error")
    expect(make_api(emu, api_key="wrong").call("GET", ""), 401, "authentication_error")
    expect(api.call("POST", "", data=b"x" * 20_000), 413, "request_too_large")
    for fault, status, error_type in (("rate_limit", 429, "rate_limit_error"),
                                      ("server_error", 500, "api_error"),
                                      ("overloaded", 529, "overloaded_error")):
        emu.inject(fault)
        expect(api.call("GET", ""), status, error_type)
    assert seen == {"not_found_error", "invalid_request_error", "authentication_error",
                    "request_too_large", "rate_limit_error", "api_error", "overloaded_error"}
