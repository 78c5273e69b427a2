"""Processing a client can watch: counts that move, and every result exactly once."""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Dict, List

from claudebatch.emulator import Emulator, ManualClock, SystemClock

if TYPE_CHECKING:
    from conftest import Api

Req = Callable[..., Dict[str, Any]]


def test_5000_requests_processing_falls_and_every_result_comes_once_out_of_order(
    make_emulator: Callable[..., Emulator], make_api: Callable[..., Api],
    clock: ManualClock, req: Req,
) -> None:
    api = make_api(make_emulator(rate=500.0))  # 10 s of (manual) time for 5,000
    custom_ids = [f"req-{i:05d}" for i in range(5000)]
    batch = api.create([req(cid, f"Question number {i}?", max_tokens=64)
                        for i, cid in enumerate(custom_ids)])

    seen: List[Dict[str, int]] = []
    while True:
        state = api.retrieve(batch["id"])
        counts = state["request_counts"]
        assert sum(counts.values()) == 5000
        seen.append(counts)
        if state["processing_status"] == "ended":
            break
        clock.advance(1.5)
    processing = [c["processing"] for c in seen]
    assert processing[0] == 5000 and processing[-1] == 0
    assert all(a > b for a, b in zip(processing, processing[1:])), processing
    assert len(processing) >= 6
    assert seen[-1] == {"processing": 0, "succeeded": 5000, "errored": 0, "canceled": 0,
                        "expired": 0}

    lines = api.results(batch["id"], every=25)
    got = [line["custom_id"] for line in lines]
    assert len(got) == 5000
    assert Counter(got) == Counter(custom_ids)  # each exactly once
    assert got != custom_ids  # not the input order
    assert sum(a > b for a, b in zip(got, got[1:])) > 1000  # and not nearly so either
    assert all(line["result"]["type"] == "succeeded" for line in lines)


def test_counts_can_stay_at_processing_until_the_end(
    make_emulator: Callable[..., Emulator], make_api: Callable[..., Api],
    clock: ManualClock, req: Req,
) -> None:
    """``counts="at_end"``: the spec's wording, where other counts are zero until the end."""
    api = make_api(make_emulator(rate=10.0, counts="at_end"))
    batch = api.create([req(f"r{i}") for i in range(20)] + [req("bad", model="nope")])
    clock.advance(1.0)
    middle = api.retrieve(batch["id"])["request_counts"]
    assert middle == {"processing": 21, "succeeded": 0, "errored": 0, "canceled": 0,
                      "expired": 0}
    clock.advance(2.0)
    assert api.retrieve(batch["id"])["request_counts"] == {
        "processing": 0, "succeeded": 20, "errored": 1, "canceled": 0, "expired": 0}


def test_unprocessed_requests_expire_when_the_window_passes(
    make_emulator: Callable[..., Emulator], make_api: Callable[..., Api],
    clock: ManualClock, req: Req,
) -> None:
    api = make_api(make_emulator(rate=10.0, expiry=3.0))  # 3 s window, 10 s of work
    batch = api.create([req(f"r{i}") for i in range(100)])
    clock.advance(2.0)
    assert api.retrieve(batch["id"])["processing_status"] == "in_progress"
    clock.advance(1.0)
    ended = api.retrieve(batch["id"])
    assert ended["processing_status"] == "ended"
    assert ended["ended_at"] == ended["expires_at"]
    assert ended["request_counts"] == {"processing": 0, "succeeded": 30, "errored": 0,
                                       "canceled": 0, "expired": 70}
    kinds = Counter(line["result"]["type"] for line in api.results(ended["id"]))
    assert kinds == {"succeeded": 30, "expired": 70}


def test_counts_sum_to_the_total_through_a_cancel(
    make_emulator: Callable[..., Emulator], make_api: Callable[..., Api],
    clock: ManualClock, req: Req,
) -> None:
    api = make_api(make_emulator(rate=50.0, cancel_delay=2.0))
    batch = api.create([req(f"r{i}") for i in range(200)]
                       + [req(f"bad{i}", max_tokens=-5) for i in range(20)])
    for step in range(12):
        if step == 4:
            api.cancel(batch["id"])
        state = api.retrieve(batch["id"])
        assert sum(state["request_counts"].values()) == 220, state
        clock.advance(0.5)
    final = api.retrieve(batch["id"])
    assert final["processing_status"] == "ended"
    counts = final["request_counts"]
    assert counts["canceled"] > 0 and counts["succeeded"] + counts["errored"] > 0
    kinds = Counter(line["result"]["type"] for line in api.results(batch["id"]))
    assert kinds == {k: v for k, v in counts.items() if v and k != "processing"}


def test_processing_runs_on_the_real_clock_at_the_configured_rate(
    make_emulator: Callable[..., Emulator], make_api: Callable[..., Api], req: Req
) -> None:
    api = make_api(make_emulator(clock=SystemClock(), rate=40.0))
    batch = api.create([req(f"r{i}") for i in range(60)])  # 1.5 s: still running when asked
    assert api.retrieve(batch["id"])["processing_status"] == "in_progress"
    deadline = time.monotonic() + 15
    while api.retrieve(batch["id"])["processing_status"] != "ended":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert len(api.results(batch["id"])) == 60


def test_infinite_rate_ends_as_soon_as_time_moves(
    make_emulator: Callable[..., Emulator], make_api: Callable[..., Api],
    clock: ManualClock, req: Req,
) -> None:
    api = make_api(make_emulator(rate=math.inf))
    batch = api.create([req(f"r{i}") for i in range(10)])
    assert batch["processing_status"] == "in_progress"
    clock.advance(0.001)
    assert api.retrieve(batch["id"])["processing_status"] == "ended"


def test_a_clock_with_only_now_is_accepted(make_emulator: Callable[..., Emulator],
                                           make_api: Callable[..., Api], req: Req) -> None:
    manual = ManualClock(start=1_800_000_000.0)

    class NowOnly:
        def now(self) -> Any:
            return manual.now()

    api = make_api(make_emulator(clock=NowOnly()))
    batch = api.create([req("a")])
    assert batch["created_at"].startswith("2027-01-15T08:00:00")
