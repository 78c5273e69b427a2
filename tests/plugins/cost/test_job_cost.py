"""The tracker answers ``job_cost``: the dollars so far that progress and telemetry show."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List

import pytest
from claudebatch_cost import CostTracker
from claudebatch_sqlite import SQLiteStore

from claudebatch import BatchClient
from claudebatch._progress import JsonProgress
from claudebatch.emulator import Emulator, Faults

from .test_jobs import rows


def events(stream: io.StringIO, kind: str) -> List[Dict[str, Any]]:
    found = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [event for event in found if event["event"] == kind]


def test_each_event_says_what_the_tracker_counted_so_far(tmp_path: Path) -> None:
    tracker, stream = CostTracker(), io.StringIO()
    with Emulator(rate=float("inf"), seed=5, faults=Faults(errored=0.2)) as emu:
        client = BatchClient(api_key="k", base_url=emu.url, load_entry_points=False,
                             plugins=[tracker, JsonProgress(stream)])
        report = client.run(rows(90), output=str(tmp_path / "a.jsonl"), poll_interval=0.01,
                            max_batch_requests=40)
        (end,) = events(stream, "job_end")
        assert tracker.job.batch_usd > 0
        assert end["cost_usd"] == round(float(tracker.job.batch_usd), 6)
        running = Decimal(0)  # each batch end: the batches ended so far
        for ended, batch_id in zip(events(stream, "batch_ended"), report.batch_ids):
            running += tracker.by_batch[batch_id].batch_usd
            assert ended["batch_id"] == batch_id
            assert ended["cost_usd"] == pytest.approx(float(running), abs=1e-6)

        stream.seek(0)
        stream.truncate()
        client.run(rows(10, model="claude-haiku-4-5"), output=str(tmp_path / "b.jsonl"),
                   poll_interval=0.01)
        first_poll = events(stream, "poll")[0]
        assert first_poll["cost_usd"] == 0.0  # a new job starts from nothing
        assert events(stream, "job_end")[0]["cost_usd"] == round(float(tracker.job.batch_usd),
                                                                 6)


def test_answers_reused_from_a_store_cost_nothing_now(tmp_path: Path) -> None:
    tracker, stream = CostTracker(), io.StringIO()
    store = SQLiteStore(tmp_path / "s.db")
    with Emulator(rate=float("inf"), seed=6) as emu:
        client = BatchClient(api_key="k", base_url=emu.url, load_entry_points=False,
                             plugins=[tracker, store, JsonProgress(stream)])
        client.run(rows(12), name="bought", output=str(tmp_path / "a.jsonl"),
                   poll_interval=0.01)
        stream.seek(0)
        stream.truncate()
        report = client.run(rows(12), name="again", output=str(tmp_path / "b.jsonl"),
                            poll_interval=0.01)
    assert report.reused == 12 and tracker.job_reused.batch_usd > 0
    assert events(stream, "job_end")[0]["cost_usd"] == 0.0


def test_a_running_job_shows_its_cost_so_far_in_the_store(tmp_path: Path) -> None:
    """``claudebatch jobs`` and the status page read a running job's dollars from the store."""
    from claudebatch import hookimpl

    tracker = CostTracker()
    store = SQLiteStore(tmp_path / "s.db")
    seen: List[Any] = []

    class Look:
        @hookimpl(trylast=True)
        def on_batch_end(self) -> None:  # after the store recorded the batch
            seen.append((store.job("priced").state, store.job("priced").cost,
                         float(tracker.job.batch_usd)))

    with Emulator(rate=float("inf"), seed=5) as emu:
        client = BatchClient(api_key="k", base_url=emu.url, load_entry_points=False,
                             plugins=[tracker, store, Look()])
        client.run(rows(80), name="priced", output=str(tmp_path / "a.jsonl"),
                   poll_interval=0.01, max_batch_requests=40)
    (state, cost, usd), _ = seen
    assert state == "running" and cost == f"${usd:,.4f} so far" and usd > 0
    final = store.job("priced")
    assert final.state == "done" and final.cost and not final.cost.endswith("so far")
