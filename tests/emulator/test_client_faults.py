"""``claudebatch.BatchClient`` rides through the emulator's faults with one batch made.

The emulator and the client share one :class:`ManualClock`: the client's retry and poll
sleeps advance it (recorded, not slept), and that is what moves the batch along.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

import pytest

from claudebatch.emulator import Emulator, ManualClock

try:
    from claudebatch import BatchClient
except ImportError:  # the core client is not in this tree yet
    pytest.skip("claudebatch.BatchClient is not importable", allow_module_level=True)

Req = Callable[..., Dict[str, Any]]


@pytest.fixture
def client_emu(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(api_key="k", rate=50.0)


@pytest.fixture
def client(client_emu: Emulator, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CLAUDEBATCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    return BatchClient(api_key="k", base_url=client_emu.url, max_retries=5, clock=clock)


def statuses(emu: Emulator, endpoint: str) -> List[Any]:
    return [r.status for r in emu.requests_to(endpoint)]


def test_create_retries_429_5xx_529_and_makes_exactly_one_batch(
    client: Any, client_emu: Emulator, clock: ManualClock, req: Req
) -> None:
    client_emu.inject("rate_limit", retry_after=3)
    client_emu.inject("server_error")
    client_emu.inject("overloaded")
    batch = client.create([req("a"), req("b")])
    assert client_emu.batches_created == 1 and client_emu.batch_ids == [batch.id]
    assert statuses(client_emu, "create") == [429, 500, 529, 200]
    assert 3 in clock.sleeps  # the retry-after was honoured
    assert len(clock.sleeps) == 3


def test_dropped_create_is_recovered_without_a_second_batch(
    client: Any, client_emu: Emulator, req: Req
) -> None:
    client_emu.inject("drop_create")
    batch = client.create([req("a"), req("b"), req("c")])
    assert client_emu.batches_created == 1
    assert batch.id == client_emu.batch_ids[0]
    assert batch.request_counts.total == 3
    assert statuses(client_emu, "create") == [None]  # one POST only: it was found by listing
    assert client_emu.requests_to("list")


def test_dropped_create_among_other_batches_finds_its_own(
    client: Any, client_emu: Emulator, clock: ManualClock, req: Req
) -> None:
    earlier = client.create([req("x")])
    clock.advance(5)
    client_emu.inject("drop_create")
    batch = client.create([req("a"), req("b")])
    assert batch.id != earlier.id and batch.id == client_emu.batch_ids[-1]
    assert client_emu.batches_created == 2


def test_every_endpoint_retries_through_faults(
    client: Any, client_emu: Emulator, clock: ManualClock, req: Req
) -> None:
    batch = client.create([req(f"r{i}", f"question {i}") for i in range(100)])

    client_emu.inject("overloaded", endpoint="retrieve")
    assert client.retrieve(batch.id).id == batch.id

    client_emu.inject("rate_limit", endpoint="list", retry_after=0)
    assert [b.id for b in client.list()] == [batch.id]

    client_emu.inject("server_error", times=2, endpoint="retrieve")
    ended = client.wait(batch.id, poll_interval=0.01)
    assert ended.processing_status == "ended"
    assert ended.request_counts.succeeded == 100

    client_emu.inject("server_error", endpoint="results")
    results = list(client.results(batch.id))
    assert sorted(r.custom_id for r in results) == sorted(f"r{i}" for i in range(100))
    assert all(r.result.type == "succeeded" for r in results)

    client_emu.inject("overloaded", endpoint="delete")
    assert client.delete(batch.id).id == batch.id
    assert client_emu.batches_created == 1


def test_wait_watches_processing_fall(client: Any, client_emu: Emulator, req: Req) -> None:
    batch = client.create([req(f"r{i}") for i in range(500)])  # 10 s at 50/s
    seen: List[int] = []

    class Watch:
        from claudebatch import hookimpl

        @hookimpl
        def on_poll(self, batch: Any, context: Any) -> None:
            seen.append(batch.request_counts.processing)

    client.plugin_manager.register(Watch())
    client.wait(batch.id, poll_interval=0.5)
    assert seen[0] > seen[-1] == 0
    assert all(a >= b for a, b in zip(seen, seen[1:]))


def test_cancel_then_delete(client: Any, client_emu: Emulator, clock: ManualClock,
                            req: Req) -> None:
    batch = client.create([req(f"r{i}") for i in range(100)])
    clock.advance(1)
    client_emu.inject("rate_limit", endpoint="cancel", retry_after=0)
    canceling = client.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    ended = client.wait(batch.id, poll_interval=0.01)
    assert ended.request_counts.canceled == 50
    kinds = [r.result.type for r in client.results(batch.id)]
    assert kinds.count("canceled") == 50 and kinds.count("succeeded") == 50
    client.delete(batch.id)
    assert list(client.list()) == []


def test_dropped_results_stream_raises_a_clear_error(
    client: Any, client_emu: Emulator, clock: ManualClock, req: Req
) -> None:
    from claudebatch import ClaudeBatchError

    batch = client.create([req(f"r{i}") for i in range(50)])
    clock.advance(10)
    client_emu.inject("drop_results")
    with pytest.raises(ClaudeBatchError):
        list(client.results(batch.id))
    assert len(list(client.results(batch.id))) == 50  # the next download is whole
