"""``--budget`` / ``--pricing`` through ``claudebatch run`` and ``demo``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from claudebatch_cost import CostTracker
from claudebatch_cost import cli as cost_cli

import claudebatch.cli
from claudebatch.emulator import Emulator


@pytest.fixture(autouse=True)
def cli_with_cost(monkeypatch: pytest.MonkeyPatch, install_cli: Callable[..., None]) -> None:
    """The CLI with only this distribution installed."""
    install_cli(cost_cli)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(seed=5, rate=float("inf")) as emu:
        yield emu


def dataset(path: Path, count: int, model: str = "claude-haiku-4-5") -> str:
    with open(path, "w") as out:
        for i in range(count):
            out.write(json.dumps({"custom_id": f"q-{i}", "params": {
                "model": model, "max_tokens": 100,
                "messages": [{"role": "user", "content": "x" * 396}]}}) + "\n")
    return str(path)


def run(emulator: Emulator, tmp_path: Path, *options: str, model: str = "claude-haiku-4-5"
        ) -> int:
    return claudebatch.cli.main([
        "run", dataset(tmp_path / "in.jsonl", 40, model), "-o", str(tmp_path / "out.jsonl"),
        "--base-url", emulator.url, "--poll-interval", "0.01", "--quiet", *options])


def test_run_prints_the_cost_beside_the_standard_price(emulator: Emulator, tmp_path: Path,
                                                       capsys: Any) -> None:
    assert run(emulator, tmp_path) == 0
    out = capsys.readouterr().out
    assert "cost: batch $" in out and "standard API $" in out and "saved $" in out


def test_run_over_budget_sends_nothing_and_says_why(emulator: Emulator, tmp_path: Path,
                                                    capsys: Any) -> None:
    # 40 requests x (102 input x $1 + 100 output x $5) / 1M / 2 = $0.01204 worst case
    # (input: 3 tokens of framing + 396 / 4, the core's rule, as the emulator counts)
    assert run(emulator, tmp_path, "--budget", "0.01") == claudebatch.cli.EXIT_API_ERROR
    err = capsys.readouterr().err
    assert "worst-case estimate is $0.0120" in err and "budget of $0.0100" in err
    assert emulator.batches_created == 0


def test_run_within_budget_shows_what_is_left(emulator: Emulator, tmp_path: Path,
                                              capsys: Any) -> None:
    assert run(emulator, tmp_path, "--budget", "$0.05") == 0
    assert "budget $0.0500 ($0.0" in capsys.readouterr().out


def test_dry_run_prints_the_estimate(tmp_path: Path, capsys: Any) -> None:
    code = claudebatch.cli.main(["run", dataset(tmp_path / "in.jsonl", 40), "--dry-run",
                                 "--expected-output", "0.2", "--budget", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "cost: worst case $0.0120 (batch price, output at max_tokens)" in out
    # 40 x (102 x $1 + 20 x $5) / 1M / 2 = $0.00404
    assert "expected $0.0040 (repeated prefixes read from the cache, output at 20% of " in out
    assert "budget $1.0000: within" in out


def test_pricing_file_prices_a_model_the_table_lacks(emulator: Emulator, tmp_path: Path,
                                                    capsys: Any) -> None:
    prices = tmp_path / "prices.csv"
    prices.write_text("model,input,output\nclaude-opus-9,4,20\n")
    assert run(emulator, tmp_path, "--pricing", str(prices), "--budget", "1",
               model="claude-opus-9") == 0
    out = capsys.readouterr().out
    assert "cost: batch $" in out and "unknown" not in out


def test_a_missing_pricing_file_is_a_usage_error(tmp_path: Path, capsys: Any) -> None:
    code = claudebatch.cli.main(["run", dataset(tmp_path / "in.jsonl", 1), "--dry-run",
                                 "--pricing", str(tmp_path / "nope.json")])
    assert code == claudebatch.cli.EXIT_USAGE
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize("budget", ["-1", "lots", "nan"])
def test_a_bad_budget_is_a_usage_error(budget: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        claudebatch.cli.main(["run", "in.jsonl", "--dry-run", "--budget", budget])
    assert exc.value.code == 2


def test_the_demo_runs_with_a_default_tracker(tmp_path: Path, capsys: Any) -> None:
    args = argparse.Namespace(demo=True)
    (tracker,) = cost_cli.plugins_from_cli(args) or ()
    assert isinstance(tracker, CostTracker) and tracker.budget_usd is None
    code = claudebatch.cli.main(["demo", "--requests", "30", "--quiet",
                                 "-o", str(tmp_path / "demo.jsonl")])
    assert code == 0
    assert "cost: batch $" in capsys.readouterr().out
