"""``claudebatch emulator`` / ``python -m claudebatch.emulator`` in the foreground."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List

import pytest
import requests

from claudebatch.emulator.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]
HEADERS = {"x-api-key": "sk-cli", "anthropic-version": "2023-06-01"}


def start(args: List[str]) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "claudebatch.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.strip().startswith("export ANTHROPIC_BASE_URL="):
            return proc, line.strip().split("=", 1)[1]
    proc.kill()
    err = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"no base URL printed; stderr: {err}")


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc, url = start(["--api-key", "sk-cli", "--seed", "5", "--rate", "inf"])
    yield proc, url
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_runs_until_ctrl_c_and_prints_the_base_url(
    served: tuple[subprocess.Popen[str], str]
) -> None:
    proc, url = served
    assert url.startswith("http://127.0.0.1:")
    body = {"requests": [{"custom_id": "a", "params": {
        "model": "claude-haiku-4-5", "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}]}}]}
    made = requests.post(f"{url}/v1/messages/batches", json=body, headers=HEADERS, timeout=10)
    assert made.status_code == 200
    time.sleep(0.01)
    got = requests.get(f"{url}/v1/messages/batches/{made.json()['id']}", headers=HEADERS,
                       timeout=10)
    assert got.json()["processing_status"] == "ended"
    assert requests.get(f"{url}/v1/messages/batches", timeout=10).status_code == 401

    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "emulator stopped" in out
    assert "POST /v1/messages/batches -> 200" in err  # the request log


def test_sigterm_stops_it_too(served: tuple[subprocess.Popen[str], str]) -> None:
    proc, _ = served
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_fault_options() -> None:
    proc, url = start(["--quiet", "--fault-rate-limit", "1", "--fault-retry-after", "0",
                       "--fault-endpoints", "list"])
    try:
        r = requests.get(f"{url}/v1/messages/batches", headers=HEADERS, timeout=10)
        assert r.status_code == 429 and r.headers["retry-after"] == "0"
        r = requests.get(f"{url}/v1/messages/batches/msgbatch_01x", headers=HEADERS, timeout=10)
        assert r.status_code == 404
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and err == ""


def test_every_documented_option_parses() -> None:
    args = build_parser().parse_args([
        "--host", "0.0.0.0", "--port", "9000", "--api-key", "k", "--seed", "1", "--rate", "inf",
        "--expiry", "60", "--retention", "600", "--cancel-delay", "0.5", "--counts", "at-end",
        "--cache-hit-rate", "0.8", "--cache-min-tokens", "100", "--answer-tokens", "10-20",
        "--model", "claude-x", "--model", "claude-y", "--max-body-bytes", "1000", "--quiet",
        "--fault-rate-limit", "0.1", "--fault-retry-after", "2", "--fault-server-error", "0.1",
        "--fault-overloaded", "0.1", "--fault-slow", "0.1", "--fault-slow-seconds", "3",
        "--fault-drop-results", "0.1", "--fault-drop-after", "0.3", "--fault-drop-create", "0.1",
        "--fault-errored", "0.05", "--fault-endpoints", "create,results",
    ])
    assert args.answer_tokens == (10, 20) and args.models == ["claude-x", "claude-y"]
    assert args.rate == float("inf") and args.counts == "at-end"


@pytest.mark.parametrize("argv", [["--fault-rate-limit", "2"], ["--answer-tokens", "9-3"],
                                  ["--counts", "sometimes"]])
def test_bad_options_exit_2(argv: List[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2


def test_inconsistent_faults_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--fault-rate-limit", "0.7", "--fault-overloaded", "0.7"]) == 2
    assert "must not exceed 1" in capsys.readouterr().err


def test_busy_port_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    proc, url = start(["--quiet"])
    try:
        port = url.rsplit(":", 1)[1]
        assert main(["--port", port, "--quiet"]) == 1
        assert "cannot listen" in capsys.readouterr().err
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
