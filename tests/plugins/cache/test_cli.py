"""``--cache``, ``--cache-ttl``, ``--cache-prime`` and ``--no-cache`` on run and demo."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

import claudebatch_cache.cli as cache_cli
import pytest
from claudebatch_cache import PromptCache

import claudebatch.cli
from claudebatch._demo import SYSTEM_PROMPT
from claudebatch.emulator import Emulator


def parse(*argv: str, demo: bool = False) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cache_cli.add_cli_options(parser=parser)
    args = parser.parse_args(list(argv))
    args.demo = demo
    return args


def plugin_from(*argv: str, demo: bool = False) -> Optional[PromptCache]:
    found = cache_cli.plugins_from_cli(args=parse(*argv, demo=demo))
    if found is None:
        return None
    (cache,) = found
    assert isinstance(cache, PromptCache)
    return cache


def test_run_caches_only_when_asked() -> None:
    assert plugin_from() is None
    cache = plugin_from("--cache")
    assert cache is not None and (cache.ttl, cache.prime) == ("1h", False)


def test_options_map_to_the_constructor() -> None:
    cache = plugin_from("--cache-ttl", "5m", "--cache-prime")
    assert cache is not None and (cache.ttl, cache.prime) == ("5m", True)
    prime_only = plugin_from("--cache-prime")
    assert prime_only is not None and (prime_only.ttl, prime_only.prime) == ("1h", True)


def test_demo_runs_it_with_the_defaults_unless_no_cache() -> None:
    cache = plugin_from(demo=True)
    assert cache is not None and (cache.ttl, cache.prime) == ("1h", False)
    assert plugin_from("--no-cache", demo=True) is None


def test_a_ttl_the_api_does_not_know_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        parse("--cache-ttl", "10m")
    assert exc.value.code == 2


# --- through `claudebatch run`, against the emulator --------------------------------------

@pytest.fixture
def cli_with_cache(monkeypatch: pytest.MonkeyPatch, install_cli: Callable[..., None]) -> None:
    """The CLI with only this distribution installed."""
    install_cli(cache_cli)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "emulator")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(seed=3, rate=float("inf")) as emu:
        yield emu


def dataset(path: Path, count: int) -> str:
    with open(path, "w") as out:
        for i in range(count):
            out.write(json.dumps({"custom_id": f"t-{i}", "params": {
                "model": "claude-sonnet-4-5", "max_tokens": 16, "system": SYSTEM_PROMPT,
                "messages": [{"role": "user", "content": f"ticket {i}"}]}}) + "\n")
    return str(path)


def run(emulator: Emulator, tmp_path: Path, *options: str) -> int:
    return claudebatch.cli.main([
        "run", dataset(tmp_path / "in.jsonl", 30), "-o", str(tmp_path / "out.jsonl"),
        "--base-url", emulator.url, "--poll-interval", "0.01", "--quiet", *options])


def reads(tmp_path: Path) -> List[int]:
    with open(tmp_path / "out.jsonl") as handle:
        return [json.loads(line)["result"]["message"]["usage"]["cache_read_input_tokens"]
                for line in handle]


@pytest.mark.usefixtures("cli_with_cache")
def test_run_with_cache_prime(emulator: Emulator, tmp_path: Path, capsys: Any) -> None:
    assert run(emulator, tmp_path, "--cache-ttl", "5m", "--cache-prime") == 0
    printed = capsys.readouterr().out
    assert "cache: requests_marked 30" in printed and "hit_rate 1.0" in printed
    assert all(r > 0 for r in reads(tmp_path)) and emulator.batches_created == 2


@pytest.mark.usefixtures("cli_with_cache")
def test_run_without_options_sends_the_requests_as_they_are(
        emulator: Emulator, tmp_path: Path, capsys: Any) -> None:
    assert run(emulator, tmp_path) == 0
    assert "cache:" not in capsys.readouterr().out
    assert all(r == 0 for r in reads(tmp_path))


@pytest.mark.usefixtures("cli_with_cache")
def test_dry_run_prints_the_prediction(emulator: Emulator, tmp_path: Path, capsys: Any) -> None:
    code = claudebatch.cli.main(["run", dataset(tmp_path / "in.jsonl", 30), "--dry-run",
                                 "--base-url", emulator.url, "--cache"])
    assert code == 0
    assert "cache: requests_marked 30, groups 1" in capsys.readouterr().out
    assert emulator.batches_created == 0
