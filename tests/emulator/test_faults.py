"""Each injected fault, as a raw HTTP client sees it."""

from __future__ import annotations

import http.client
import json
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Dict, List

import pytest
import requests

from claudebatch.emulator import Emulator, Faults, ManualClock

if TYPE_CHECKING:
    from conftest import Api

Req = Callable[..., Dict[str, Any]]


def test_rate_limit_answers_429_with_retry_after_and_has_no_effect(api: Api, req: Req) -> None:
    api.emu.inject("rate_limit", retry_after=7)
    r = api.call("POST", "", json={"requests": [req("a")]})
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert api.emu.batches_created == 0
    assert api.call("POST", "", json={"requests": [req("a")]}).status_code == 200
    assert api.emu.faults_fired == {"rate_limit": 1}


@pytest.mark.parametrize("fault, status, error_type", [
    ("server_error", 500, "api_error"), ("overloaded", 529, "overloaded_error")])
def test_server_side_errors(api: Api, fault: str, status: int, error_type: str) -> None:
    api.emu.inject(fault, times=2)
    for _ in range(2):
        r = api.call("GET", "")
        assert r.status_code == status and r.json()["error"]["type"] == error_type
    assert api.call("GET", "").status_code == 200
    assert [rec.faults for rec in api.emu.requests_to("list")] == [(fault,), (fault,), ()]


def test_injected_fault_can_target_one_endpoint(api: Api, req: Req) -> None:
    batch = api.create([req("a")])
    api.emu.inject("server_error", times=2, endpoint="retrieve")
    assert api.call("GET", "").status_code == 200
    assert api.call("GET", f"/{batch['id']}", kind="id").status_code == 500
    assert api.call("GET", f"/{batch['id']}", kind="id").status_code == 500
    assert api.call("GET", f"/{batch['id']}", kind="id").status_code == 200


def test_slow_response(api: Api) -> None:
    api.emu.inject("slow", seconds=0.4)
    started = time.monotonic()
    assert api.call("GET", "").status_code == 200
    assert time.monotonic() - started >= 0.4
    api.emu.inject("slow", seconds=1.0)
    with pytest.raises(requests.ReadTimeout):
        api.session.get(api.url(), timeout=0.2)


def test_results_stream_dropped_part_way(make_emulator: Callable[..., Emulator],
                                         make_api: Callable[..., Api], clock: ManualClock,
                                         req: Req) -> None:
    api = make_api(make_emulator(answer_tokens=(300, 300)))
    batch = api.create([req(f"r{i}", f"q{i}") for i in range(400)])  # ~500 KB of results
    clock.advance(60)
    api.emu.inject("drop_results", after=0.5)
    url = api.url(f"/{batch['id']}/results")
    received: List[bytes] = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        with api.session.get(url, stream=True, timeout=10) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                received.append(line)
    assert len(received) == 200  # half the results, then half a line, then the cut
    assert all(json.loads(line)["custom_id"] for line in received)
    # the next download is whole
    assert len(api.results(batch["id"])) == 400
    assert api.emu.faults_fired == {"drop_results": 1}
    assert api.emu.requests_to("results")[0].status == 200


def test_results_stream_dropped_seen_by_http_client(api: Api, clock: ManualClock,
                                                    req: Req) -> None:
    batch = api.create([req(f"r{i}") for i in range(50)])
    clock.advance(60)
    api.emu.inject("drop_results", after=0.2)
    conn = http.client.HTTPConnection("127.0.0.1", api.emu.port, timeout=10)
    conn.request("GET", f"/v1/messages/batches/{batch['id']}/results",
                 headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})
    response = conn.getresponse()
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    lines = cut.value.partial.split(b"\n")
    assert len(lines) == 11  # 10 whole lines, then a piece of the 11th
    assert all(json.loads(line) for line in lines[:10])
    assert lines[10] and not lines[10].endswith(b"}")
    conn.close()


def test_create_that_makes_the_batch_then_drops_the_connection(api: Api, req: Req) -> None:
    api.emu.inject("drop_create")
    with pytest.raises(requests.ConnectionError):
        api.session.post(api.url(), json={"requests": [req("a"), req("b"), req("c")]},
                         timeout=10)
    assert api.emu.batches_created == 1
    (made,) = api.list()["data"]  # a client can find it by listing
    assert made["id"] == api.emu.batch_ids[0]
    assert sum(made["request_counts"].values()) == 3
    assert api.emu.requests_to("create")[0].status is None
    assert api.emu.requests_to("create")[0].batch_id == made["id"]


def test_per_request_errored_results_of_retryable_types(
    make_emulator: Callable[..., Emulator], make_api: Callable[..., Api],
    clock: ManualClock, req: Req,
) -> None:
    api = make_api(make_emulator(faults=Faults(errored=0.2)))
    batch = api.create([req(f"r{i}") for i in range(1000)])
    clock.advance(60)
    counts = api.retrieve(batch["id"])["request_counts"]
    assert 140 < counts["errored"] < 260
    kinds: Counter[str] = Counter()
    for line in api.results(batch["id"], every=10):
        if line["result"]["type"] == "errored":
            kinds[line["result"]["error"]["error"]["type"]] += 1
    assert set(kinds) == {"api_error", "overloaded_error"}
    assert sum(kinds.values()) == counts["errored"]


def test_rates_are_seeded_and_reproducible(make_emulator: Callable[..., Emulator],
                                           make_api: Callable[..., Api]) -> None:
    faults = Faults(rate_limit=0.2, server_error=0.1, overloaded=0.1, retry_after=0)
    runs = []
    for _ in range(2):
        api = make_api(make_emulator(seed=99, faults=faults))
        runs.append([api.call("GET", "").status_code for _ in range(60)])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 429, 500, 529}


def test_rates_can_be_limited_to_some_endpoints_and_changed_at_runtime(
    api: Api, req: Req
) -> None:
    api.emu.faults = Faults(rate_limit=1.0, retry_after=0, endpoints=frozenset({"create"}))
    assert api.call("GET", "").status_code == 200
    r = api.call("POST", "", json={"requests": [req("a")]})
    assert r.status_code == 429 and r.headers["retry-after"] == "0"
    api.emu.faults = Faults()
    assert api.call("POST", "", json={"requests": [req("a")]}).status_code == 200


def test_clear_faults_forgets_queued_ones(api: Api) -> None:
    api.emu.inject("server_error", times=5)
    api.emu.clear_faults()
    assert api.call("GET", "").status_code == 200


@pytest.mark.parametrize("args, kwargs", [
    (("explode",), {}),
    (("drop_results",), {"endpoint": "create"}),
    (("server_error",), {"endpoint": "nowhere"}),
    (("rate_limit",), {"wait": 3}),
    (("rate_limit", 0), {}),
])
def test_bad_injections_are_refused(api: Api, args: Any, kwargs: Any) -> None:
    with pytest.raises(ValueError):
        api.emu.inject(*args, **kwargs)


def test_bad_rates_are_refused() -> None:
    with pytest.raises(ValueError):
        Faults(rate_limit=1.5)
    with pytest.raises(ValueError):
        Faults(rate_limit=0.6, overloaded=0.6)
    with pytest.raises(ValueError):
        Faults(endpoints=frozenset({"upload"}))
