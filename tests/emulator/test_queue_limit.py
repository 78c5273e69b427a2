"""The processing-queue limit (``queue_limit``), as a raw HTTP client sees it.

The service rate-limits the batch requests in a workspace's processing queue: a request
counts from its batch's create until it is processed. A create that would go over is
answered 429 ``rate_limit_error`` with a ``retry-after``, and makes nothing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Dict, List

import pytest

from claudebatch.emulator import Emulator, ManualClock
from claudebatch.emulator.cli import build_parser, main

if TYPE_CHECKING:
    from conftest import Api

Req = Callable[..., Dict[str, Any]]


def batch_of(req: Req, n: int, prefix: str) -> List[Dict[str, Any]]:
    return [req(f"{prefix}{i}") for i in range(n)]


@pytest.fixture
def limited(make_emulator: Callable[..., Emulator], make_api: Callable[..., Api]) -> Api:
    """30 requests may wait; each batch processes 10 requests a second."""
    return make_api(make_emulator(rate=10.0, queue_limit=30))


def test_a_create_over_the_limit_is_429_rate_limit_error_and_makes_nothing(
        limited: Api, req: Req) -> None:
    limited.create(batch_of(req, 20, "a"))
    r = limited.call("POST", "", json={"requests": batch_of(req, 20, "b")})  # spec-checked
    assert r.status_code == 429
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert "processing queue" in body["error"]["message"]
    assert "rate limit of 30 (20 queued, 20 in this batch)" in body["error"]["message"]
    assert body["request_id"] == r.headers["request-id"]
    assert r.headers["retry-after"] == "1"  # 10 of the 20 are processed within a second
    assert limited.emu.batches_created == 1 and limited.emu.queue_refusals == 1
    assert limited.emu.peak_in_flight == 20


def test_room_comes_as_requests_are_processed_not_when_batches_end(
        limited: Api, req: Req, clock: ManualClock) -> None:
    first = limited.create(batch_of(req, 20, "a"))
    clock.advance(1.0)  # 10 processed; the batch is still in progress
    assert limited.retrieve(first["id"])["processing_status"] == "in_progress"
    assert limited.emu.in_flight == 10
    limited.create(batch_of(req, 20, "b"))  # 10 + 20 = 30: at the limit, not over
    assert limited.emu.peak_in_flight == 30 and limited.emu.in_flight == 30
    r = limited.call("POST", "", json={"requests": [req("c")]})
    assert r.status_code == 429
    clock.advance(2.0)  # both ended
    assert limited.emu.in_flight == 0
    limited.create(batch_of(req, 30, "d"))
    assert limited.emu.peak_in_flight == 30


def test_the_retry_after_says_when_the_queue_will_have_room(
        limited: Api, req: Req, clock: ManualClock) -> None:
    limited.create(batch_of(req, 30, "a"))  # done in 3 s
    for wanted, size in ((1, 10), (2, 20), (3, 30)):
        r = limited.call("POST", "", json={"requests": batch_of(req, size, "b")})
        assert r.status_code == 429 and r.headers["retry-after"] == str(wanted)
    clock.advance(2.0)
    assert limited.call("POST", "", json={"requests": batch_of(req, 20, "b")}).status_code \
        == 200


def test_a_canceling_batch_holds_its_unprocessed_requests_until_it_ends(
        make_emulator: Callable[..., Emulator], make_api: Callable[..., Api], req: Req,
        clock: ManualClock) -> None:
    api = make_api(make_emulator(rate=10.0, queue_limit=30, cancel_delay=5.0))
    batch = api.create(batch_of(req, 30, "a"))
    clock.advance(1.0)
    api.cancel(batch["id"])  # 10 processed, 20 will be canceled
    clock.advance(2.0)
    assert api.emu.in_flight == 20
    assert api.call("POST", "", json={"requests": batch_of(req, 11, "b")}).status_code == 429
    clock.advance(3.0)  # the cancel is complete
    assert api.retrieve(batch["id"])["processing_status"] == "ended"
    assert api.emu.in_flight == 0
    api.create(batch_of(req, 30, "b"))


def test_a_batch_larger_than_the_whole_limit_is_told_so(limited: Api, req: Req) -> None:
    r = limited.call("POST", "", json={"requests": batch_of(req, 31, "a")})
    assert r.status_code == 429
    assert "This batch alone has 31 requests, more than the limit of 30" in \
        r.json()["error"]["message"]
    assert limited.emu.batches_created == 0


def test_an_invalid_body_is_400_before_the_queue_is_asked(limited: Api, req: Req) -> None:
    limited.create(batch_of(req, 30, "a"))
    r = limited.call("POST", "", json={"requests": []})
    assert r.status_code == 400
    assert limited.emu.queue_refusals == 0


def test_without_a_limit_the_peak_is_still_measured(api: Api, req: Req,
                                                    clock: ManualClock) -> None:
    api.create(batch_of(req, 50, "a"))  # the fixture's emulator: 100 requests a second
    api.create(batch_of(req, 70, "b"))
    clock.advance(0.25)  # 25 of each processed
    api.create(batch_of(req, 5, "c"))
    assert api.emu.peak_in_flight == 120 and api.emu.in_flight == 25 + 45 + 5
    assert api.emu.queue_refusals == 0


def test_concurrent_creates_never_take_the_queue_over_the_limit(
        make_emulator: Callable[..., Emulator], req: Req) -> None:
    import concurrent.futures

    import requests

    emu = make_emulator(rate=math.inf, queue_limit=50)  # nothing ends: the clock stands still
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}

    def create(n: int) -> int:
        body = {"requests": batch_of(req, 10, f"t{n}-")}
        return requests.post(f"{emu.url}/v1/messages/batches", json=body, headers=headers,
                             timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(create, range(16)))
    assert statuses.count(200) == 5 and statuses.count(429) == 11
    assert emu.peak_in_flight == 50 and emu.batches_created == 5


def test_cli_queue_limit() -> None:
    assert build_parser().parse_args(["--queue-limit", "200000"]).queue_limit == 200_000
    assert build_parser().parse_args([]).queue_limit is None


def test_cli_queue_limit_below_one_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--queue-limit", "0", "--port", "0"]) == 2
    assert "queue_limit must be at least 1" in capsys.readouterr().err
