"""Each request is recorded as sent, before its batch's intent, whoever records it.

The SQLite store records a batch's requests in a thread that cuts them out of JSON in
SQL while the job writes the rest of the body; PostgreSQL records them inline. Either
way every request is in the store, in body order, before the create goes out, and a
failure to record them stops the job before anything is sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from claudebatch_sqlite import SQLiteStore

from claudebatch import BatchClient, ClaudeBatchError, Request
from claudebatch.emulator import Emulator
from claudebatch.store import StoreError, _rowwriter
from claudebatch.store._records import Records, split_request

from .helpers import dataset

pytestmark = pytest.mark.usefixtures("store_backend")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(rate=2000.0, seed=5) as emu:
        yield emu


def stored_requests(store: Any) -> List[Any]:
    return [tuple(r) for r in store.conn.execute(
        "SELECT pass, idx, pos, custom_id, params FROM requests ORDER BY pass, idx, pos")]


def test_every_request_is_recorded_as_sent_in_body_order_over_many_chunks(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_rowwriter, "ROWS_PER_CHUNK", 7)  # many chunks, the last one short
    import claudebatch.store._jobstore as jobstore
    monkeypatch.setattr(jobstore, "ROWS_PER_CHUNK", 7)
    rows = dataset(45)
    rows[3]["params"]["messages"][0]["content"] = "é 😀 \u2028 \"quoted\" \\ /"
    with SQLiteStore(tmp_path / "s.db") as store:
        client = BatchClient(api_key="emulator", base_url=emulator.url, plugins=[store],
                             load_entry_points=False)
        report = client.run(rows, name="j", output=str(tmp_path / "out.jsonl"),
                            poll_interval=0.005, max_batch_requests=20)
        assert report.counts == {"succeeded": 45}
        recorded = stored_requests(store)
    assert [(idx, pos) for _, idx, pos, _, _ in recorded] == \
        [(i // 20, i % 20) for i in range(45)]
    for (_, _, _, custom_id, params), row in zip(recorded, rows):
        assert custom_id == row["custom_id"] and json.loads(params) == row["params"]


class FailingRecords(Records):
    def add_request_pieces(self, *args: Any, **kwargs: Any) -> None:
        raise StoreError("the store test.db failed: disk I/O error (test)")


def test_requests_that_cannot_be_recorded_stop_the_job_before_anything_is_sent(
        emulator: Emulator, tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        store.rows.records = FailingRecords(store.db)
        client = BatchClient(api_key="emulator", base_url=emulator.url, plugins=[store],
                             load_entry_points=False)
        with pytest.raises(ClaudeBatchError, match="disk I/O error"):
            client.run(dataset(30), name="j", output=str(tmp_path / "out.jsonl"),
                       poll_interval=0.005, max_batch_requests=20)
        assert emulator.batch_ids == []
        assert store.conn.execute("SELECT count(*) FROM batches").fetchone()[0] == 0


def test_the_writer_records_chunks_in_order_and_raises_a_failure_once() -> None:
    done: List[Any] = []

    class Fake:
        def add_request_pieces(self, job_id: int, pass_number: int, index: int, start: int,
                               pieces: Any, *, first: bool) -> None:
            if pieces == [b"bad"]:
                raise StoreError("cannot (test)")
            done.append((index, start, list(pieces), first))

    import contextlib
    writer = _rowwriter.RowWriter(Fake(), contextlib.nullcontext,  # type: ignore[arg-type]
                                  threaded=True)
    for start in range(0, 20, 2):
        writer.put((1, 1, 0, start, [b"a", b"b"], start == 0))
    writer.wait()
    assert [start for _, start, _, _ in done] == list(range(0, 20, 2))
    writer.put((1, 1, 1, 0, [b"bad"], True))
    writer.put((1, 1, 1, 1, [b"after"], False))  # dropped: its batch is never sent
    with pytest.raises(StoreError, match="cannot"):
        writer.wait()
    writer.wait()  # raised once
    writer.put((1, 1, 2, 0, [b"c"], True))
    writer.wait()
    assert done[-1] == (2, 0, [b"c"], True) and len(done) == 11
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
