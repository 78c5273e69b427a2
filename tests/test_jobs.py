"""Jobs end to end against the emulator over real loopback HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from claudebatch import BatchClient, Request, ResumeState, ValidationError, hookimpl
from claudebatch.cli import main as cli_main
from claudebatch.emulator import Emulator, Faults
from claudebatch.emulator.clock import ManualClock
from claudebatch.limits import RESULT_STREAM_ATTEMPTS

MODEL = "claude-haiku-4-5"


def request(i: int, text: str = "hello") -> Dict[str, Any]:
    return {"custom_id": f"r-{i}", "params": {
        "model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": text}]}}


def write_jsonl(path: Path, rows: Iterator[Any]) -> Path:
    with path.open("w") as handle:
        for row in rows:
            handle.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


def read_output(path: str) -> List[Dict[str, Any]]:
    with open(path) as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(rate=float("inf"), seed=3) as emu:
        yield emu


def client_for(emu: Emulator, **kwargs: Any) -> BatchClient:
    return BatchClient(api_key="k", base_url=emu.url, poll_interval=0.01,
                       load_entry_points=False, **kwargs)


def test_5000_requests_end_to_end_every_custom_id_once(emulator: Emulator,
                                                        tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", (request(i) for i in range(5000)))
    report = client_for(emulator).run(source, output=str(tmp_path / "out.jsonl"))

    lines = read_output(report.output)
    ids = [line["custom_id"] for line in lines]
    assert sorted(ids) == sorted(f"r-{i}" for i in range(5000))
    assert ids != [f"r-{i}" for i in range(5000)]  # the service answers out of order
    assert report.complete and report.all_succeeded
    assert report.counts == {"succeeded": 5000}
    assert emulator.batches_created == 1 and report.batch_ids == emulator.batch_ids
    assert {"custom_id", "result"} == set(lines[0])  # the API's own line shape


def test_join_pairs_each_request_with_its_result(emulator: Emulator, tmp_path: Path) -> None:
    rows = [request(i, text=f"question {i}") for i in range(50)]
    report = client_for(emulator).run(rows, output=str(tmp_path / "out.jsonl"))
    pairs = list(report.results())
    assert len(pairs) == 50
    for req, res in pairs:
        assert req.custom_id == res.custom_id
        number = int(req.custom_id.split("-")[1])
        assert req.params["messages"][0]["content"] == f"question {number}"
        assert res.type == "succeeded"


def test_100001_tiny_requests_become_two_batches(emulator: Emulator, tmp_path: Path) -> None:
    rows = (request(i, "x") for i in range(100_001))  # a generator: never a list
    report = client_for(emulator).run(rows, output=str(tmp_path / "out.jsonl"))
    assert [b.request_count for b in report.batches] == [100_000, 1]
    assert emulator.batches_created == 2
    assert report.complete and report.counts["succeeded"] == 100_001


def _big_rows(count: int, text_bytes: int) -> Iterator[Dict[str, Any]]:
    filler = "y" * text_bytes
    for i in range(count):
        yield request(i, filler)


@pytest.mark.slow
def test_a_300mb_input_becomes_two_batches_each_under_256mb(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "big.jsonl", _big_rows(3_000, 100_000))
    assert source.stat().st_size > 300_000_000
    seen_sizes: List[int] = []

    class BodySize:
        @hookimpl
        def after_submit(self, batch: Any, requests: Any) -> None:
            with requests.write_body() as body:
                seen_sizes.append(body.seek(0, 2))

    with Emulator(rate=float("inf"), seed=5, answer_tokens=(1, 2)) as emu:
        report = client_for(emu, plugins=[BodySize()]).run(
            source, output=str(tmp_path / "out.jsonl"))
        assert emu.batches_created == 2
    assert len(seen_sizes) == 2 and all(size < 256 * 1024 * 1024 for size in seen_sizes)
    assert sum(b.request_count for b in report.batches) == 3_000
    assert report.complete


def test_malformed_input_names_every_problem_and_sends_nothing(emulator: Emulator,
                                                               tmp_path: Path) -> None:
    rows: List[Any] = [json.dumps(request(i)) for i in range(6)]
    rows[1] = '{"custom_id": "r-1", "params": {'  # bad JSON on line 2
    rows[3] = json.dumps(request(3) | {"custom_id": "x" * 65})  # line 4
    rows[5] = json.dumps(request(0))  # line 6 duplicates line 1
    source = write_jsonl(tmp_path / "bad.jsonl", iter(rows))

    with pytest.raises(ValidationError) as caught:
        client_for(emulator).run(source, output=str(tmp_path / "out.jsonl"))
    message = str(caught.value)
    assert f"{source} line 2: not valid JSON" in message
    assert f"{source} line 4 (custom_id '{'x' * 65}'): custom_id must be 1 to 64" in message
    assert f"{source} line 6 (custom_id 'r-0'): custom_id duplicates {source} line 1" in message
    assert caught.value.total == 3
    assert emulator.batches_created == 0
    assert emulator.requests_to("create") == []


def test_a_huge_list_of_problems_is_capped_then_counted(emulator: Emulator) -> None:
    rows = [{"custom_id": f"bad id {i}", "params": {}} for i in range(500)]
    with pytest.raises(ValidationError) as caught:
        client_for(emulator).run(rows, output="unused.jsonl")
    assert len(caught.value.problems) == 20
    assert caught.value.total > 500  # every row has several problems
    assert "... and" in str(caught.value)


def test_a_resubmission_pass_keeps_only_the_last_attempt(tmp_path: Path) -> None:
    class RetryErrored:
        def __init__(self) -> None:
            self.failed: List[str] = []

        @hookimpl
        def on_result(self, result: Any) -> None:
            if result.type == "errored":
                self.failed.append(result.custom_id)

        @hookimpl
        def resubmit_requests(self, pass_number: int, context: Any) -> Any:
            failed, self.failed = self.failed, []
            return list(context.find_requests(failed)) if pass_number == 1 else None

    retry = RetryErrored()
    with Emulator(rate=float("inf"), seed=11, faults=Faults(errored=0.3)) as emu:
        client = client_for(emu, plugins=[retry])
        report = client.run([request(i) for i in range(200)],
                            output=str(tmp_path / "out.jsonl"))
        assert emu.batches_created == 2
    lines = read_output(report.output)
    assert sorted(line["custom_id"] for line in lines) == sorted(f"r-{i}" for i in range(200))
    assert report.passes == 2
    assert report.batches[1].pass_number == 2
    assert sum(report.counts.values()) == 200
    assert report.counts.get("errored", 0) < report.batches[1].request_count


def test_resume_state_skips_made_batches_and_written_results(emulator: Emulator,
                                                              tmp_path: Path) -> None:
    rows = [request(i) for i in range(30)]
    out = tmp_path / "out.jsonl"
    first = client_for(emulator).run(rows, output=str(out), max_batch_requests=10)
    assert emulator.batches_created == 3
    lines = out.read_text().splitlines()
    # as if the first run died halfway through writing batch 1's results
    keep = [line for line in lines if json.loads(line)["custom_id"] in
            {f"r-{i}" for i in range(15)}]
    out.write_text("\n".join(keep) + "\n")

    class Remembered:
        @hookimpl
        def resume_state(self) -> ResumeState:
            ids = first.batch_ids
            return ResumeState(submitted={(1, i): ids[i] for i in range(3)}, finished={ids[0]})

    report = client_for(emulator, plugins=[Remembered()]).run(
        rows, output=str(out), max_batch_requests=10)
    assert emulator.batches_created == 3  # nothing submitted again
    ids = [json.loads(line)["custom_id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == sorted(f"r-{i}" for i in range(30))
    assert report.complete


def test_results_that_never_arrive_are_reported_not_dropped(tmp_path: Path) -> None:
    clock = ManualClock()
    with Emulator(rate=float("inf"), clock=clock) as emu:
        emu.inject("drop_results", times=RESULT_STREAM_ATTEMPTS, after=0.5)
        client = client_for(emu, max_retries=0, clock=clock)
        report = client.run([request(i) for i in range(100)], output=str(tmp_path / "o.jsonl"))
    written = len(read_output(report.output))
    assert report.missing and len(report.missing) == 100 - written
    assert not report.complete
    assert report.batches[0].missing == 100 - written
    assert "NO RESULT" in report.summary()


def test_a_broken_results_stream_is_retried_with_backoff_and_resumed(tmp_path: Path) -> None:
    clock = ManualClock()
    with Emulator(rate=float("inf"), clock=clock) as emu:
        emu.inject("drop_results", times=RESULT_STREAM_ATTEMPTS - 1, after=0.5)
        client = client_for(emu, max_retries=0, clock=clock)
        report = client.run([request(i) for i in range(100)], output=str(tmp_path / "o.jsonl"))
    ids = [line["custom_id"] for line in read_output(report.output)]
    assert sorted(ids) == sorted(f"r-{i}" for i in range(100))  # each once
    assert report.complete and report.missing == []
    pauses = [s for s in clock.sleeps if s >= 0.3]  # the poll interval is 0.01
    assert len(pauses) == RESULT_STREAM_ATTEMPTS - 1
    assert pauses == sorted(pauses) and pauses[-1] > pauses[0]  # backing off


def test_dry_run_sends_nothing(emulator: Emulator) -> None:
    plan = client_for(emulator).job([request(i) for i in range(5)]).dry_run()
    assert plan.total_requests == 5 and len(plan.batches) == 1
    assert emulator.batches_created == 0


# --- the CLI ----------------------------------------------------------------

def test_cli_run_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    good = write_jsonl(tmp_path / "good.jsonl", (request(i) for i in range(20)))
    bad = write_jsonl(tmp_path / "bad.jsonl", iter(["{not json"]))
    out = str(tmp_path / "out.jsonl")
    with Emulator(rate=float("inf"), seed=1) as emu:
        args = ["--base-url", emu.url, "--poll-interval", "0.01", "--quiet"]
        assert cli_main(["run", str(good), "-o", out, *args]) == 0
        assert "succeeded 20" in capsys.readouterr().out
        assert cli_main(["run", str(bad), "-o", out, *args]) == 3
        assert "line 1: not valid JSON" in capsys.readouterr().err
        assert emu.batches_created == 1
    with Emulator(rate=float("inf"), seed=1, faults=Faults(errored=0.5)) as emu:
        args = ["--base-url", emu.url, "--poll-interval", "0.01", "--quiet"]
        assert cli_main(["run", str(good), "-o", out, *args]) == 6
    monkeypatch.setattr("claudebatch._job.collect.backoff_delay", lambda attempt: 0.0)
    with Emulator(rate=float("inf"), seed=1) as emu:
        emu.inject("drop_results", times=RESULT_STREAM_ATTEMPTS)
        args = ["--base-url", emu.url, "--poll-interval", "0.01", "--quiet",
                "--max-retries", "0"]
        assert cli_main(["run", str(good), "-o", out, *args]) == 7


def test_cli_progress_degrades_to_plain_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    good = write_jsonl(tmp_path / "good.jsonl", (request(i) for i in range(10)))
    with Emulator(rate=float("inf"), seed=1) as emu:
        code = cli_main(["run", str(good), "-o", str(tmp_path / "o.jsonl"),
                         "--base-url", emu.url, "--poll-interval", "0.01"])
    err = capsys.readouterr().err
    assert code == 0
    assert "\r" not in err and "\x1b" not in err  # not a terminal: no redrawing
    assert "submitted msgbatch_" in err
    assert "10/10 requests done, 10 results written" in err


def test_cli_progress_json_is_one_event_a_line_for_scripts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    good = write_jsonl(tmp_path / "good.jsonl", (request(i) for i in range(30)))
    with Emulator(rate=float("inf"), seed=1, faults=Faults(errored=0.5)) as emu:
        code = cli_main(["run", str(good), "-o", str(tmp_path / "o.jsonl"), "--base-url",
                         emu.url, "--poll-interval", "0.01", "--progress", "json"])
        batch_id = emu.batch_ids[0]
    assert code == 6  # some errored
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()
              if line.startswith("{")]
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["job_start", "batch_submitted"] and kinds[-2:] == ["pass_end",
                                                                          "job_end"]
    assert set(kinds) == {"job_start", "batch_submitted", "poll", "batch_ended", "pass_end",
                          "job_end"}
    assert all(isinstance(e["time"], float) and e["pass"] == 1 for e in events)
    start, end = events[0], events[-1]
    assert start["requests"] == 30 and start["output"] == str(tmp_path / "o.jsonl")
    ended = next(e for e in events if e["event"] == "batch_ended")
    assert ended["batch_id"] == batch_id and ended["complete"] is True
    assert sum(ended["counts"].values()) == 30 and ended["results_written"] == 30
    assert end["counts"] == {k: v for k, v in ended["counts"].items() if v and k in
                             ("succeeded", "errored")}
    assert end["complete"] is True and end["missing"] == 0


def test_requests_are_accepted_as_request_objects(emulator: Emulator, tmp_path: Path) -> None:
    rows = [Request(f"q-{i}", request(i)["params"]) for i in range(3)]
    report = client_for(emulator).run(rows, output=str(tmp_path / "o.jsonl"))
    assert report.all_succeeded


def test_find_requests_and_join_see_every_batch_of_a_multi_batch_job(
        emulator: Emulator, tmp_path: Path) -> None:
    rows = [request(i) for i in range(200)]
    job = client_for(emulator).job(rows, output=str(tmp_path / "o.jsonl"),
                                   max_batch_requests=80)
    report = job.run()
    assert [b.request_count for b in report.batches] == [80, 80, 40]
    wanted = {f"r-{i}" for i in range(200)}
    assert {r.custom_id for r in job.find_requests(wanted)} == wanted
    assert len(list(report.results())) == 200


def test_reading_a_spool_slice_leaves_its_end_where_it_was() -> None:
    from claudebatch._spool import Spool

    spool = Spool()
    offsets = []
    for i in range(5):
        offsets.append(spool.tell())
        spool.append(json.dumps(request(i), separators=(",", ":")).encode())
    end = spool.tell()
    for _ in range(2):
        assert [c for c, _, _ in spool.custom_ids(offsets[1], offsets[2])] == ["r-1"]
        assert spool.tell() == end
    assert [c for c, _, _ in spool.custom_ids(0, spool.tell())] == [f"r-{i}" for i in range(5)]


def test_demo_runs_against_the_builtin_emulator_without_a_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo.jsonl"
    assert cli_main(["demo", "--requests", "300", "-o", str(out), "--quiet",
                     "--poll-interval", "0.05"]) == 0
    printed = capsys.readouterr()
    assert "against the built-in emulator" in printed.err
    assert "300 requests in 1 batch(es)" in printed.out
    ids = sorted(json.loads(line)["custom_id"] for line in out.read_text().splitlines())
    assert ids == [f"ticket-{i:05d}" for i in range(300)]


def test_a_resumed_second_pass_keeps_its_own_results(tmp_path: Path) -> None:
    rows = [request(i) for i in range(60)]
    out = tmp_path / "out.jsonl"
    with Emulator(rate=float("inf"), seed=4, faults=Faults(errored=0.4)) as emu:
        first = client_for(emu).run(rows, output=str(out))
        errored = [json.loads(line)["custom_id"] for line in out.read_text().splitlines()
                   if json.loads(line)["result"]["type"] == "errored"]
        assert errored
        emu.faults = Faults()
        # the earlier run had sent pass 2 too, then died before writing its results
        retry_rows = [r for r in rows if r["custom_id"] in set(errored)]
        second = client_for(emu).create(retry_rows)
        ids = {(1, 0): first.batch_ids[0], (2, 0): second.id}

        class Remembered:
            @hookimpl
            def resume_state(self) -> ResumeState:
                return ResumeState(submitted=ids, finished={ids[(1, 0)]})

            @hookimpl
            def resubmit_requests(self, pass_number: int, context: Any) -> Any:
                return list(context.find_requests(errored)) if pass_number == 1 else None

        report = client_for(emu, plugins=[Remembered()]).run(rows, output=str(out))
        assert emu.batches_created == 2  # nothing sent again
    lines = read_output(str(out))
    assert sorted(line["custom_id"] for line in lines) == sorted(r["custom_id"] for r in rows)
    assert {line["result"]["type"] for line in lines} == {"succeeded"}
    assert report.all_succeeded


def test_a_batch_known_to_a_resumed_job_is_never_adopted_as_a_lost_create(
        emulator: Emulator) -> None:
    import time

    since = time.time()
    made = client_for(emulator).create([request(i) for i in range(10)])
    fresh = client_for(emulator)  # a new process knows nothing of it
    assert fresh.find_batch_created_since(since, 10).id == made.id  # type: ignore[union-attr]
    assert fresh.find_batch_created_since(since, 10, exclude=[made.id]) is None
    fresh.remember_batches([made.id])
    assert fresh.find_batch_created_since(since, 10) is None


def test_stop_reasons_are_counted_as_names_only() -> None:
    from collections import Counter

    from claudebatch._job.collect import tally

    counts: Counter[str] = Counter()
    stops: Counter[str] = Counter()
    reasons = ("end_turn", "max_tokens", "\x1b[2Jend_turn\n", None, 7, {"a": 1}, ["b"])
    for reason in reasons * 2:  # the second time, the names are known already
        tally({"result": {"type": "succeeded", "message": {"stop_reason": reason}}},
              counts, stops)
    assert stops == {"end_turn": 2, "max_tokens": 2, "unknown": 10}
    assert counts == {"succeeded": 14}


class Padding:
    """Grows every request after planning, saying so (``reserve_bytes``) or not."""

    def __init__(self, pad: int, reserve: bool) -> None:
        self.pad, self.reserve = pad, reserve

    @hookimpl
    def on_job_start(self, context: Any) -> None:
        if self.reserve:
            context.reserve_bytes(self.pad + len(',"metadata":{"user_id":""}'))

    @hookimpl
    def before_pass(self, batches: Any) -> None:
        for batch in batches:
            batch.transform(lambda r: Request(r.custom_id, {
                **r.params, "metadata": {"user_id": "x" * self.pad}}))


def test_a_pass_whose_bodies_grew_past_the_limit_sends_nothing(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("claudebatch._job.run.MAX_BATCH_BYTES", 3000)  # the service's, small
    rows = [{"custom_id": f"r{i}", "params": {"model": "claude-haiku-4-5", "max_tokens": 8,
             "messages": [{"role": "user", "content": "hi"}]}} for i in range(30)]
    limit = 3000
    with pytest.raises(ValidationError, match=r"grew to .* once the plugins rewrote"):
        client_for(emulator, plugins=[Padding(200, reserve=False)]).run(
            rows, output=str(tmp_path / "a.jsonl"), max_batch_bytes=limit)
    assert emulator.batches_created == 0  # not one of the pass's batches
    report = client_for(emulator, plugins=[Padding(200, reserve=True)]).run(
        rows, output=str(tmp_path / "b.jsonl"), max_batch_bytes=limit)
    assert report.all_succeeded and len(report.batches) >= 3


def test_on_a_terminal_a_live_bar_per_pass_counts_requests_by_result_type(
        tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from claudebatch._progress import BarProgress

    screen = io.StringIO()
    bar = BarProgress(Console(file=screen, force_terminal=True, width=160))
    bar.READ_STEP = 5  # the reading counter shows at once for a small input
    with Emulator(rate=float("inf"), seed=1, faults=Faults(errored=0.3)) as emu:
        client = BatchClient(api_key="k", base_url=emu.url, plugins=[bar],
                             load_entry_points=False)
        report = client.run([request(i) for i in range(40)], name="barred",
                            output=str(tmp_path / "o.jsonl"), poll_interval=0.01)
    shown = screen.getvalue()
    assert "job barred: reading" in shown and "requests checked" in shown
    last = shown.rsplit("pass 1", 1)[1]
    assert "40/40" in last and "batches: 0 in flight, 1 ended" in last
    assert f"succeeded {report.counts['succeeded']:,}" in last
    assert f"errored {report.counts['errored']:,}" in last
    assert not bar._running  # stopped with the job: the terminal is given back
    plan = client.job([request(i) for i in range(3)], name="dry").dry_run()
    assert plan.total_requests == 3 and "would send" in screen.getvalue()


def test_the_bar_says_at_once_that_a_big_batch_is_being_written_and_sent(
        tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from claudebatch._progress import BarProgress

    screen = io.StringIO()
    bar = BarProgress(Console(file=screen, force_terminal=True, width=200))
    big = [Request(f"r-{i}", {"model": "claude-haiku-4-5", "max_tokens": 8, "messages": [
        {"role": "user", "content": f"{i} " + "x" * 20_000}]}) for i in range(120)]
    with Emulator(rate=float("inf"), seed=1) as emu:
        client = BatchClient(api_key="k", base_url=emu.url, plugins=[bar],
                             load_entry_points=False)
        report = client.run(big, name="big", output=str(tmp_path / "o.jsonl"),
                            poll_interval=0.01, max_batch_requests=60)
    assert report.counts == {"succeeded": 120}
    shown = screen.getvalue()
    assert "(batch 0: writing 60 requests)" in shown
    assert "(batch 1: sending 1.0/1.2 MB)" in shown  # every MiB of the body as it goes
    assert "(batch 1: sending 1.2/1.2 MB)" in shown  # and at its end
    last = shown.rsplit("pass 1", 1)[1]
    assert "sending" not in last and "writing" not in last  # gone once the batch is made


class PlanOrder:
    """What ``context.on_planned`` shows and what ``before_pass`` gets, pass by pass; sends
    the first pass's last five requests again in a second pass."""

    def __init__(self) -> None:
        self.planned: List[List[str]] = []
        self.batches: List[List[str]] = []

    @hookimpl
    def on_job_start(self, context: Any) -> None:
        context.on_planned(lambda request: self.planned[-1].append(request.custom_id))
        self.planned.append([])

    @hookimpl
    def before_pass(self, batches: Any) -> None:
        self.batches.append([r.custom_id for batch in batches for r in batch])
        self.planned.append([])

    @hookimpl
    def resubmit_requests(self, pass_number: int, context: Any) -> Any:
        return context.find_requests(self.batches[0][-5:]) if pass_number == 1 else []


def test_on_planned_shows_each_pass_in_the_order_its_batches_hold_the_requests(
        emulator: Emulator, tmp_path: Path) -> None:
    """A plugin may note one thing per request as it is planned and find it again by
    position in ``before_pass`` (the cache plugin settles whole batches so); duplicates
    answered once (reuse) are not shown."""
    rows = [request(i, text=f"q{i % 40}") for i in range(90)]  # 50 duplicates: sent once
    order = PlanOrder()
    report = client_for(emulator, plugins=[order]).run(
        rows, output=str(tmp_path / "out.jsonl"), max_batch_requests=7, reuse=True)
    assert report.complete and report.passes == 2
    assert order.planned[:2] == order.batches
    assert len(order.batches[0]) == 40 and len(order.batches[1]) == 5
