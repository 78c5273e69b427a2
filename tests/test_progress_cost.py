"""Dollars so far in every progress display, read through ``context.cost_usd()``.

A stand-in cost plugin answers the ``job_cost`` hook here (the core knows no cost
plugin); ``tests/plugins/cost`` checks claudebatch-cost's own answer.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from rich.console import Console

from claudebatch import BatchClient, JobContext, hookimpl
from claudebatch._progress import BarProgress, JsonProgress, Progress
from claudebatch.emulator import Emulator, Faults

CENTS_PER_RESULT = 0.0125


def request(i: int) -> Dict[str, Any]:
    return {"custom_id": f"r-{i}", "params": {
        "model": "claude-haiku-4-5", "max_tokens": 16,
        "messages": [{"role": "user", "content": "hello"}]}}


class FlatFee:
    """Charges the same for every succeeded result, and says so through ``job_cost``."""

    def __init__(self) -> None:
        self.spent = 0.0
        self.asked = 0

    @hookimpl
    def on_job_start(self) -> None:
        self.spent = 0.0

    @hookimpl
    def on_result(self, result: Any, context: Any) -> None:
        if isinstance(context, JobContext) and not context.reusing \
                and result.type == "succeeded":
            self.spent += CENTS_PER_RESULT

    @hookimpl
    def job_cost(self, context: JobContext) -> Optional[float]:
        self.asked += 1
        return self.spent


def run(plugins: List[Any], tmp_path: Path, count: int = 20, **faults: float) -> Any:
    with Emulator(rate=float("inf"), seed=4, faults=Faults(**faults)) as emu:
        client = BatchClient(api_key="k", base_url=emu.url, plugins=plugins,
                             load_entry_points=False)
        return client.run([request(i) for i in range(count)], name="costed",
                          output=str(tmp_path / "o.jsonl"), poll_interval=0.01,
                          max_batch_requests=8)


def events(stream: io.StringIO) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_events_carry_the_dollars_so_far(tmp_path: Path) -> None:
    stream = io.StringIO()
    fee = FlatFee()
    report = run([fee, JsonProgress(stream)], tmp_path, errored=0.3)
    found = events(stream)
    costed = {"poll", "batch_ended", "pass_end", "job_end"}
    for event in found:
        assert ("cost_usd" in event) == (event["event"] in costed), event
    spent = [e["cost_usd"] for e in found if "cost_usd" in e]
    assert spent == sorted(spent)  # it only grows
    end = found[-1]
    assert end["event"] == "job_end"
    assert end["cost_usd"] == pytest.approx(report.counts["succeeded"] * CENTS_PER_RESULT)
    ended = [e for e in found if e["event"] == "batch_ended"]
    assert len(ended) == 3
    for event in ended:  # each batch end: the results written so far, priced
        assert event["cost_usd"] <= event["results_written"] * CENTS_PER_RESULT + 1e-9
    assert ended[-1]["cost_usd"] == end["cost_usd"]
    assert fee.asked >= len(spent)


def test_without_a_cost_plugin_nothing_about_dollars_is_shown(tmp_path: Path) -> None:
    stream, lines = io.StringIO(), io.StringIO()
    run([JsonProgress(stream), Progress(lines, interval=0.0)], tmp_path)
    assert not any("cost_usd" in event for event in events(stream))
    assert "$" not in lines.getvalue() and "so far" not in lines.getvalue()


def test_the_plain_line_says_what_was_spent(tmp_path: Path) -> None:
    lines = io.StringIO()
    report = run([FlatFee(), Progress(lines, interval=0.0)], tmp_path)
    last = lines.getvalue().splitlines()[-1]
    total = report.counts["succeeded"] * CENTS_PER_RESULT
    assert last.startswith("pass 1: 20/20 requests done, 20 results written, batches: 0 in "
                           "flight, 3 ended, ")
    assert f"${total:,.4f} so far, " in last


def test_the_bar_shows_the_dollars_so_far(tmp_path: Path) -> None:
    screen = io.StringIO()
    bar = BarProgress(Console(file=screen, force_terminal=True, width=200))
    report = run([FlatFee(), bar], tmp_path, count=12)
    frames = screen.getvalue().split("pass 1")[1:]
    total = report.counts["succeeded"] * CENTS_PER_RESULT
    assert f"batches: 0 in flight, 2 ended  ${total:,.4f}" in frames[-1]
    waiting = [frame for frame in frames if "0 ended" in frame]
    assert waiting and not any("$" in frame for frame in waiting)  # nothing priced yet
