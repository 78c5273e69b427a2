"""Each request is recorded as sent, whoever records it, and none is lost to a crash.

The SQLite store records a batch's requests in a thread that cuts them out of JSON in
SQL while the create goes out; PostgreSQL records them inline, before the intent. A run
stopped before they were all recorded leaves them to the run that resumes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from claudebatch_sqlite import SQLiteStore

from claudebatch import BatchClient, ClaudeBatchError, Request
from claudebatch._spool import Spool
from claudebatch.emulator import Emulator
from claudebatch.store import StoreError, _rowwriter
from claudebatch.store._records import split_request

from .helpers import dataset

pytestmark = pytest.mark.usefixtures("store_backend")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(rate=2000.0, seed=5) as emu:
        yield emu


def stored_requests(store: Any) -> List[Any]:
    return [tuple(r) for r in store.conn.execute(
        "SELECT pass, idx, pos, custom_id, params FROM requests ORDER BY pass, idx, pos")]


def run_and_read(emulator: Emulator, tmp_path: Path, rows: List[Any], max_batch: int
                 ) -> List[Any]:
    """Run ``rows`` as one job with the store, every answer succeeded; the rows recorded."""
    with SQLiteStore(tmp_path / "s.db") as store:
        client = BatchClient(api_key="emulator", base_url=emulator.url, plugins=[store],
                             load_entry_points=False)
        report = client.run(rows, name="j", output=str(tmp_path / "out.jsonl"),
                            poll_interval=0.005, max_batch_requests=max_batch)
        assert report.counts == {"succeeded": len(rows)}
        return stored_requests(store)


def test_every_request_is_recorded_as_sent_in_body_order_over_many_chunks(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_rowwriter, "ROWS_PER_CHUNK", 7)  # many chunks, the last one short
    rows = dataset(45)
    rows[3]["params"]["messages"][0]["content"] = "é 😀 \u2028 \"quoted\" \\ /"
    recorded = run_and_read(emulator, tmp_path, rows, max_batch=20)
    assert [(idx, pos) for _, idx, pos, _, _ in recorded] == \
        [(i // 20, i % 20) for i in range(45)]
    for (_, _, _, custom_id, params), row in zip(recorded, rows):
        assert custom_id == row["custom_id"] and json.loads(params) == row["params"]


def failing(*args: Any, **kwargs: Any) -> None:
    raise StoreError("the store test.db failed: disk I/O error (test)")


def test_requests_that_could_not_be_recorded_are_recorded_by_the_run_that_resumes(
        emulator: Emulator, tmp_path: Path) -> None:
    """The first run stops on the failure: before anything is sent where the rows are
    recorded before the intent (PostgreSQL), or once its batch is created and recorded
    where they are recorded during the create (SQLite). The next run finishes the job
    with every request recorded and no batch made twice."""
    rows = dataset(30)
    output = str(tmp_path / "out.jsonl")
    with SQLiteStore(tmp_path / "s.db") as store:
        store.records.add_request_pieces = failing  # type: ignore[method-assign]
        client = BatchClient(api_key="emulator", base_url=emulator.url, plugins=[store],
                             load_entry_points=False)
        with pytest.raises(ClaudeBatchError, match="disk I/O error"):
            client.run(rows, name="j", output=output, poll_interval=0.005,
                       max_batch_requests=20)
        made = len(emulator.batch_ids)
        assert made <= 1
    with SQLiteStore(tmp_path / "s.db") as store:
        client = BatchClient(api_key="emulator", base_url=emulator.url, plugins=[store],
                             load_entry_points=False)
        report = client.run(rows, name="j", output=output, poll_interval=0.005,
                            max_batch_requests=20)
        assert report.counts == {"succeeded": 30}
        assert len(emulator.batch_ids) == 2  # the first run's batch was taken up
        recorded = stored_requests(store)
        assert [c for _, _, _, c, _ in recorded] == [r["custom_id"] for r in rows]
        assert store.job("j").counts == {"succeeded": 30}
    lines = [json.loads(line) for line in Path(output).read_text().splitlines()]
    assert sorted(v["custom_id"] for v in lines) == sorted(r["custom_id"] for r in rows)


def test_the_writer_runs_tasks_in_order_and_raises_a_failure_once() -> None:
    done: List[int] = []

    def task(n: int) -> Any:
        def run() -> None:
            if n < 0:
                raise StoreError("cannot (test)")
            done.append(n)
        return run

    writer = _rowwriter.RowWriter(threaded=True)
    for n in range(10):
        writer.put(task(n))
    writer.wait()
    assert done == list(range(10))
    writer.put(task(-1))
    writer.put(task(99))  # dropped: after a failure
    with pytest.raises(StoreError, match="cannot"):
        writer.wait()
    writer.wait()  # raised once
    writer.put(task(10))
    assert writer.settle() is None and done[-1] == 10 and 99 not in done
    writer.stop()


@pytest.mark.sqlite_only
@pytest.mark.parametrize("piece", [
    b'{"custom_id":"a","params":{"s":"\xc3\xa9 \\u2028 \\"q\\" \\\\ \\/ \\n \\u0000 \\ud800"}}',
    b'{"custom_id":"b","params":{"n":[1.0,-0.0,1e300,123456789012345678901234,1.5E+3]}}',
    b'{"custom_id":"c","params":{"deep":[[[{"a":{}}]]],"e":[],"o":{}}}',
    '{"custom_id":"d","params":{"x":"é😀"}}'.encode(),
])
def test_sqlite_cuts_out_of_json_exactly_what_the_body_carries(tmp_path: Path,
                                                               piece: bytes) -> None:
    from claudebatch.store._fingerprint import Fingerprint

    with SQLiteStore(tmp_path / "s.db") as store:
        records = store.records
        job = records.create_job("j", Fingerprint("items", "x", 1), {}, "o.jsonl", 0.0)
        records.add_request_pieces(job, 1, 0, 0, [piece], first=True)
        (custom_id, params), = store.conn.execute(
            "SELECT custom_id, params FROM requests WHERE pos = 0").fetchall()
    assert (custom_id, params) == split_request(piece)


@pytest.mark.sqlite_only
def test_a_request_sqlites_json_cannot_read_is_parsed_in_python(tmp_path: Path) -> None:
    from claudebatch.store._fingerprint import Fingerprint

    with SQLiteStore(tmp_path / "s.db") as store:
        records = store.records
        job = records.create_job("j", Fingerprint("items", "x", 1), {}, "o.jsonl", 0.0)
        pieces = [b'{"custom_id":"a","params":{"n":1}}', b'{"custom_id":"b","params":{"n":NaN}}']
        records.add_request_pieces(job, 1, 0, 0, pieces, first=True)
        assert stored_requests(store) == [(1, 0, 0, "a", '{"n":1}'), (1, 0, 1, "b", '{"n":NaN}')]


def test_a_batch_written_again_replaces_what_was_recorded(tmp_path: Path) -> None:
    from claudebatch.store._fingerprint import Fingerprint

    with SQLiteStore(tmp_path / "s.db") as store:
        records = store.records
        job = records.create_job("j", Fingerprint("items", "x", 1), {}, "o.jsonl", 0.0)
        old = [Request(f"r{i}", {"n": i}) for i in range(3)]
        records.record_intent(job, 1, 0, 3, 0.0, old)
        records.add_request_pieces(job, 1, 0, 0, [b'{"custom_id":"new","params":{"n":9}}'],
                                   first=True)
        assert stored_requests(store) == [(1, 0, 0, "new", '{"n":9}')]


@pytest.mark.sqlite_only
def test_a_pass_of_many_batches_spools_its_requests_in_one_file(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every body of a pass is written before its first create: a file per batch for its
    requests held a descriptor per batch on top of the bodies' own (a pass of 600 batches
    ran out of a 1,024-descriptor limit)."""
    from claudebatch.store import _jobstore

    opened: List[Any] = []

    class Counted(Spool):
        def __init__(self) -> None:
            super().__init__()
            opened.append(self._file)

    monkeypatch.setattr(_jobstore, "Spool", Counted)
    rows = dataset(60)
    recorded = run_and_read(emulator, tmp_path, rows, max_batch=5)
    assert len(opened) == 1 and all(f.closed for f in opened)
    assert [(idx, pos) for _, idx, pos, _, _ in recorded] == [(i // 5, i % 5) for i in range(60)]
    for (_, _, _, custom_id, params), row in zip(recorded, rows):
        assert custom_id == row["custom_id"] and json.loads(params) == row["params"]


def test_the_spool_gives_back_each_stretch_line_by_line(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """The row thread reads back a batch's stretches of the pass's spool while the job may
    append: a stretch on disk is read without touching what is appended after it."""
    from claudebatch import _spool

    monkeypatch.setattr(_spool, "READ_SIZE", 7)  # lines longer than a read
    spool = Spool()
    lines = [b'{"custom_id":"a%d","params":{"n":"%s"}}' % (i, b"x" * i) for i in range(12)]
    ends = []
    for line in lines:
        spool.append(line)
        ends.append(spool.tell())
    starts = [0, *ends[:-1]]
    spool.flush()
    spool.append(b'{"custom_id":"later","params":{}}')  # held in memory, not on disk yet
    assert [*spool.lines(starts[3], ends[6]), *spool.lines(starts[9], ends[10])] == \
        lines[3:7] + lines[9:11]
    assert spool._buffer  # reading what was on disk did not write out the rest
    assert list(spool.lines(ends[11], ends[11])) == []
    spool.close()


def test_a_create_refused_drops_its_intent_even_when_its_requests_failed_to_record(
        emulator: Emulator, tmp_path: Path) -> None:
    """A 429 made nothing: its intent goes, as it does when the rows are recorded, and
    the failure is raised; left behind, a resume waited 30 s for that create to be
    listed before sending the batch."""
    rows = dataset(20)
    output = str(tmp_path / "out.jsonl")
    emulator.inject("rate_limit", endpoint="create")
    with SQLiteStore(tmp_path / "s.db") as store:
        store.records.add_request_pieces = failing  # type: ignore[method-assign]
        client = BatchClient(api_key="emulator", base_url=emulator.url, plugins=[store],
                             load_entry_points=False)
        with pytest.raises(ClaudeBatchError, match="disk I/O error"):
            client.run(rows, name="j", output=output, poll_interval=0.005)
        assert list(store.conn.execute("SELECT idx FROM batches")) == []
    with SQLiteStore(tmp_path / "s.db", unconfirmed_grace=300.0) as store:
        client = BatchClient(api_key="emulator", base_url=emulator.url, plugins=[store],
                             load_entry_points=False)
        report = client.run(rows, name="j", output=output, poll_interval=0.005)
        assert report.counts == {"succeeded": 20} and len(emulator.batch_ids) == 1
        assert [c for _, _, _, c, _ in stored_requests(store)] == [r["custom_id"] for r in rows]


@pytest.mark.parametrize("stop", [ConnectionResetError("connection lost (test)"),
                                  KeyboardInterrupt()])
def test_a_failure_to_record_never_fails_the_next_job_on_the_store(
        emulator: Emulator, tmp_path: Path, stop: BaseException) -> None:
    """A create that failed (no batch id to record) or an interrupt left the row thread's
    failure unsettled: it was raised in the next job the process ran on the store."""
    rows = dataset(20)
    with SQLiteStore(tmp_path / "s.db") as store:
        store.records.add_request_pieces = failing  # type: ignore[method-assign]
        client = BatchClient(api_key="emulator", base_url=emulator.url, plugins=[store],
                             load_entry_points=False)
        real = client._post_batch

        def post(*args: Any, **kwargs: Any) -> Any:
            raise stop

        client._post_batch = post  # type: ignore[method-assign]
        with pytest.raises((type(stop), StoreError)):  # PostgreSQL: before the create
            client.run(rows, name="one", output=str(tmp_path / "one.jsonl"),
                       poll_interval=0.005)
        del store.records.add_request_pieces
        client._post_batch = real  # type: ignore[method-assign]
        for name in ("two", "one"):  # another job; then the first, resumed
            report = client.run(rows, name=name, output=str(tmp_path / f"{name}.jsonl"),
                                poll_interval=0.005)
            assert report.counts == {"succeeded": 20}
