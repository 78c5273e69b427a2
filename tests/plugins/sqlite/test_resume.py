"""The store in whole jobs against the emulator, in this process.

A job "dies" here by an exception from a plugin (``StopAt``): the process goes
on, so these run fast; test_crash.py kills real processes.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from claudebatch_sqlite import InputChangedError, SQLiteStore
from claudebatch_sqlite.database import SCHEMA_VERSION

from claudebatch import BatchClient, hookimpl
from claudebatch.emulator import Emulator, Faults

from ...conftest import FakeClock
from .helpers import (
    CountResults,
    FakeCost,
    Interrupted,
    ResubmitSome,
    StopAt,
    dataset,
    output_lines,
    write_jsonl,
)

pytestmark = pytest.mark.usefixtures("store_backend")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(rate=2000.0, seed=5) as emu:
        yield emu


def client_for(emulator: Emulator, *plugins: Any) -> BatchClient:
    return BatchClient(api_key="emulator", base_url=emulator.url, plugins=list(plugins),
                       load_entry_points=False)


def run(emulator: Emulator, store: SQLiteStore, tmp_path: Path, *plugins: Any,
        source: Any = None, name: str = "job", max_batch: int = 8, **options: Any) -> Any:
    client = client_for(emulator, store, *plugins)
    return client.run(dataset() if source is None else source, name=name,
                      output=str(tmp_path / "out.jsonl"), poll_interval=0.005,
                      max_batch_requests=max_batch, **options)


def served(emulator: Emulator, batch_id: str) -> dict[str, Any]:
    client = client_for(emulator)
    return {v["custom_id"]: v for v in client.results(batch_id, raw=True)}


def test_a_job_is_recorded_whole(emulator: Emulator, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    report = run(emulator, store, tmp_path)
    assert report.all_succeeded
    job = store.job("job")
    assert (job.state, job.total_requests, job.counts, job.missing) == (
        "done", 24, {"succeeded": 24}, 0)
    assert [(b.pass_number, b.index, b.request_count, b.status, b.results_done)
            for b in job.batches] == [(1, 0, 8, "ended", True), (1, 1, 8, "ended", True),
                                      (1, 2, 8, "ended", True)]
    assert [b.batch_id for b in job.batches] == emulator.batch_ids
    expected = {}
    for batch_id in emulator.batch_ids:
        expected.update(served(emulator, batch_id))
    stored = {custom_id: line for _, custom_id, line in store.results("job")}
    assert {k: json.loads(v) for k, v in stored.items()} == expected
    # the requests are kept as sent
    rows = store.conn.execute("SELECT custom_id, params FROM requests ORDER BY idx, pos")
    assert [r[0] for r in rows] == [r["custom_id"] for r in dataset()]


@pytest.mark.sqlite_only
def test_store_file_is_private_and_in_wal_mode(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    run(emulator, store, tmp_path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for sidecar in (path.with_name("s.db-wal"), path.with_name("s.db-shm")):
        # they exist while the store is open; SQLite gives them the database's mode
        assert stat.S_IMODE(os.stat(sidecar).st_mode) == 0o600
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_running_a_finished_job_again_sends_nothing_and_reports_it_whole(
        emulator: Emulator, tmp_path: Path) -> None:
    first = run(emulator, SQLiteStore(tmp_path / "s.db"), tmp_path)
    before = sorted((tmp_path / "out.jsonl").read_bytes().splitlines())
    (tmp_path / "out.jsonl").unlink()  # even the output is gone: rebuilt from the store
    again = run(emulator, SQLiteStore(tmp_path / "s.db"), tmp_path)
    assert emulator.batches_created == 3
    assert sorted((tmp_path / "out.jsonl").read_bytes().splitlines()) == before
    assert again.all_succeeded and again.counts == first.counts == {"succeeded": 24}
    assert [b.counts for b in again.batches] == [{"succeeded": 8}] * 3


def test_a_job_stopped_mid_stream_resumes_without_duplicates(emulator: Emulator,
                                                            tmp_path: Path) -> None:
    with pytest.raises(Interrupted):
        run(emulator, SQLiteStore(tmp_path / "s.db", commit_every=2), tmp_path,
            StopAt("on_result", 13))
    report = run(emulator, SQLiteStore(tmp_path / "s.db"), tmp_path)
    assert emulator.batches_created == 3
    ids = [line["custom_id"] for line in output_lines(tmp_path / "out.jsonl")]
    assert sorted(ids) == [r["custom_id"] for r in dataset()]
    assert report.complete and report.counts == {"succeeded": 24} and report.missing == []


def test_the_second_pass_is_the_one_decided_before_the_stop(emulator: Emulator,
                                                           tmp_path: Path) -> None:
    again = ["r-001", "r-005", "r-009", "r-010", "r-020", "r-021", "r-022", "r-023", "r-002"]
    decider = ResubmitSome(again)
    with pytest.raises(Interrupted):  # stopped once pass 2's first batch exists
        run(emulator, SQLiteStore(tmp_path / "s.db"), tmp_path, decider,
            StopAt("after_submit", 4))
    other = ResubmitSome(["r-000"])  # would choose otherwise now: the recorded pass wins
    report = run(emulator, SQLiteStore(tmp_path / "s.db"), tmp_path, other)
    assert other.asked == 1  # asked only after pass 2 (about a pass 3)
    assert emulator.batches_created == 3 + 2
    assert report.passes == 2 and report.complete
    pass_two = {}
    for batch_id in emulator.batch_ids[3:]:
        pass_two.update(served(emulator, batch_id))
    assert sorted(pass_two) == sorted(again)
    lines = {line["custom_id"]: line for line in output_lines(tmp_path / "out.jsonl")}
    assert len(lines) == 24
    for custom_id in again:  # the output keeps the second attempt
        assert lines[custom_id] == pass_two[custom_id]


def test_other_plugins_see_every_result_once_after_a_resume(emulator: Emulator,
                                                           tmp_path: Path) -> None:
    """Results of batches finished before the stop are replayed to them, before pass 2."""
    with pytest.raises(Interrupted):
        run(emulator, SQLiteStore(tmp_path / "s.db"), tmp_path, ResubmitSome(["r-003"]),
            StopAt("on_result", 20))
    counter = CountResults()
    run(emulator, SQLiteStore(tmp_path / "s.db"), tmp_path, ResubmitSome(["r-003"]), counter)
    assert sorted(counter.seen) == sorted([(1, r["custom_id"]) for r in dataset()]
                                          + [(2, "r-003")])


def test_with_the_retry_plugin_a_resumed_job_retries_what_failed(tmp_path: Path) -> None:
    retry = pytest.importorskip("claudebatch_retry")
    with Emulator(rate=math.inf, seed=9, faults=Faults(errored=0.25)) as emu:
        with pytest.raises(Interrupted):  # every first-pass batch ended, nothing resubmitted
            run(emu, SQLiteStore(tmp_path / "s.db"), tmp_path,
                retry.RetryPolicy(passes=1, pause=0), StopAt("on_batch_end", 3))
        failed = set()
        for batch_id in emu.batch_ids:
            failed |= {k for k, v in served(emu, batch_id).items()
                       if v["result"]["type"] == "errored"}
        assert failed
        emu.faults = Faults()  # the second pass succeeds
        policy = retry.RetryPolicy(passes=1, pause=0)
        report = run(emu, SQLiteStore(tmp_path / "s.db"), tmp_path, policy)
        assert report.passes == 2 and report.all_succeeded
        assert policy.resubmitted == len(failed) and policy.recovered == len(failed)
        resent = set()
        for batch_id in emu.batch_ids[3:]:
            resent |= set(served(emu, batch_id))
        assert resent == failed


def test_ambiguous_create_with_the_store_makes_exactly_one_batch(emulator: Emulator,
                                                                tmp_path: Path) -> None:
    emulator.inject("drop_create")
    store = SQLiteStore(tmp_path / "s.db")
    report = run(emulator, store, tmp_path, source=dataset(6))
    assert emulator.faults_fired.get("drop_create") == 1
    assert emulator.batches_created == 1
    assert report.all_succeeded and report.batch_ids == emulator.batch_ids
    assert [b.batch_id for b in store.job("job").batches] == emulator.batch_ids


def test_cost_is_kept_with_the_job(emulator: Emulator, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    report = run(emulator, store, tmp_path, FakeCost())
    assert store.job("job").cost == "$0.0123"
    assert "store" in report.plugins


# --- the input fingerprint ---------------------------------------------------------------

def stopped_job(emulator: Emulator, tmp_path: Path, source: Any, **options: Any) -> None:
    with pytest.raises(Interrupted):
        run(emulator, SQLiteStore(tmp_path / "s.db"), tmp_path, StopAt("on_result", 3),
            source=source, **options)


@pytest.mark.parametrize("change, why", [
    (lambda rows: rows[:-1], "it had 24 requests and now has 23"),
    (lambda rows: [*rows[:5], {**rows[5], "params": {**rows[5]["params"], "max_tokens": 9}},
                   *rows[6:]], "the input requests changed"),
])
def test_a_name_reused_for_other_input_is_refused(emulator: Emulator, tmp_path: Path,
                                                 change: Any, why: str) -> None:
    stopped_job(emulator, tmp_path, dataset())
    with pytest.raises(InputChangedError, match=why) as caught:
        run(emulator, SQLiteStore(tmp_path / "s.db"), tmp_path, source=change(dataset()))
    assert "another name" in str(caught.value) and "--forget" in str(caught.value)
    assert emulator.batches_created == 3  # nothing sent


def test_other_split_options_are_refused(emulator: Emulator, tmp_path: Path) -> None:
    stopped_job(emulator, tmp_path, dataset())
    with pytest.raises(InputChangedError, match="max_batch_requests was 8 and is now 6"):
        run(emulator, SQLiteStore(tmp_path / "s.db"), tmp_path, max_batch=6)


def test_a_changed_input_file_is_refused(emulator: Emulator, tmp_path: Path) -> None:
    rows = dataset()
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    stopped_job(emulator, tmp_path, path)
    rows[3]["params"]["messages"][0]["content"] = "another question"
    write_jsonl(tmp_path / "in.jsonl", rows)
    with pytest.raises(InputChangedError, match="file's content changed"):
        run(emulator, SQLiteStore(tmp_path / "s.db"), tmp_path, source=path)


def test_a_generator_is_checked_by_the_custom_ids_already_sent(emulator: Emulator,
                                                              tmp_path: Path) -> None:
    stopped_job(emulator, tmp_path, iter(dataset()))
    renamed = dataset(24, prefix="x")
    with pytest.raises(InputChangedError, match="requests already sent are not the same"):
        run(emulator, SQLiteStore(tmp_path / "s.db"), tmp_path, source=iter(renamed))
    report = run(emulator, SQLiteStore(tmp_path / "s.db"), tmp_path, source=iter(dataset()))
    assert report.complete and emulator.batches_created == 3


def test_forget_lets_a_name_be_reused(emulator: Emulator, tmp_path: Path) -> None:
    stopped_job(emulator, tmp_path, dataset())
    store = SQLiteStore(tmp_path / "s.db")
    store.forget("job")
    report = run(emulator, store, tmp_path, source=dataset(10))
    assert report.complete and store.job("job").total_requests == 10


def test_the_store_follows_one_job_at_a_time(emulator: Emulator, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    run(emulator, store, tmp_path, name="a", source=dataset(5))
    run(emulator, store, tmp_path, name="b", source=dataset(7, prefix="b"))
    jobs: List[Any] = store.jobs()
    assert [(j.name, j.total_requests, j.state) for j in jobs] == [("a", 5, "done"),
                                                                   ("b", 7, "done")]
    client = client_for(emulator, store)  # endpoint calls outside a job are not recorded
    client.create(dataset(2, prefix="z"))
    assert len(store.jobs()) == 2


def test_a_batch_whose_download_kept_breaking_is_fetched_again_on_rerun(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from claudebatch.limits import RESULT_STREAM_ATTEMPTS

    monkeypatch.setattr("claudebatch._job.collect.backoff_delay", lambda attempt: 0.0)
    source = write_jsonl(tmp_path / "in.jsonl", dataset(40))
    out, db = tmp_path / "out.jsonl", str(tmp_path / "jobs.db")
    with Emulator(rate=float("inf"), seed=6) as emu:
        emu.inject("drop_results", times=RESULT_STREAM_ATTEMPTS, after=0.3)
        with SQLiteStore(db) as store:
            first = client_for(emu, store).run(source, name="j", output=str(out),
                                                  poll_interval=0.01)
        assert first.missing  # the download never finished
        with SQLiteStore(db) as store:
            assert [b.results_done for b in store.job("j").batches] == [False]
            second = client_for(emu, store).run(source, name="j", output=str(out),
                                                  poll_interval=0.01)
        assert second.complete and emu.batches_created == 1
        assert sorted(r["custom_id"] for r in output_lines(out)) == \
            sorted(r["custom_id"] for r in dataset(40))


@pytest.mark.sqlite_only
def test_a_store_that_marked_an_incomplete_batch_done_fetches_it_again(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store written before the completeness rule: done, with results missing."""
    from claudebatch.limits import RESULT_STREAM_ATTEMPTS

    monkeypatch.setattr("claudebatch._job.collect.backoff_delay", lambda attempt: 0.0)
    source = write_jsonl(tmp_path / "in.jsonl", dataset(40))
    out, db = tmp_path / "out.jsonl", str(tmp_path / "jobs.db")
    emulator.inject("drop_results", times=RESULT_STREAM_ATTEMPTS, after=0.3)
    with SQLiteStore(db) as store:
        client_for(emulator, store).run(source, name="j", output=str(out),
                                                  poll_interval=0.01)
        store.db.execute("UPDATE batches SET results_done = 1")  # the old, wrong mark
    with SQLiteStore(db) as store:
        report = client_for(emulator, store).run(source, name="j", output=str(out),
                                                  poll_interval=0.01)
    assert report.complete and emulator.batches_created == 1


@pytest.mark.sqlite_only
def test_the_store_itself_as_output_is_refused_and_kept(emulator: Emulator,
                                                        tmp_path: Path) -> None:
    from claudebatch import OutputPathError

    db = tmp_path / "jobs.db"
    run(emulator, SQLiteStore(db), tmp_path, name="first")
    for output in (db, tmp_path / "jobs.db-wal"):
        with SQLiteStore(db) as store, pytest.raises(OutputPathError, match="job store"):
            client_for(emulator, store).run(dataset(), name="second", output=str(output))
    with SQLiteStore(db) as store:
        assert [j.name for j in store.jobs()] == ["first"]
    assert emulator.batches_created == 3  # first's batches only


def test_a_create_that_was_refused_leaves_no_intent_to_adopt(tmp_path: Path) -> None:
    """A definite error: a batch of the same size made later by someone else is not ours."""
    from claudebatch import InternalServerError

    db = tmp_path / "jobs.db"
    with Emulator(rate=float("inf"), seed=8) as emu:
        emu.inject("server_error", endpoint="create")
        client = BatchClient(api_key="k", base_url=emu.url, max_retries=0,
                             load_entry_points=False, plugins=[SQLiteStore(db)])
        with pytest.raises(InternalServerError):
            client.run(dataset(8), name="a", output=str(tmp_path / "a.jsonl"))
        other = [{**r, "custom_id": f"b-{i}"} for i, r in enumerate(dataset(8))]
        emu_client = client_for(emu)
        foreign = emu_client.create(other).id  # another job's batch, same size, just after
        with SQLiteStore(db) as store:
            report = client_for(emu, store).run(dataset(8), name="a",
                                                output=str(tmp_path / "a.jsonl"),
                                                poll_interval=0.01)
        assert foreign not in report.batch_ids and report.complete
        assert emu.batches_created == 2


class SlowClock(FakeClock):
    """The resume's clock: the killed process's batch appears while the store waits."""

    def __init__(self, appear: Any) -> None:
        super().__init__(now=__import__("time").time())
        self.appear = appear

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if len(self.sleeps) == 2:
            self.appear()


def test_a_create_still_being_made_when_the_job_resumes_is_waited_for(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    rows = dataset(8)
    with Emulator(rate=float("inf"), seed=9) as emu:
        with SQLiteStore(db) as store:  # the intent, and then the process died
            class Die:
                @hookimpl(trylast=True)
                def before_submit(self) -> None:
                    raise Interrupted("killed after the intent")

            with pytest.raises(Interrupted):
                client_for(emu, store, Die()).run(rows, name="slow",
                                                  output=str(tmp_path / "o.jsonl"))
        clock = SlowClock(lambda: client_for(emu).create(rows))  # the service catches up
        with SQLiteStore(db) as store:
            client = BatchClient(api_key="k", base_url=emu.url, clock=clock,
                                 load_entry_points=False, plugins=[store])
            report = client.run(rows, name="slow", output=str(tmp_path / "o.jsonl"),
                                poll_interval=0.01)
        assert report.complete and emu.batches_created == 1  # found, not sent again
        assert clock.sleeps[:2] == [2.0, 2.0]


def test_a_pipe_as_input_works_with_a_store(emulator: Emulator, tmp_path: Path) -> None:
    import threading

    fifo = tmp_path / "in.jsonl"
    os.mkfifo(fifo)
    rows = dataset(5)
    writer = threading.Thread(target=lambda: write_jsonl(fifo, rows))
    writer.start()
    with SQLiteStore(tmp_path / "jobs.db") as store:
        report = client_for(emulator, store).run(str(fifo), name="p",
                                                 output=str(tmp_path / "o.jsonl"),
                                                 poll_interval=0.01)
    writer.join(5)
    assert report.complete


def test_the_store_keeps_no_line_the_job_did_not_send(emulator: Emulator,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"

    class ReplaceTheOutput:  # someone puts another file in its place mid-run
        seen = 0

        @hookimpl(tryfirst=True)
        def on_result(self) -> None:
            self.seen += 1  # the job opens the output with its first line
            if self.seen == 2 and not (tmp_path / "moved").exists():
                (tmp_path / "moved").write_text("")
                other = tmp_path / "other.jsonl"
                other.write_text('{"custom_id":"zzz","result":{"type":"succeeded"}}\n')
                os.replace(other, out)

    with SQLiteStore(tmp_path / "jobs.db") as store:
        with pytest.raises(Exception, match="deleted or replaced"):
            client_for(emulator, store, ReplaceTheOutput()).run(
                dataset(), name="r", output=str(out), poll_interval=0.01)
        assert "zzz" not in {c for _, c, _ in store.results("r")}


def test_a_resumed_job_counts_the_passes_an_earlier_run_decided(tmp_path: Path) -> None:
    """The store answers a recorded decision: the retry figures still count that pass."""
    retry = pytest.importorskip("claudebatch_retry")
    with Emulator(rate=math.inf, seed=9, faults=Faults(errored=0.25)) as emu:
        with pytest.raises(Interrupted):  # the second pass decided and created, then a stop
            run(emu, SQLiteStore(tmp_path / "s.db"), tmp_path,
                retry.RetryPolicy(passes=1, pause=0), StopAt("after_submit", 4))
        emu.faults = Faults()
        policy = retry.RetryPolicy(passes=1, pause=0)
        report = run(emu, SQLiteStore(tmp_path / "s.db"), tmp_path, policy)
    assert report.passes == 2 and report.all_succeeded
    assert policy.extra_passes == 1 and policy.resubmitted > 0
    assert policy.recovered == policy.resubmitted


def test_a_late_transform_is_recorded_priced_and_sent_as_final(emulator: Emulator,
                                                              tmp_path: Path) -> None:
    """A transform added in before_submit (the docs' example): the body is written again,
    and every observer sees the final requests once."""
    import attrs

    class Tag:
        @hookimpl(tryfirst=True)
        def before_submit(self, requests: Any) -> None:
            requests.transform(lambda r: attrs.evolve(
                r, params={**r.params, "metadata": {"user_id": "batch-42"}}))

    store = SQLiteStore(tmp_path / "s.db")
    report = run(emulator, store, tmp_path, Tag(), source=dataset(30), max_batch=20)
    assert report.complete
    assert len(list(store.results("job"))) == 30  # every request recorded, every result kept
    params = [json.loads(p) for (p,) in store.conn.execute("SELECT params FROM requests")]
    assert len(params) == 30 and all(p["metadata"] == {"user_id": "batch-42"} for p in params)
