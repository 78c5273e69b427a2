"""The ``claudebatch`` command line, run in-process against ``responses``; exit codes included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Tuple

import pytest
import requests
import responses

from claudebatch import cli
from claudebatch._clock import SystemClock

KEY = "sk-ant-SECRET-123"
BASE = "http://localhost:9999"
BATCHES = f"{BASE}/v1/messages/batches"


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)


@pytest.fixture(autouse=True)
def no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI builds clients on the real clock: these tests must never make it sleep."""
    def refuse(self: Any, seconds: float) -> None:
        raise AssertionError(f"the CLI test slept for real ({seconds} s)")

    monkeypatch.setattr(SystemClock, "sleep", refuse)


#: Output tests fail until cli.print_json stops binding sys.stdout at import time.

def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Tuple[int, str, str]:
    """Run the CLI as a process would: its exit code (returned or raised), stdout and stderr."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(text: str) -> List[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def write_jsonl(path: Path, rows: List[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_submit_sends_the_jsonl_file_and_prints_the_batch(
        capsys: Any, tmp_path: Path, mock: responses.RequestsMock, batch_json: Any,
        make_requests: Any) -> None:
    rows = make_requests(3)
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    mock.post(BATCHES, json=batch_json("msgbatch_cli", processing=3))
    code, out, _ = run(capsys, "submit", str(path), "--base-url", BASE)
    assert code == 0
    [printed] = json_lines(out)
    assert printed["id"] == "msgbatch_cli"
    assert printed["request_counts"]["processing"] == 3
    assert json.loads(mock.calls[0].request.body)["requests"] == rows
    assert mock.calls[0].request.headers["x-api-key"] == KEY


def test_base_url_can_come_from_the_environment(
        capsys: Any, monkeypatch: pytest.MonkeyPatch, mock: responses.RequestsMock,
        batch_json: Any) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", BASE)
    mock.get(f"{BATCHES}/b1", json=batch_json("b1"))
    assert run(capsys, "status", "b1")[0] == 0


def test_submit_names_an_invalid_jsonl_line_by_file_and_line(
        capsys: Any, tmp_path: Path, mock: responses.RequestsMock, make_requests: Any) -> None:
    path = tmp_path / "in.jsonl"
    good = json.dumps(make_requests(1)[0])
    path.write_text(f"{good}\n{{\"custom_id\": \"x\", oops\n")
    code, out, err = run(capsys, "submit", str(path), "--base-url", BASE)
    assert code == 3
    assert f"{path} line 2" in err
    assert out == ""
    assert len(mock.calls) == 0


def test_submit_of_invalid_requests_is_exit_3_naming_each(
        capsys: Any, tmp_path: Path, mock: responses.RequestsMock, make_requests: Any) -> None:
    rows = make_requests(2)
    rows[0]["custom_id"] = "bad id"
    del rows[1]["params"]["model"]
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    code, _, err = run(capsys, "submit", str(path), "--base-url", BASE)
    assert code == 3
    assert "'bad id'" in err and "req-1" in err and "model" in err
    assert len(mock.calls) == 0


def test_submit_of_a_missing_file_is_exit_3(capsys: Any, tmp_path: Path,
                                            mock: responses.RequestsMock) -> None:
    code, _, err = run(capsys, "submit", str(tmp_path / "nope.jsonl"), "--base-url", BASE)
    assert code == 3
    assert "nope.jsonl" in err


def test_status_prints_the_batch(capsys: Any, mock: responses.RequestsMock,
                                 batch_json: Any) -> None:
    mock.get(f"{BATCHES}/b1", json=batch_json("b1", "ended", succeeded=2))
    code, out, _ = run(capsys, "status", "b1", "--base-url", BASE)
    assert code == 0
    [printed] = json_lines(out)
    assert printed["id"] == "b1"
    assert printed["processing_status"] == "ended"
    assert printed["request_counts"]["succeeded"] == 2
    assert printed["created_at"].startswith("2023-11-14T22:13:20")


def test_wait_prints_the_ended_batch(capsys: Any, mock: responses.RequestsMock,
                                     batch_json: Any) -> None:
    mock.get(f"{BATCHES}/b1", json=batch_json("b1", "ended"))
    code, out, _ = run(capsys, "wait", "b1", "--base-url", BASE, "--poll-interval", "0.01")
    assert code == 0
    assert json_lines(out)[0]["processing_status"] == "ended"


def test_wait_that_times_out_is_exit_4(capsys: Any, mock: responses.RequestsMock,
                                       batch_json: Any) -> None:
    mock.get(f"{BATCHES}/b1", json=batch_json("b1", "in_progress"))
    code, out, err = run(capsys, "wait", "b1", "--base-url", BASE, "--timeout", "0")
    assert code == 4
    assert "b1" in err
    assert out == ""


def test_results_to_a_file(capsys: Any, tmp_path: Path, mock: responses.RequestsMock,
                           batch_json: Any, result_line: Any) -> None:
    body = result_line("a") + result_line("b", "errored") + result_line("c", "expired")
    mock.get(f"{BATCHES}/b1", json=batch_json("b1", "ended",
                                              results_url=f"{BATCHES}/b1/results"))
    mock.get(f"{BATCHES}/b1/results", body=body)
    target = tmp_path / "out.jsonl"
    code, out, _ = run(capsys, "results", "b1", "-o", str(target), "--base-url", BASE)
    assert code == 0
    assert out == ""
    assert json_lines(target.read_text()) == json_lines(body)


def test_results_to_stdout(capsys: Any, mock: responses.RequestsMock, batch_json: Any,
                           result_line: Any) -> None:
    body = result_line("a", "canceled") + result_line("b", "expired")
    mock.get(f"{BATCHES}/b1", json=batch_json("b1", "ended",
                                              results_url=f"{BATCHES}/b1/results"))
    mock.get(f"{BATCHES}/b1/results", body=body)
    code, out, _ = run(capsys, "results", "b1", "--base-url", BASE)
    assert code == 0
    assert json_lines(out) == json_lines(body)


def test_results_of_a_batch_still_running_is_exit_5(
        capsys: Any, tmp_path: Path, mock: responses.RequestsMock, batch_json: Any) -> None:
    mock.get(f"{BATCHES}/b1", json=batch_json("b1", "in_progress"))
    target = tmp_path / "out.jsonl"
    code, _, err = run(capsys, "results", "b1", "-o", str(target), "--base-url", BASE)
    assert code == 5
    assert "b1" in err
    assert not target.exists()


def test_list_prints_every_batch_across_pages(capsys: Any, mock: responses.RequestsMock,
                                              batch_json: Any) -> None:
    from responses import matchers

    mock.get(BATCHES, match=[matchers.query_param_matcher({})], json={
        "data": [batch_json("b3"), batch_json("b2")], "has_more": True,
        "first_id": "b3", "last_id": "b2"})
    mock.get(BATCHES, match=[matchers.query_param_matcher({"after_id": "b2"})], json={
        "data": [batch_json("b1")], "has_more": False, "first_id": "b1", "last_id": "b1"})
    code, out, _ = run(capsys, "list", "--base-url", BASE)
    assert code == 0
    assert [b["id"] for b in json_lines(out)] == ["b3", "b2", "b1"]


def test_list_limit_stops_early(capsys: Any, mock: responses.RequestsMock,
                                batch_json: Any) -> None:
    mock.get(BATCHES, json={"data": [batch_json("b3"), batch_json("b2")], "has_more": True,
                            "first_id": "b3", "last_id": "b2"})
    code, out, _ = run(capsys, "list", "--limit", "1", "--base-url", BASE)
    assert code == 0
    assert [b["id"] for b in json_lines(out)] == ["b3"]
    assert len(mock.calls) == 1


def test_cancel_prints_the_batch(capsys: Any, mock: responses.RequestsMock,
                                 batch_json: Any) -> None:
    mock.post(f"{BATCHES}/b1/cancel", json=batch_json("b1", "canceling"))
    code, out, _ = run(capsys, "cancel", "b1", "--base-url", BASE)
    assert code == 0
    assert json_lines(out)[0]["processing_status"] == "canceling"


def test_delete_prints_the_deletion(capsys: Any, mock: responses.RequestsMock) -> None:
    mock.delete(f"{BATCHES}/b1", json={"id": "b1", "type": "message_batch_deleted"})
    code, out, _ = run(capsys, "delete", "b1", "--base-url", BASE)
    assert code == 0
    assert json_lines(out) == [{"id": "b1", "type": "message_batch_deleted"}]


def test_an_api_error_is_exit_1_with_the_servers_message(
        capsys: Any, mock: responses.RequestsMock, error_body: Any) -> None:
    mock.get(f"{BATCHES}/nope", status=404, json=error_body("not_found_error", "no such batch"),
             headers={"request-id": "req_42"})
    code, out, err = run(capsys, "status", "nope", "--base-url", BASE)
    assert code == 1
    assert "no such batch" in err and "req_42" in err
    assert out == ""
    assert KEY not in err


def test_a_network_error_is_exit_1(capsys: Any, mock: responses.RequestsMock) -> None:
    mock.get(f"{BATCHES}/b1", body=requests.ConnectionError("connection refused"))
    code, _, err = run(capsys, "status", "b1", "--base-url", BASE, "--max-retries", "0")
    assert code == 1
    assert "connection refused" in err


def test_no_api_key_is_exit_2_naming_the_variable(
        capsys: Any, monkeypatch: pytest.MonkeyPatch, mock: responses.RequestsMock) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    code, _, err = run(capsys, "status", "b1", "--base-url", BASE)
    assert code == 2
    assert "ANTHROPIC_API_KEY" in err


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["status"], ["list", "--limit", "x"]])
def test_bad_usage_is_exit_2(capsys: Any, mock: responses.RequestsMock, argv: List[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err



@pytest.mark.parametrize("argv, method, url", [
    (["status", "b1"], "GET", f"{BATCHES}/b1"),
    (["wait", "b1"], "GET", f"{BATCHES}/b1"),
    (["cancel", "b1"], "POST", f"{BATCHES}/b1/cancel"),
    (["delete", "b1"], "DELETE", f"{BATCHES}/b1"),
    (["list"], "GET", BATCHES),
])
def test_each_command_calls_its_endpoint_and_exits_0(
        capsys: Any, mock: responses.RequestsMock, batch_json: Any, argv: List[str],
        method: str, url: str) -> None:
    if argv[0] == "list":
        body: Any = {"data": [batch_json("b1")], "has_more": False,
                     "first_id": "b1", "last_id": "b1"}
    elif argv[0] == "delete":
        body = {"id": "b1", "type": "message_batch_deleted"}
    else:
        body = batch_json("b1", "ended")
    mock.add(method, url, json=body)
    code, _, err = run(capsys, *argv, "--base-url", BASE)
    assert code == 0, err
    assert [(c.request.method, c.request.url) for c in mock.calls] == [(method, url)]
    assert mock.calls[0].request.headers["x-api-key"] == KEY


def test_submit_sends_the_file_and_exits_0(capsys: Any, tmp_path: Path,
                                           mock: responses.RequestsMock, batch_json: Any,
                                           make_requests: Any) -> None:
    rows = make_requests(3)
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    mock.post(BATCHES, json=batch_json("msgbatch_cli", processing=3))
    code, _, err = run(capsys, "submit", str(path), "--base-url", BASE)
    assert code == 0, err
    assert json.loads(mock.calls[0].request.body)["requests"] == rows


def test_bounded_option_types_name_the_bad_value() -> None:
    import argparse

    from claudebatch.argtypes import bounded

    share = bounded(float, what="a share", low=0.0, high=1.0)
    assert share("0.25") == 0.25
    for bad in ("1.5", "-0.1", "nan", "lots"):
        with pytest.raises(argparse.ArgumentTypeError, match=f"expected a share from 0.0 to "
                                                             f"1.0, got '{bad}'"):
            share(bad)
    passes = bounded(int, what="a whole number", low=0)
    with pytest.raises(argparse.ArgumentTypeError, match="expected a whole number >= 0"):
        passes("2.5")


def test_python_dash_m_claudebatch_runs_the_cli() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "claudebatch", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("claudebatch ")


def test_help_loads_every_plugin_but_not_the_heavy_modules() -> None:
    """`claudebatch --help` stays quick (issue #19: < 0.3 s): with every installed plugin's
    entry point loaded for its options, nothing loads HTTP, the results reader or SQLite."""
    import os
    import subprocess
    import sys

    script = (
        "import contextlib, io, runpy, sys\n"
        "sys.argv = ['claudebatch', '--help']\n"
        "try:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        runpy.run_module('claudebatch', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('requests', 'urllib3', 'ijson', 'sqlite3', 'claudebatch._results',\n"
        "         'claudebatch._client', 'jsonschema', 'pydantic', 'opentelemetry')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "print('claudebatch_retry' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if k != "CLAUDEBATCH_DISABLE_PLUGIN_AUTOLOAD"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, env=env)
    loaded, retry = done.stdout.splitlines()
    assert loaded == "[]"
    assert retry == "True"  # its entry point was loaded: the check means something
