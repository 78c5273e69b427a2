"""The retry policy in whole jobs against the emulator, over real loopback HTTP.

The emulator and the client share one ManualClock: the client's waits (polls, the
pause between passes, HTTP backoff) move the emulator's time instead of sleeping.
Every seed is fixed, so each run sends and receives exactly the same batches.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set

import pytest
from claudebatch_retry import HttpRetry, RetryPolicy, classify

from claudebatch import BatchClient, OverloadedError, hookimpl
from claudebatch.emulator import Emulator, Faults, ManualClock

REQUESTS = 200
BATCH_SIZE = 80  # -> batches of 80, 80 and 40 in the first pass
RATE = 100.0  # requests processed per second per batch
#: Seconds: a batch processes about 70 requests before it expires. So the two batches of
#: 80 leave an expired tail, and the batch of 40 (and the retry batch: about 40 requests,
#: the expired tails plus ~10% errored) finish in time.
EXPIRY = 0.7
#: 5% invalid, all in the last (40-request) batch, which finishes before it can expire:
#: an invalid request left unprocessed would come back ``expired`` (the service never
#: looked at it), and then resubmitting it would be right.
INVALID = {f"r-{i:03d}" for i in range(160, 200, 4)}


def dataset() -> List[Dict[str, Any]]:
    rows = []
    for i in range(REQUESTS):
        custom_id = f"r-{i:03d}"
        params: Dict[str, Any] = {"model": "claude-haiku-4-5", "max_tokens": 16,
                                  "messages": [{"role": "user", "content": f"question {i}"}]}
        if custom_id in INVALID:  # accepted by the client, refused by the service
            params = ({**params, "model": "not-a-model"} if i % 8 == 0
                      else {**params, "metadata": {"user_id": "u", "team": "x"}})
        rows.append({"custom_id": custom_id, "params": params})
    return rows


class FaultsOnFirstPassOnly:
    """Turns the emulator's errored rate off before the second pass is sent.

    The emulator draws errored results afresh for every batch, so a resubmitted
    request could be errored again; with the rate on the first pass only, what
    the test expects after one extra pass is exact.
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    @hookimpl
    def before_submit(self, context: Any) -> None:
        if context.pass_number > 1:
            self.emulator.faults = Faults()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_emulator(clock: ManualClock) -> Iterator[Any]:
    started: List[Emulator] = []

    def make(**kwargs: Any) -> Emulator:
        kwargs.setdefault("clock", clock)
        emulator = Emulator(**kwargs).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


def client_for(emulator: Emulator, clock: ManualClock, *plugins: Any) -> BatchClient:
    return BatchClient(api_key="emulator-key", base_url=emulator.url, clock=clock,
                       plugins=plugins, poll_interval=0.1)


def sent_batches(emulator: Emulator, clock: ManualClock) -> Dict[str, Dict[str, Any]]:
    """What the emulator received: each batch's results, by custom_id, read from its API."""
    reader = client_for(emulator, clock)  # no plugins: on_result of the policy stays out
    return {batch_id: {r.custom_id: r for r in reader.results(batch_id)}
            for batch_id in emulator.batch_ids}


def output_lines(path: Path) -> Dict[str, Dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    by_id = {line["custom_id"]: line["result"] for line in lines}
    assert len(by_id) == len(lines), "the output holds one line per custom_id"
    return by_id


def error_type(result: Dict[str, Any]) -> str:
    return str(result["error"]["error"]["type"])


def test_retryable_failures_succeed_and_invalid_requests_are_sent_once(
        make_emulator: Any, clock: ManualClock, tmp_path: Path) -> None:
    emulator = make_emulator(seed=2024, rate=RATE, expiry=EXPIRY, faults=Faults(errored=0.1))
    policy = RetryPolicy(passes=2, pause=30)
    client = client_for(emulator, clock, policy, FaultsOnFirstPassOnly(emulator))
    report = client.run(dataset(), output=str(tmp_path / "out.jsonl"),
                        max_batch_requests=BATCH_SIZE)

    batches = sent_batches(emulator, clock)
    first_pass = {cid: r for batch_id in emulator.batch_ids[:3]
                  for cid, r in batches[batch_id].items()}
    retryable = {cid for cid, r in first_pass.items() if classify(r).retryable}
    kinds = Counter(r.result.error.error.type if r.type == "errored" else r.type
                    for cid, r in first_pass.items() if cid in retryable)
    # the scenario happened: expired tails, and both kinds of transient error
    assert kinds["expired"] > 0 and kinds["api_error"] > 0 and kinds["overloaded_error"] > 0
    assert [b.counts.get("expired", 0) > 0 for b in report.batches[:3]] == [True, True, False]
    assert {cid for cid, r in first_pass.items() if r.type == "errored"
            and r.result.error.error.type in ("invalid_request_error", "not_found_error")} \
        == INVALID

    # the emulator saw exactly the batches expected: 80, 80, 40, then one of the retryable
    assert emulator.batch_ids == report.batch_ids
    assert [(b.pass_number, b.request_count) for b in report.batches] == [
        (1, 80), (1, 80), (1, 40), (2, len(retryable))]
    assert set(batches[emulator.batch_ids[3]]) == retryable
    assert [r.status for r in emulator.requests_to("create")] == [200] * 4

    # every invalid request was sent exactly once; every retryable one twice; the rest once
    sent = Counter(cid for results in batches.values() for cid in results)
    assert all(sent[cid] == 1 for cid in INVALID)
    assert all(sent[cid] == 2 for cid in retryable)
    assert sum(sent.values()) == REQUESTS + len(retryable)

    # after the passes every retryable request succeeded; the output keeps the last attempt
    out = output_lines(tmp_path / "out.jsonl")
    assert len(out) == REQUESTS
    assert all(out[cid]["type"] == "succeeded" for cid in retryable)
    assert report.counts == {"succeeded": REQUESTS - len(INVALID), "errored": len(INVALID)}

    # the report lists each request that failed for good, with its last error
    assert set(policy.failed_for_good) == INVALID
    for cid, failure in policy.failed_for_good.items():
        assert (failure.error_type, failure.attempts, failure.reason) == (
            error_type(out[cid]), 1, "not retryable")
    summary = report.plugins["retry"]
    assert (summary["extra_passes"], summary["resubmitted"], summary["recovered"]) == (
        1, len(retryable), len(retryable))
    assert set(summary["failed_for_good"]) == INVALID
    assert clock.sleeps.count(30.0) == 1  # one pause, before the one extra pass


def test_failures_that_persist_are_reported_with_their_last_error(
        make_emulator: Any, clock: ManualClock, tmp_path: Path) -> None:
    # 30% errored on every batch, re-drawn each time: some requests fail three times
    emulator = make_emulator(seed=7, rate=RATE, expiry=EXPIRY, faults=Faults(errored=0.3))
    policy = RetryPolicy(passes=2, pause=0)
    report = client_for(emulator, clock, policy).run(
        dataset(), output=str(tmp_path / "out.jsonl"), max_batch_requests=BATCH_SIZE)
    batches = sent_batches(emulator, clock)
    assert report.passes == 3 and emulator.batch_ids == report.batch_ids

    # each extra pass sends exactly the retryable failures of the pass before it
    by_pass: Dict[int, Dict[str, Any]] = {}
    for summary in report.batches:
        by_pass.setdefault(summary.pass_number, {}).update(batches[summary.id])
    for number in (1, 2):
        retryable = {cid for cid, r in by_pass[number].items() if classify(r).retryable}
        assert set(by_pass[number + 1]) == retryable
    exhausted = {cid for cid, r in by_pass[3].items() if classify(r).retryable}
    assert exhausted  # 30% of what pass 2 resubmitted failed again

    out = output_lines(tmp_path / "out.jsonl")
    failed = {cid for cid, result in out.items() if result["type"] != "succeeded"}
    assert set(policy.failed_for_good) == failed == exhausted | INVALID
    for cid in exhausted:
        failure = policy.failed_for_good[cid]
        assert (failure.error_type, failure.attempts, failure.reason) == (
            error_type(out[cid]), 3, "retries exhausted")
    assert all(policy.failed_for_good[cid].reason == "not retryable" for cid in INVALID)


class CancelFirstBatch:
    """Cancels the job's first batch part-way through (someone pressed stop)."""

    def __init__(self) -> None:
        self.canceled: Set[str] = set()

    @hookimpl
    def on_poll(self, batch: Any, context: Any) -> None:
        if not self.canceled and context.pass_number == 1 and batch.request_counts.succeeded:
            self.canceled.add(batch.id)
            context.client.cancel(batch.id)


@pytest.mark.parametrize("retry_canceled", [False, True])
def test_canceled_requests_go_again_only_when_asked(
        make_emulator: Any, clock: ManualClock, tmp_path: Path, retry_canceled: bool) -> None:
    emulator = make_emulator(seed=3, rate=RATE, cancel_delay=0.5)
    policy = RetryPolicy(retry_canceled=retry_canceled, pause=0)
    rows = [r for r in dataset() if r["custom_id"] not in INVALID][:50]
    report = client_for(emulator, clock, policy, CancelFirstBatch()).run(
        rows, output=str(tmp_path / "out.jsonl"))
    canceled = report.batches[0].counts["canceled"]
    assert 0 < canceled < 50
    out = output_lines(tmp_path / "out.jsonl")
    if retry_canceled:
        assert emulator.batches_created == 2 and report.batches[1].request_count == canceled
        assert report.all_succeeded and policy.failed_for_good == {}
    else:
        assert emulator.batches_created == 1
        assert {cid for cid, r in out.items() if r["type"] == "canceled"} \
            == set(policy.failed_for_good)
        assert {f.reason for f in policy.failed_for_good.values()} == {"not retryable"}


def test_the_http_schedule_rides_out_overload(
        make_emulator: Any, clock: ManualClock, tmp_path: Path) -> None:
    emulator = make_emulator(seed=1, rate=float("inf"))
    emulator.inject("overloaded", times=2, endpoint="retrieve")
    policy = RetryPolicy(http=HttpRetry(attempts=3, initial_delay=2, max_delay=3, jitter=0))
    rows = dataset()[:5]
    report = client_for(emulator, clock, policy).run(rows, output=str(tmp_path / "out.jsonl"))
    assert report.all_succeeded
    assert clock.sleeps[:2] == [2.0, 3.0]  # the configured waits, not the built-in ones
    assert [r.status for r in emulator.requests_to("retrieve")][:3] == [529, 529, 200]

    emulator.inject("overloaded", times=3, endpoint="retrieve")
    with pytest.raises(OverloadedError):  # three attempts, all overloaded: give up
        client_for(emulator, clock, policy).run(rows, output=str(tmp_path / "again.jsonl"))


def searching(count: int) -> List[Dict[str, Any]]:
    return [{"custom_id": f"s-{i}", "params": {
        "model": "claude-sonnet-5-5", "max_tokens": 400,
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
        "messages": [{"role": "user", "content": f"news about topic {i}"}]}}
        for i in range(count)]


def test_paused_turns_are_continued_with_their_content_when_asked(
        make_emulator: Any, clock: ManualClock, tmp_path: Path) -> None:
    emulator = make_emulator(rate=float("inf"), seed=5, pause_rate=0.5)
    policy = RetryPolicy(passes=2, pause=0, continue_paused=True)
    sent: Dict[str, List[Any]] = {}

    class Recorder:
        @hookimpl
        def before_submit(self, requests: Any) -> None:
            requests.observe(lambda r: sent.setdefault(r.custom_id, []).append(r.params))

    client = client_for(emulator, clock, policy, Recorder())
    report = client.run(searching(40), output=str(tmp_path / "out.jsonl"))

    first, second = list(sent_batches(emulator, clock).values())
    paused = {c for c, r in first.items() if r.result.message.stop_reason == "pause_turn"}
    assert 5 < len(paused) < 35 and set(second) == paused  # only the paused go again
    assert report.all_succeeded and report.stop_reasons == {"end_turn": 40}
    assert report.plugins["retry"]["continued_paused"] == len(paused)
    lines = output_lines(tmp_path / "out.jsonl")
    for custom_id in paused:
        original, again = sent[custom_id]
        content = [b.type for b in first[custom_id].result.message.content]
        assert content == ["server_tool_use"]
        # the same turn, the paused content appended as the assistant's, as it came back
        assert again["messages"][:-1] == original["messages"]
        assert again["messages"][-1]["role"] == "assistant"
        assert again["messages"][-1]["content"][0]["id"] == \
            first[custom_id].result.message.content[0].id
        assert lines[custom_id]["message"]["stop_reason"] == "end_turn"


def test_without_the_option_paused_turns_are_reported_not_finished(
        make_emulator: Any, clock: ManualClock, tmp_path: Path) -> None:
    emulator = make_emulator(rate=float("inf"), seed=5, pause_rate=0.5, refusal_rate=0.1)
    client = client_for(emulator, clock, RetryPolicy(passes=2, pause=0))
    report = client.run(searching(40), output=str(tmp_path / "out.jsonl"))
    assert emulator.batches_created == 1
    paused, refused = report.stop_reasons["pause_turn"], report.stop_reasons["refusal"]
    assert paused > 0 and refused > 0
    assert report.unfinished == {"pause_turn": paused, "refusal": refused}
    summary = report.summary()
    assert f"NOT FINISHED: {paused} paused" in summary and "--continue-paused" in summary
    assert f"NOT FINISHED: {refused} refused" in summary


def test_paused_turns_and_retryable_failures_of_one_pass_go_out_together(
        make_emulator: Any, clock: ManualClock, tmp_path: Path) -> None:
    emulator = make_emulator(rate=float("inf"), seed=7, pause_rate=0.3,
                             faults=Faults(errored=0.1))
    emulator_faults_off = FaultsOnFirstPassOnly(emulator)
    policy = RetryPolicy(passes=2, pause=0, continue_paused=True)
    client = client_for(emulator, clock, policy, emulator_faults_off)
    report = client.run(searching(50), output=str(tmp_path / "out.jsonl"))
    first = next(iter(sent_batches(emulator, clock).values()))
    paused = {c for c, r in first.items()
              if r.type == "succeeded" and r.result.message.stop_reason == "pause_turn"}
    failed = {c for c, r in first.items() if r.type == "errored"}
    assert paused and failed
    assert report.all_succeeded and report.stop_reasons == {"end_turn": 50}
    summary = report.plugins["retry"]
    # a failure sent again may pause in its turn, and be continued in the pass after
    assert summary["continued_paused"] >= len(paused)
    assert summary["resubmitted"] == summary["recovered"] == len(failed)  # not the paused
