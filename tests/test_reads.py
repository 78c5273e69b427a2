"""Each request of a pass is read from the spool once, whatever the plugins: the four
first-party plugins observe it as its body is written instead of reading it again."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any, Iterator, Tuple

import pytest
from claudebatch_cache import PromptCache
from claudebatch_cost import CostTracker
from claudebatch_retry import RetryPolicy
from claudebatch_sqlite import SQLiteStore

import claudebatch._spool as spool_module
from claudebatch import BatchClient, Request
from claudebatch._demo import support_tickets
from claudebatch.emulator import Emulator


def test_one_read_per_request_per_pass_with_every_plugin(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: collections.Counter[str] = collections.Counter()
    parse, scan = spool_module.Spool.requests, spool_module.Spool.custom_ids

    def requests(self: Any, start: int, end: int) -> Iterator[Request]:
        for request in parse(self, start, end):
            reads["parsed"] += 1
            yield request

    def custom_ids(self: Any, start: int, end: int) -> Iterator[Tuple[str, int, bytes]]:
        for found in scan(self, start, end):
            reads["scanned"] += 1
            yield found

    monkeypatch.setattr(spool_module.Spool, "requests", requests)
    monkeypatch.setattr(spool_module.Spool, "custom_ids", custom_ids)
    count = 1500
    with Emulator(rate=float("inf"), seed=1) as emu:
        client = BatchClient(api_key="k", base_url=emu.url, poll_interval=0.01,
                             load_entry_points=False,
                             plugins=[SQLiteStore(tmp_path / "s.db"), CostTracker(),
                                      PromptCache(), RetryPolicy(passes=0)])
        report = client.run(list(support_tickets(count)), output=str(tmp_path / "o.jsonl"),
                            max_batch_requests=500)
    assert report.complete and report.passes == 1 and len(report.batch_ids) == 3
    assert report.plugins["cache"]["requests_marked"] == count  # the cache still marks
    assert reads["parsed"] == count  # each request parsed once: as its body is written
    assert reads["scanned"] == count  # and its custom_id read once, as its result comes
