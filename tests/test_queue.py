"""Queue-aware jobs: ``max_in_flight``, and creates the service refuses for a full queue.

The emulator runs on loopback on the same manual clock as the client, so waits are
instant and exact; the unit tests mock HTTP with ``responses`` on a fake clock.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import responses

from claudebatch import (
    BatchClient,
    ConfigurationError,
    JobContext,
    PendingBatch,
    QueueFullError,
    RateLimitError,
    hookimpl,
)
from claudebatch._progress import JsonProgress, Progress
from claudebatch.cli import main as cli_main
from claudebatch.emulator import Emulator, ManualClock

from .conftest import API_KEY, BASE_URL, BATCHES_URL, FakeClock

MODEL = "claude-haiku-4-5"


def rows(n: int) -> List[Dict[str, Any]]:
    return [{"custom_id": f"r-{i:03d}", "params": {
        "model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": f"q {i}"}]}}
        for i in range(n)]


def ids_in(path: str) -> List[str]:
    with open(path) as handle:
        return [json.loads(line)["custom_id"] for line in handle]


class Recorder:
    """The submission hooks as they come, each with its batch's index."""

    def __init__(self) -> None:
        self.calls: List[str] = []
        self.waits: List[float] = []
        self.indices: Dict[str, int] = {}  # batch id -> index in its pass

    @hookimpl
    def before_submit(self, requests: PendingBatch) -> None:
        self.calls.append(f"before_submit {requests.index}")

    @hookimpl
    def on_submit_error(self, requests: PendingBatch, error: BaseException,
                        made_nothing: bool) -> None:
        kind = type(error).__name__
        self.calls.append(f"on_submit_error {requests.index} {kind} made_nothing={made_nothing}")

    @hookimpl
    def on_queue_wait(self, requests: PendingBatch, error: BaseException, delay: float,
                      context: JobContext) -> None:
        assert isinstance(error, RateLimitError)
        self.waits.append(delay)
        self.calls.append(f"on_queue_wait {requests.index}")

    @hookimpl
    def after_submit(self, batch: Any, requests: PendingBatch) -> None:
        self.indices[batch.id] = requests.index
        self.calls.append(f"after_submit {requests.index}")

    @hookimpl
    def on_batch_end(self, batch: Any) -> None:
        self.calls.append(f"on_batch_end {self.indices[batch.id]}")

    @hookimpl
    def on_poll(self, batch: Any, context: Any) -> None:
        if isinstance(context, JobContext):
            self.calls.append(f"on_poll {self.indices[batch.id]}")


def emulated_client(emu: Emulator, clock: ManualClock, *plugins: Any,
                    **kwargs: Any) -> BatchClient:
    return BatchClient(api_key="k", base_url=emu.url, clock=clock, poll_interval=1.0,
                       plugins=plugins, load_entry_points=False, **kwargs)


# --- max_in_flight --------------------------------------------------------------------

def test_a_job_never_has_more_than_max_in_flight_requests_queued(tmp_path: Path) -> None:
    clock = ManualClock()
    recorder = Recorder()
    with Emulator(rate=10.0, seed=1, clock=clock) as emu:  # no limit of the service's
        report = emulated_client(emu, clock, recorder).run(
            rows(200), output=str(tmp_path / "o.jsonl"), max_batch_requests=20,
            max_in_flight=45)
        peak, created = emu.peak_in_flight, emu.batches_created
    assert report.complete and report.counts == {"succeeded": 200}
    assert sorted(ids_in(report.output)) == [r["custom_id"] for r in rows(200)]
    assert created == 10
    assert 20 < peak <= 45  # two batches at once, never a third
    # batches go as earlier ones end: the fourth is sent after the first has ended
    calls = recorder.calls
    assert calls.index("on_batch_end 0") < calls.index("after_submit 3")


def test_max_in_flight_below_the_batch_size_cuts_batches_no_larger(tmp_path: Path) -> None:
    clock = ManualClock()
    with Emulator(rate=10.0, seed=1, clock=clock) as emu:
        client = emulated_client(emu, clock)
        assert [count for count, _ in client.job(rows(40), max_in_flight=15).dry_run().batches] \
            == [15, 15, 10]
        report = client.run(rows(40), output=str(tmp_path / "o.jsonl"), max_in_flight=15)
        assert emu.peak_in_flight <= 15
    assert [b.request_count for b in report.batches] == [15, 15, 10]
    assert report.complete


def test_one_batch_at_a_time_the_next_goes_once_the_last_ended_before_it_is_read(
        tmp_path: Path) -> None:
    clock = ManualClock()
    recorder = Recorder()
    with Emulator(rate=10.0, seed=1, clock=clock) as emu:
        emulated_client(emu, clock, recorder).run(
            rows(60), output=str(tmp_path / "o.jsonl"), max_batch_requests=20,
            max_in_flight=20)
        assert emu.peak_in_flight == 20
    assert [c for c in recorder.calls if c.split()[0] in ("after_submit", "on_batch_end")] \
        == ["after_submit 0", "after_submit 1", "on_batch_end 0", "after_submit 2",
            "on_batch_end 1", "on_batch_end 2"]
    # each is sent right after the poll that saw the one before it ended
    for index in (1, 2):
        before = recorder.calls[recorder.calls.index(f"after_submit {index}") - 2]
        assert before == f"on_poll {index - 1}"


@pytest.mark.parametrize("value", [-1, True, 2.5, "10"])
def test_max_in_flight_must_be_a_count(value: Any) -> None:
    client = BatchClient(api_key="k", load_entry_points=False)
    with pytest.raises(ConfigurationError, match="max_in_flight"):
        client.job(rows(1), max_in_flight=value)


def test_queue_patience_must_be_seconds() -> None:
    client = BatchClient(api_key="k", load_entry_points=False)
    with pytest.raises(ConfigurationError, match="queue_patience"):
        client.job(rows(1), queue_patience=-1)


def test_max_in_flight_is_not_an_option_a_store_fingerprints() -> None:
    client = BatchClient(api_key="k", load_entry_points=False)
    one = client.job(rows(1), max_in_flight=100_000, name="a").context.options
    other = client.job(rows(1), max_in_flight=300_000, name="a").context.options
    assert one == other  # a resumed job may pace itself otherwise
    smaller = client.job(rows(1), max_in_flight=5_000, name="a").context.options
    assert smaller["max_batch_requests"] == 5_000  # but a smaller cut is another job


# --- 429 on create: the service's queue is full ------------------------------------------

def test_a_job_waits_out_the_service_429s_without_a_limit_of_its_own(tmp_path: Path) -> None:
    clock = ManualClock()
    recorder = Recorder()
    with Emulator(rate=10.0, seed=1, clock=clock, queue_limit=50) as emu:
        report = emulated_client(emu, clock, recorder, max_retries=0).run(
            rows(200), output=str(tmp_path / "o.jsonl"), max_batch_requests=20,
            max_in_flight=0)
        refused = [r for r in emu.requests_to("create") if r.status == 429]
        assert emu.batches_created == 10 and emu.peak_in_flight <= 50
    assert report.complete and report.counts == {"succeeded": 200}
    assert sorted(ids_in(report.output)) == [r["custom_id"] for r in rows(200)]
    assert refused and len(recorder.waits) == len(refused)  # not bounded by max_retries=0
    # a refused batch waits while the job polls and collects its others
    calls = recorder.calls
    waits = [i for i, c in enumerate(calls) if c.startswith("on_queue_wait")]
    assert any(any(c.startswith("on_poll") for c in calls[i:calls.index(
        f"after_submit {calls[i].split()[-1]}")]) for i in waits)
    assert any(c.startswith("on_batch_end") for c in calls[:waits[-1]])
    assert calls.index("on_batch_end 0") < calls.index("after_submit 9")


def test_a_429_on_create_waits_its_retry_after_then_sends_again(
        clock: FakeClock, tmp_path: Path, batch_json: Any, result_line: Any,
        error_body: Any, make_requests: Any) -> None:
    recorder = Recorder()
    client = BatchClient(api_key=API_KEY, base_url=BASE_URL, clock=clock, max_retries=0,
                         plugins=[recorder], load_entry_points=False)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BATCHES_URL, status=429, headers={"retry-after": "7"},
                 json=error_body("rate_limit_error", "queue full"))
        mock.add(responses.POST, BATCHES_URL, json=batch_json("msgbatch_01", processing=2))
        mock.add(responses.GET, f"{BATCHES_URL}/msgbatch_01",
                 json=batch_json("msgbatch_01", "ended", succeeded=2))
        mock.add(responses.GET, f"{BATCHES_URL}/msgbatch_01/results",
                 body=result_line("req-0") + result_line("req-1"))
        report = client.run(make_requests(2), output=str(tmp_path / "o.jsonl"))
    assert report.complete
    assert clock.sleeps == [7.0, 30.0]  # the retry-after, exactly; then the first poll
    assert recorder.waits == [7.0]
    assert recorder.calls == [
        "before_submit 0", "on_submit_error 0 RateLimitError made_nothing=True",
        "on_queue_wait 0", "before_submit 0", "after_submit 0", "on_poll 0",
        "on_batch_end 0"]


def test_without_a_retry_after_the_wait_backs_off(
        clock: FakeClock, tmp_path: Path, batch_json: Any, result_line: Any,
        error_body: Any, make_requests: Any) -> None:
    client = BatchClient(api_key=API_KEY, base_url=BASE_URL, clock=clock, max_retries=0,
                         load_entry_points=False)
    with responses.RequestsMock() as mock:
        for _ in range(3):
            mock.add(responses.POST, BATCHES_URL, status=429,
                     json=error_body("rate_limit_error", "queue full"))
        mock.add(responses.POST, BATCHES_URL, json=batch_json("msgbatch_01", processing=1))
        mock.add(responses.GET, f"{BATCHES_URL}/msgbatch_01",
                 json=batch_json("msgbatch_01", "ended", succeeded=1))
        mock.add(responses.GET, f"{BATCHES_URL}/msgbatch_01/results",
                 body=result_line("req-0"))
        client.run(make_requests(1), output=str(tmp_path / "o.jsonl"))
    assert len(clock.sleeps) == 4 and clock.sleeps[3] == 30.0  # then the first poll
    for waited, full in zip(clock.sleeps, (5.0, 10.0, 20.0)):
        assert 0.75 * full <= waited <= full  # jitter only shortens


def test_the_queue_wait_policy() -> None:
    from claudebatch.policies import MAX_QUEUE_RETRY_AFTER, queue_retry_delay

    assert queue_retry_delay(3, 42.0) == 42.0  # the service's word, whatever the attempt
    assert queue_retry_delay(0, 7200.0) == MAX_QUEUE_RETRY_AFTER == 3600.0
    assert 3.75 <= queue_retry_delay(0, None) <= 5.0
    assert 3.75 <= queue_retry_delay(0, -1.0) <= 5.0  # a date in the past: back off
    assert 225.0 <= queue_retry_delay(50, None) <= 300.0


def test_past_its_patience_with_nothing_in_flight_the_job_gives_up_clearly(
        clock: FakeClock, tmp_path: Path, error_body: Any, make_requests: Any) -> None:
    recorder = Recorder()
    client = BatchClient(api_key=API_KEY, base_url=BASE_URL, clock=clock, max_retries=0,
                         plugins=[recorder], load_entry_points=False)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BATCHES_URL, status=429, headers={"retry-after": "60"},
                 json=error_body("rate_limit_error", "queue full"))
        with pytest.raises(QueueFullError) as raised:
            client.run(make_requests(3), output=str(tmp_path / "o.jsonl"),
                       queue_patience=150)
        assert len(mock.calls) == 4  # at 0, 60, 120 and 150 s
    assert clock.sleeps == [60.0, 60.0, 30.0]
    text = str(raised.value)
    assert "refused for 150 s with none of the job's batches in flight" in text
    assert "queue full" in text and "--queue-patience" in text
    assert isinstance(raised.value.error, RateLimitError)
    assert recorder.calls.count("on_queue_wait 0") == 3
    assert not any(c.startswith("after_submit") for c in recorder.calls)


def test_the_spend_cap_429_is_not_waited_out(
        clock: FakeClock, tmp_path: Path, make_requests: Any) -> None:
    recorder = Recorder()
    client = BatchClient(api_key=API_KEY, base_url=BASE_URL, clock=clock, max_retries=0,
                         plugins=[recorder], load_entry_points=False)
    capped = {"type": "error", "error": {
        "type": "rate_limit_error", "message": "You have reached your API usage limits",
        "details": {"error_code": "enforced_spend_limit_reached"}}}
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, BATCHES_URL, status=429, json=capped)
        with pytest.raises(RateLimitError) as raised:
            client.run(make_requests(2), output=str(tmp_path / "o.jsonl"))
    assert raised.value.spend_cap and clock.sleeps == []  # the month's end is no wait
    assert recorder.calls == ["before_submit 0",
                              "on_submit_error 0 RateLimitError made_nothing=True"]


def test_a_plain_create_still_retries_a_429_within_max_retries(
        client: BatchClient, clock: FakeClock, mock: responses.RequestsMock,
        batch_json: Any, error_body: Any, make_requests: Any) -> None:
    mock.add(responses.POST, BATCHES_URL, status=429, headers={"retry-after": "3"},
             json=error_body("rate_limit_error"))
    mock.add(responses.POST, BATCHES_URL, json=batch_json(processing=1))
    assert client.create(make_requests(1)).id == "msgbatch_01"
    assert clock.sleeps == [3.0]


def test_a_rate_limit_error_carries_the_retry_after(
        clock: FakeClock, mock: responses.RequestsMock, error_body: Any,
        make_requests: Any) -> None:
    client = BatchClient(api_key=API_KEY, base_url=BASE_URL, clock=clock, max_retries=0,
                         load_entry_points=False)
    mock.add(responses.POST, BATCHES_URL, status=429, headers={"retry-after-ms": "1500"},
             json=error_body("rate_limit_error"))
    with pytest.raises(RateLimitError) as raised:
        client.create(make_requests(1))
    assert raised.value.retry_after == 1.5


# --- progress ---------------------------------------------------------------------------

def test_progress_shows_batches_queued_in_flight_and_ended(tmp_path: Path) -> None:
    clock = ManualClock()
    events, lines = io.StringIO(), io.StringIO()
    with Emulator(rate=10.0, seed=1, clock=clock, queue_limit=50) as emu:
        emulated_client(emu, clock, JsonProgress(events), Progress(lines, interval=0)).run(
            rows(100), output=str(tmp_path / "o.jsonl"), max_batch_requests=20,
            max_in_flight=0, name="queued")
    parsed = [json.loads(line) for line in events.getvalue().splitlines()]
    waits = [e for e in parsed if e["event"] == "queue_wait"]
    assert waits, "the emulator refused none"
    first = waits[0]
    assert first["retry_after"] == 1.0 and first["delay"] == 1.0
    assert first["requests"] == 20 and "processing queue" in first["message"]
    assert first["batches"]["queued"] >= 1 and first["in_flight_requests"] > 0
    polls = [e for e in parsed if e["event"] == "poll"]
    assert all(set(e["batches"]) == {"queued", "in_flight", "ended"} for e in polls)
    assert parsed[-1]["event"] == "job_end"
    ended = [e for e in parsed if e["event"] == "batch_ended"][-1]
    assert ended["batches"] == {"queued": 0, "in_flight": 0, "ended": 5}
    submitted = [e for e in parsed if e["event"] == "batch_submitted"]
    assert submitted[0]["batches"] == {"queued": 4, "in_flight": 1, "ended": 0}
    assert submitted[0]["in_flight_requests"] == 20  # the batch just sent counts
    text = lines.getvalue()
    assert "batches: 3 queued, 2 in flight, 0 ended" in text
    assert "queue full: batch 2 (20 requests) waits, trying again in 1 s" in text
    assert "batches: 0 in flight, 5 ended" in text.splitlines()[-1]


def test_the_bar_shows_queued_batches_and_when_a_refused_one_is_tried_again(
        tmp_path: Path) -> None:
    from rich.console import Console

    from claudebatch._progress import BarProgress

    clock = ManualClock()
    screen = io.StringIO()
    bar = BarProgress(Console(file=screen, force_terminal=True, width=200))
    with Emulator(rate=10.0, seed=1, clock=clock, queue_limit=50) as emu:
        emulated_client(emu, clock, bar).run(rows(100), output=str(tmp_path / "o.jsonl"),
                                             max_batch_requests=20, max_in_flight=0)
    shown = screen.getvalue()
    assert "batches: 3 queued, 2 in flight, 0 ended  (queue full: next try at 0:00:01)" \
        in shown
    assert "100/100" in shown.rsplit("pass 1", 1)[1]


# --- the command line -------------------------------------------------------------------

def write_jsonl(path: Path, items: List[Dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return str(path)


def test_cli_max_in_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    source = write_jsonl(tmp_path / "in.jsonl", rows(30))
    with Emulator(rate=float("inf"), seed=1) as emu:
        common = ["--base-url", emu.url, "--poll-interval", "0.01", "--quiet"]
        assert cli_main(["run", source, "--dry-run", "--max-in-flight", "10", *common]) == 0
        assert "30 requests would go in 3 batch(es)" in capsys.readouterr().out
        assert cli_main(["run", source, "-o", str(tmp_path / "o.jsonl"), "--max-in-flight",
                         "10", "--queue-patience", "1h", *common]) == 0
        assert emu.batches_created == 3 and emu.peak_in_flight <= 10
    assert sorted(ids_in(str(tmp_path / "o.jsonl"))) == [r["custom_id"] for r in rows(30)]


@pytest.mark.parametrize("option", [["--max-in-flight", "-1"], ["--max-in-flight", "lots"],
                                    ["--queue-patience", "0"]])
def test_cli_bad_queue_options_exit_2(option: List[str], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli_main(["run", "in.jsonl", "-o", str(tmp_path / "o.jsonl"), *option])
    assert exit_.value.code == 2


def test_cli_a_job_that_outwaits_its_patience_exits_4_without_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    clock: Optional[FakeClock] = FakeClock()
    monkeypatch.setattr("claudebatch._client.SystemClock", lambda: clock)  # no real waits
    source = write_jsonl(tmp_path / "in.jsonl", rows(30))
    with Emulator(rate=float("inf"), seed=1, queue_limit=20) as emu:  # 30 never fit
        code = cli_main(["run", source, "-o", str(tmp_path / "o.jsonl"), "--base-url",
                         emu.url, "--max-in-flight", "0", "--queue-patience", "5m",
                         "--progress", "json"])
        assert emu.batches_created == 0
    assert code == 4
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("timed out: job ")
    assert "This batch alone has 30 requests" in err
    waits = [json.loads(line) for line in err.splitlines() if '"queue_wait"' in line]
    assert [w["retry_after"] for w in waits] == [60.0] * 5
