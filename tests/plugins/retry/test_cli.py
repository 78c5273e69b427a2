"""``--resubmit``, ``--retry-canceled`` and ``--http-*`` on ``claudebatch run`` and ``demo``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable, Iterator, List

import claudebatch_retry.cli as retry_cli
import pytest
from claudebatch_retry import HttpRetry, RetryPolicy

import claudebatch.cli
from claudebatch.emulator import Emulator, Faults


def parse(*argv: str, demo: bool = False) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-retries", type=int, default=None)
    retry_cli.add_cli_options(parser=parser)
    args = parser.parse_args(list(argv))
    args.demo = demo
    return args


def policy_from(*argv: str, demo: bool = False) -> RetryPolicy:
    found = retry_cli.plugins_from_cli(args=parse(*argv, demo=demo))
    assert found is not None and len(found) == 1
    return found[0]


def test_the_policy_is_off_unless_asked() -> None:
    assert retry_cli.plugins_from_cli(args=parse()) is None


def test_demo_runs_it_with_the_defaults() -> None:
    policy = policy_from(demo=True)
    assert (policy.passes, policy.retry_canceled, policy.pause, policy.http) == (
        2, False, 60.0, None)


def test_options_map_to_the_constructor() -> None:
    policy = policy_from("--resubmit", "3", "--retry-canceled", "--retry-pause", "5")
    assert (policy.passes, policy.retry_canceled, policy.pause, policy.http) == (
        3, True, 5.0, None)
    assert policy_from("--retry-canceled").passes == 2


def test_http_options_configure_the_http_schedule_and_max_retries() -> None:
    args = parse("--http-attempts", "7", "--http-initial-delay", "1", "--http-max-delay", "20",
                 "--http-jitter", "0", "--http-statuses", "429,529", "--http-budget", "120")
    (policy,) = retry_cli.plugins_from_cli(args=args) or []
    assert policy.http == HttpRetry(attempts=7, initial_delay=1, max_delay=20, jitter=0,
                                    statuses=frozenset({429, 529}), budget=120)
    assert args.max_retries == 6  # the transport allows the attempts asked for
    given = parse("--http-attempts", "7", "--max-retries", "2")
    retry_cli.plugins_from_cli(args=given)
    assert given.max_retries == 2  # an explicit --max-retries stands (and caps)


def test_one_http_option_keeps_the_other_defaults() -> None:
    policy = policy_from("--http-max-delay", "0.2")
    assert policy.http == HttpRetry(initial_delay=0.2, max_delay=0.2)


@pytest.mark.parametrize("argv", [["--resubmit", "10"], ["--resubmit", "-1"],
                                  ["--resubmit", "two"], ["--retry-pause", "-3"],
                                  ["--http-attempts", "0"], ["--http-jitter", "2"],
                                  ["--http-statuses", "200"], ["--http-statuses", "5xx"]])
def test_bad_values_are_usage_errors(argv: List[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2


# --- through `claudebatch run`, against the emulator --------------------------------------

@pytest.fixture
def cli_with_retry(install_cli: Callable[..., None]) -> None:
    """The CLI with only this distribution installed."""
    install_cli(retry_cli)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(seed=5, rate=float("inf"), faults=Faults(errored=0.2)) as emu:
        yield emu


def dataset(path: Path, count: int) -> str:
    with open(path, "w") as out:
        for i in range(count):
            out.write(json.dumps({"custom_id": f"q-{i}", "params": {
                "model": "claude-haiku-4-5", "max_tokens": 8,
                "messages": [{"role": "user", "content": f"question {i}"}]}}) + "\n")
    return str(path)


def run(emulator: Emulator, tmp_path: Path, *options: str) -> int:
    return claudebatch.cli.main([
        "run", dataset(tmp_path / "in.jsonl", 40), "-o", str(tmp_path / "out.jsonl"),
        "--base-url", emulator.url, "--poll-interval", "0.01", "--quiet", *options])


def output_ids(tmp_path: Path) -> List[str]:
    with open(tmp_path / "out.jsonl") as handle:
        return [json.loads(line)["custom_id"] for line in handle]


@pytest.mark.usefixtures("cli_with_retry")
def test_run_with_resubmit(emulator: Emulator, tmp_path: Path, capsys: Any,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "emulator")
    code = run(emulator, tmp_path, "--resubmit", "4", "--retry-pause", "0")
    printed = capsys.readouterr().out
    # seed 5, 20% errored: 8 failed in pass 1, and some of those again in pass 2
    assert code == 0 and emulator.batches_created == 3
    assert "retry: extra_passes 2, resubmitted 8, recovered 8, failed_for_good 0" in printed
    ids = output_ids(tmp_path)
    assert sorted(ids) == sorted(f"q-{i}" for i in range(40))  # one line per custom_id


@pytest.mark.usefixtures("cli_with_retry")
def test_run_with_resubmit_0_only_reports(emulator: Emulator, tmp_path: Path, capsys: Any,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "emulator")
    code = run(emulator, tmp_path, "--resubmit", "0")
    printed = capsys.readouterr().out
    assert code == 6 and emulator.batches_created == 1  # 6: the job ended with failures
    assert "retry: extra_passes 0, resubmitted 0, recovered 0, failed_for_good 8: " in printed
    assert len(output_ids(tmp_path)) == 40


@pytest.mark.usefixtures("cli_with_retry")
@pytest.mark.parametrize(("attempts", "code"), [("2", 1), ("3", 0)])
def test_run_with_http_attempts(emulator: Emulator, tmp_path: Path, attempts: str, code: int,
                                monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "emulator")
    emulator.faults = Faults()  # every request succeeds; only HTTP fails
    emulator.inject("overloaded", times=2, endpoint="retrieve")
    assert run(emulator, tmp_path, "--http-attempts", attempts, "--http-initial-delay", "0",
               "--http-max-delay", "0") == code
    assert len(emulator.requests_to("retrieve")) >= 2
    if code:
        assert "Overloaded" in capsys.readouterr().err
