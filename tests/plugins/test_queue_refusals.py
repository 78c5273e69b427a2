"""First-party plugins when the service refuses creates for a full queue: ``before_submit``
comes again for a refused batch, and each plugin does its one-time work once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import pytest

from claudebatch import BatchClient
from claudebatch._demo import support_tickets
from claudebatch.emulator import Emulator, ManualClock

cache_plugin = pytest.importorskip("claudebatch_cache")
cost_plugin = pytest.importorskip("claudebatch_cost")


def run(tmp_path: Path, queue_limit: Optional[int]) -> Tuple[Dict[str, Any], int]:
    clock = ManualClock()
    with Emulator(seed=11, rate=10.0, clock=clock, queue_limit=queue_limit) as emu:
        plugins = [cache_plugin.PromptCache(prime=True), cost_plugin.CostTracker()]
        client = BatchClient(api_key="emulator", base_url=emu.url, clock=clock,
                             plugins=plugins, poll_interval=1.0, load_entry_points=False)
        report = client.run(list(support_tickets(60, model="claude-sonnet-4-5")),
                            output=str(tmp_path / f"out-{queue_limit}.jsonl"),
                            max_batch_requests=20, max_in_flight=0)
        assert report.all_succeeded
        return report.plugins, emu.queue_refusals


def test_refused_creates_change_no_plugin_figure(tmp_path: Path) -> None:
    free, none_refused = run(tmp_path, None)
    full, refused = run(tmp_path, 25)  # 20-request batches: one at a time
    assert none_refused == 0 and refused >= 2
    assert full == free  # marks, primers, predictions, costs: as if never refused
    assert full["cache"]["requests_marked"] == 60 and full["cache"]["primers"] == 1
