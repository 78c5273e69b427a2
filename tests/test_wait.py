"""``wait()``: polls until ended with backoff, calls on_poll, and gives up clearly (fake clock)."""

from __future__ import annotations

from typing import Any, List

import pytest
import responses

from claudebatch import BatchClient, MessageBatch, WaitTimeoutError, hookimpl

KEY = "sk-ant-SECRET-123"
BATCH_URL = "https://api.anthropic.com/v1/messages/batches/b1"
EPOCH = 1_700_000_000.0


class PollRecorder:
    def __init__(self) -> None:
        self.batches: List[MessageBatch] = []
        self.contexts: List[Any] = []

    @hookimpl
    def on_poll(self, batch: MessageBatch, context: Any) -> None:
        self.batches.append(batch)
        self.contexts.append(context)


def polls(mock: responses.RequestsMock, batch_json: Any, in_progress: int,
          end: bool = True) -> None:
    for _ in range(in_progress):
        mock.get(BATCH_URL, json=batch_json("b1", "in_progress"))
    if end:
        mock.get(BATCH_URL, json=batch_json("b1", "ended", succeeded=1))


def test_wait_polls_until_ended_calling_on_poll_each_time(
        clock: Any, mock: responses.RequestsMock, batch_json: Any) -> None:
    recorder = PollRecorder()
    client = BatchClient(api_key=KEY, clock=clock, plugins=[recorder])
    polls(mock, batch_json, 3)
    batch = client.wait("b1", poll_interval=2.0)
    assert batch.ended
    assert batch.request_counts.succeeded == 1
    assert len(mock.calls) == 4
    assert [b.processing_status for b in recorder.batches] == [
        "in_progress", "in_progress", "in_progress", "ended"]
    assert all(ctx is client.context for ctx in recorder.contexts)
    assert clock.sleeps[0] == 2.0  # starts at poll_interval, then grows
    assert clock.sleeps[0] < clock.sleeps[1] < clock.sleeps[2]


def test_an_ended_batch_returns_at_once(clock: Any, client: BatchClient,
                                        mock: responses.RequestsMock, batch_json: Any) -> None:
    polls(mock, batch_json, 0)
    assert client.wait("b1").ended
    assert clock.sleeps == []


def test_poll_delays_are_capped(clock: Any, client: BatchClient, mock: responses.RequestsMock,
                                batch_json: Any) -> None:
    polls(mock, batch_json, 12)
    client.wait("b1", poll_interval=1.0)
    assert len(clock.sleeps) == 12
    assert clock.sleeps == sorted(clock.sleeps)  # never shrinks
    assert clock.sleeps[0] == 1.0
    assert max(clock.sleeps) == clock.sleeps[-1] == clock.sleeps[-2]  # reached the cap
    assert max(clock.sleeps) <= 60.0  # a short first interval stays short


def test_default_schedule_suits_the_real_service(clock: Any, client: BatchClient,
                                                 mock: responses.RequestsMock,
                                                 batch_json: Any) -> None:
    polls(mock, batch_json, 10)
    client.wait("b1")
    assert clock.sleeps[0] == 30.0
    assert 60.0 <= max(clock.sleeps) <= 600.0  # a few minutes at most


def test_client_wide_poll_interval_is_the_default(
        clock: Any, mock: responses.RequestsMock, batch_json: Any) -> None:
    client = BatchClient(api_key=KEY, clock=clock, poll_interval=0.05)
    polls(mock, batch_json, 2)
    client.wait("b1")
    assert clock.sleeps[0] == pytest.approx(0.05)
    assert clock.sleeps[0] < clock.sleeps[1] < 1.0


def test_wait_times_out_with_the_last_state(clock: Any, client: BatchClient,
                                            mock: responses.RequestsMock,
                                            batch_json: Any) -> None:
    mock.get(BATCH_URL, json=batch_json("b1", "in_progress", processing=7))
    with pytest.raises(WaitTimeoutError) as info:
        client.wait("b1", timeout=5.0, poll_interval=1.0)
    assert sum(clock.sleeps) == pytest.approx(5.0)  # slept exactly up to the deadline
    error = info.value
    assert isinstance(error, TimeoutError)
    assert error.batch is not None and error.batch.id == "b1"
    assert "b1" in str(error) and "in_progress" in str(error)


def test_a_zero_timeout_polls_once(clock: Any, client: BatchClient,
                                   mock: responses.RequestsMock, batch_json: Any) -> None:
    mock.get(BATCH_URL, json=batch_json("b1", "in_progress"))
    with pytest.raises(WaitTimeoutError):
        client.wait("b1", timeout=0)
    assert len(mock.calls) == 1
    assert clock.sleeps == []


def test_wait_gives_up_past_expires_at_plus_grace(clock: Any, client: BatchClient,
                                                  mock: responses.RequestsMock,
                                                  batch_json: Any) -> None:
    # Expired 2 hours ago and still in progress: the service should have ended it.
    mock.get(BATCH_URL, json=batch_json("b1", "in_progress", created_at=EPOCH - 86400 - 7200,
                                        expires_at=EPOCH - 7200))
    with pytest.raises(WaitTimeoutError, match="expir"):
        client.wait("b1")
    assert clock.sleeps == []


def test_wait_never_sleeps_past_expires_at_plus_grace(clock: Any, client: BatchClient,
                                                      mock: responses.RequestsMock,
                                                      batch_json: Any) -> None:
    # Expired 59 minutes ago: one minute of grace is left.
    mock.get(BATCH_URL, json=batch_json("b1", "in_progress", created_at=EPOCH - 90000,
                                        expires_at=EPOCH - 3540))
    with pytest.raises(WaitTimeoutError):
        client.wait("b1", poll_interval=30.0)
    assert sum(clock.sleeps) == pytest.approx(60.0)


def test_a_long_timeout_still_stops_at_expires_at_plus_grace(
        clock: Any, client: BatchClient, mock: responses.RequestsMock, batch_json: Any) -> None:
    mock.get(BATCH_URL, json=batch_json("b1", "in_progress", created_at=EPOCH - 90000,
                                        expires_at=EPOCH - 3540))
    with pytest.raises(WaitTimeoutError):
        client.wait("b1", timeout=3 * 3600, poll_interval=30.0)
    assert sum(clock.sleeps) <= 60.0


@pytest.mark.parametrize("bad", [0, -1.0])
def test_a_non_positive_poll_interval_is_refused(client: BatchClient, bad: float) -> None:
    with pytest.raises(ValueError):
        client.wait("b1", poll_interval=bad)


def test_a_plugin_poll_delay_replaces_the_schedule(clock: Any, mock: responses.RequestsMock,
                                                   batch_json: Any) -> None:
    class Steady:
        def __init__(self) -> None:
            self.attempts: List[int] = []

        @hookimpl
        def poll_delay(self, batch: MessageBatch, attempt: int, first_interval: float) -> float:
            self.attempts.append(attempt)
            return 7.0

    steady = Steady()
    client = BatchClient(api_key=KEY, clock=clock, plugins=[steady])
    polls(mock, batch_json, 3)
    client.wait("b1", poll_interval=1.0)
    assert clock.sleeps == [7.0, 7.0, 7.0]
    assert steady.attempts == [0, 1, 2]


def test_wait_rides_out_a_transient_server_error(clock: Any, client: BatchClient,
                                                 mock: responses.RequestsMock, batch_json: Any,
                                                 error_body: Any) -> None:
    mock.get(BATCH_URL, json=batch_json("b1", "in_progress"))
    mock.get(BATCH_URL, status=529, json=error_body("overloaded_error"))
    mock.get(BATCH_URL, json=batch_json("b1", "ended"))
    assert client.wait("b1", poll_interval=1.0).ended
    assert len(mock.calls) == 3
