"""The store's small parts: fingerprints, the create search, what results are kept."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from claudebatch import MessageBatch, RequestCounts
from claudebatch.store._fingerprint import Fingerprint, difference
from claudebatch.store._recovery import find_created_batch

T0 = 1_700_000_000.0


def test_fingerprint_differences_name_what_changed() -> None:
    base = Fingerprint("file", "aa" * 32, 10, {"max_batch_requests": 5, "max_batch_bytes": 9})
    assert difference(base, base) is None
    assert difference(base, Fingerprint("file", "bb" * 32, 10, base.options)) == (
        "the input file's content changed (sha256 aaaaaaaaaaaa... before, bbbbbbbbbbbb... now)")
    assert difference(base, Fingerprint("file", "aa" * 32, 11, base.options)) == (
        "it had 10 requests and now has 11")
    assert "max_batch_requests was 5 and is now 6" in str(difference(
        base, Fingerprint("file", "aa" * 32, 10, {**base.options, "max_batch_requests": 6})))
    # contents read differently (a file, then a generator): left to the custom_id check
    assert difference(base, Fingerprint("stream", None, 10, base.options)) is None
    assert Fingerprint.from_json(base.to_json()) == base
    assert base.digest.startswith("sha256:") and base.digest != Fingerprint(
        "items", "aa" * 32, 10, base.options).digest


def batch(batch_id: str, created: float, total: int) -> MessageBatch:
    when = dt.datetime.fromtimestamp(created, dt.timezone.utc)
    return MessageBatch(id=batch_id, processing_status="in_progress",
                        request_counts=RequestCounts(processing=total), created_at=when,
                        expires_at=when + dt.timedelta(days=1))


class Listing:
    def __init__(self, batches: List[MessageBatch]) -> None:
        self.batches = sorted(batches, key=lambda b: b.created_at, reverse=True)
        self.listed = 0

    def list(self, limit: Any = None) -> Iterator[MessageBatch]:
        for item in self.batches:
            self.listed += 1
            yield item


def test_the_create_search_skips_known_batches_and_other_sizes() -> None:
    client = Listing([batch("old", T0 - 5000, 8), batch("sibling", T0 - 1, 8),
                      batch("other-size", T0 + 1, 7), batch("made", T0 + 2, 8),
                      batch("foreign-later", T0 + 500, 8)])
    found = find_created_batch(client, T0, 8, exclude={"sibling"})
    assert found is not None and found.id == "made"  # the closest to the intent
    assert client.listed == 5  # stops at the first batch older than the window
    assert find_created_batch(client, T0, 8, exclude={"sibling", "made", "foreign-later"}) \
        is None
    assert find_created_batch(client, T0 - 90_000, 8, exclude=set()) is None  # long before


def test_only_results_of_requests_the_job_sent_are_stored(tmp_path: Path) -> None:
    from claudebatch_sqlite.database import SQLiteDatabase

    from claudebatch import Request
    from claudebatch.store._records import Records

    records = Records(SQLiteDatabase(str(tmp_path / "s.db")))
    job = records.create_job("j", Fingerprint("items", "x", 1), {}, "o.jsonl", T0)
    records.record_intent(job, 1, 0, 1, T0, [Request("a", {"model": "m"})])
    line = b'{"custom_id":"%s","result":{"type":"succeeded"}}'
    records.insert_results(job, 1, [("a", "succeeded", line % b"a"),
                                    ("zzz", "succeeded", line % b"zzz")])
    assert [c for _, c, _ in records.stored_results(job)] == ["a"]


def test_results_are_checked_against_the_requests_many_at_a_time(tmp_path: Path) -> None:
    """Over several lookups (the last one short), every sent request's result is stored
    once, a stored one is replaced in place, and no other custom_id gets in."""
    from claudebatch_sqlite.database import SQLiteDatabase

    from claudebatch import Request
    from claudebatch.store._records import LOOKUP_IDS, Records

    records = Records(SQLiteDatabase(str(tmp_path / "s.db")))
    job = records.create_job("j", Fingerprint("items", "x", 1), {}, "o.jsonl", T0)
    sent = [f"r{i:05d}" for i in range(2 * LOOKUP_IDS + 7)]
    records.record_intent(job, 1, 0, len(sent), T0, [Request(c, {"model": "m"}) for c in sent])
    line = b'{"custom_id":"%s","result":{"type":"%s"}}'
    rows = [(c, "errored", line % (c.encode(), b"errored")) for c in sent]
    rows[LOOKUP_IDS:LOOKUP_IDS] = [("stray", "succeeded", line % (b"stray", b"succeeded"))]
    rows.append(("r99999", "succeeded", line % (b"r99999", b"succeeded")))
    records.insert_results(job, 1, rows)
    records.insert_results(job, 2, [(sent[0], "succeeded", b"{}")])  # not sent in pass 2
    records.insert_results(job, 1, [(sent[3], "succeeded", line % (b"again", b"succeeded"))])
    stored = list(records.stored_results(job))
    assert [c for _, c, _ in stored] == sent  # in stored order, each once, pass 1 only
    assert stored[3][2] == line % (b"again", b"succeeded")
    assert records.latest_counts(job) == {"errored": len(sent) - 1, "succeeded": 1}


def test_a_jobs_counts_are_its_latest_attempts_in_one_pass_or_many(tmp_path: Path) -> None:
    """A job stored in one pass is counted from the index alone; once a later pass holds
    some custom_ids, each counts by its latest attempt."""
    from claudebatch_sqlite.database import SQLiteDatabase

    from claudebatch import Request
    from claudebatch.store._records import Records

    records = Records(SQLiteDatabase(str(tmp_path / "s.db")))
    job = records.create_job("j", Fingerprint("items", "x", 1), {}, "o.jsonl", T0)
    assert records.latest_counts(job) == {}
    sent = [f"r{i}" for i in range(5)]
    records.record_intent(job, 1, 0, 5, T0, [Request(c, {"model": "m"}) for c in sent])
    records.insert_results(job, 1, [(c, "errored" if c in ("r1", "r3") else "succeeded", b"{}")
                                    for c in sent])
    assert records.latest_counts(job) == {"errored": 2, "succeeded": 3}
    records.record_intent(job, 2, 0, 2, T0, [Request(c, {"model": "m"}) for c in ("r1", "r3")])
    records.insert_results(job, 2, [("r1", "succeeded", b"{}"), ("r3", "expired", b"{}")])
    assert records.latest_counts(job) == {"expired": 1, "succeeded": 4}


@pytest.mark.parametrize("custom_id, params", [
    ("req-0000001", {"model": "m", "messages": [{"role": "user", "content": "\"params\":"}]}),
    ('odd","params":', {"n": 1}),  # never the service's, but cut right: parsed
    ("back\\slash", {"x": [1.5, None, "é"]}),
])
def test_a_request_recorded_from_its_body_bytes_is_the_request_sent(
        custom_id: str, params: Dict[str, Any]) -> None:
    from claudebatch import _json
    from claudebatch.store._records import params_text, split_request

    data = _json.dumps({"custom_id": custom_id, "params": params})
    assert split_request(data) == (custom_id, params_text(params))
    assert split_request(b'{"params": {"n": 1}, "custom_id": "x"}') == ("x", '{"n":1}')
