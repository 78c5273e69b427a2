"""``claudebatch cost NAME``: a stored job priced from the store, without the service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict

import claudebatch_cost.cli as cost_cli
import claudebatch_sqlite.plugin as sqlite_cli
import pytest
from claudebatch_cost import CostTracker
from claudebatch_cost.summary import usd
from claudebatch_sqlite import SQLiteStore

from claudebatch import BatchClient
from claudebatch.cli import main as cli_main
from claudebatch.emulator import Emulator, Faults


@pytest.fixture(autouse=True)
def cli_with_cost_and_store(install_cli: Callable[..., None]) -> None:
    """The CLI with both distributions installed."""
    install_cli(cost_cli, sqlite_cli)


def request(i: int) -> Dict[str, Any]:
    return {"custom_id": f"c-{i}", "params": {
        "model": "claude-sonnet-4-5" if i % 2 else "claude-haiku-4-5", "max_tokens": 64,
        "messages": [{"role": "user", "content": f"question {i} " * 20}]}}


def test_cost_of_a_stored_job_equals_what_the_tracker_saw(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store_path = str(tmp_path / "jobs.db")
    tracker = CostTracker()
    with Emulator(rate=float("inf"), seed=9, faults=Faults(errored=0.1)) as emu:
        client = BatchClient(api_key="k", base_url=emu.url, poll_interval=0.01,
                             load_entry_points=False,
                             plugins=[tracker, SQLiteStore(store_path, warn=False)])
        client.run([request(i) for i in range(120)], name="priced",
                   output=str(tmp_path / "out.jsonl"))
    capsys.readouterr()

    assert cli_main(["cost", "priced", "--store", store_path, "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["batch"] == usd(tracker.total_usd)
    assert figures["standard API"] == usd(tracker.standard_usd)
    models = [key for key in figures if key.startswith("claude-")]  # the per-model lines
    assert len(models) == 2


def test_cost_of_an_unknown_job_says_so(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    store_path = str(tmp_path / "jobs.db")
    SQLiteStore(store_path, warn=False).close()
    assert cli_main(["cost", "nope", "--store", store_path]) != 0
    assert "no job 'nope'" in capsys.readouterr().err
