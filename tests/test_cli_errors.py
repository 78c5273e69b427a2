"""``claudebatch`` answers every bad input, file and server answer with a clear error, never a
traceback, and sends nothing when an argument is wrong."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import responses

from claudebatch.cli import main as cli_main
from claudebatch.emulator import Emulator

from .test_jobs import request, write_jsonl


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    with Emulator(rate=float("inf"), seed=4) as emulator:
        yield emulator


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli_main(args)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.err


def job_args(emu: Emulator) -> list[str]:
    return ["--base-url", emu.url, "--poll-interval", "0.01", "--quiet"]


@pytest.mark.parametrize("where", ["missing folder", "a folder", "the input"])
def test_an_output_that_cannot_be_written_is_exit_3_before_anything_is_sent(
        emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", (request(i) for i in range(3)))
    before = source.read_bytes()
    output = {"missing folder": tmp_path / "no" / "o.jsonl", "a folder": tmp_path,
              "the input": source}[where]
    code, err = run(["run", str(source), "-o", str(output), *job_args(emu)], capsys)
    assert code == 3 and "invalid input: the output" in err
    assert emu.batches_created == 0 and source.read_bytes() == before


def test_an_output_on_a_read_only_file_system_is_exit_3(
        emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "ro"
    target.mkdir()
    made = subprocess.run(["mount", "--bind", str(target), str(target)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
        source = write_jsonl(tmp_path / "in.jsonl", (request(i) for i in range(3)))
        code, err = run(["run", str(source), "-o", str(target / "o.jsonl"), *job_args(emu)],
                        capsys)
    finally:
        subprocess.run(["umount", str(target)], check=False)
    assert code == 3 and "not writable" in err and emu.batches_created == 0


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_a_bad_poll_interval_is_a_usage_error_and_sends_nothing(
        emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", (request(i) for i in range(3)))
    with pytest.raises(SystemExit) as info:
        cli_main(["run", str(source), "-o", str(tmp_path / "o.jsonl"), "--base-url", emu.url,
                  "--poll-interval", value])
    assert info.value.code == 2
    assert "finite number of seconds > 0" in capsys.readouterr().err
    assert emu.batches_created == 0


@pytest.mark.parametrize("command", ["status", "wait", "results", "cancel", "delete"])
def test_a_bad_batch_id_is_a_usage_error(command: str, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    try:
        code = cli_main([command, "bad id!", "--base-url", "http://127.0.0.1:9"])
    except SystemExit as exc:  # argparse's own usage error
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and "not a batch id: 'bad id!'" in err and "Traceback" not in err


@responses.activate
def test_a_success_that_is_not_a_batch_names_the_call(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    responses.get("http://127.0.0.1:9/v1/messages/batches/msgbatch_1", json={"hello": 1})
    code, err = run(["status", "msgbatch_1", "--base-url", "http://127.0.0.1:9"], capsys)
    assert code == 1
    assert "GET /v1/messages/batches/msgbatch_1 answered with a body that is not a " \
           "MessageBatch" in err


@pytest.mark.parametrize("line", [
    "[" * 100_000 + "]" * 100_000,                                   # nested beyond any depth
    json.dumps(request(0)).replace('"hello"', '"\\ud800"'),           # a lone surrogate
    json.dumps(request(0)).replace('16', 'NaN'),                     # not the API's JSON
    json.dumps(request(0)).replace('16', '1' + '0' * 30),            # past any integer field
    json.dumps({**request(0), "custom_id": "abc\n"}),                # $ matched before \n
])
def test_input_the_service_would_refuse_is_exit_3_naming_the_line(
        emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", iter([json.dumps(request(1)), line]))
    code, err = run(["run", str(source), "-o", str(tmp_path / "o.jsonl"), *job_args(emu)],
                    capsys)
    assert code == 3 and "in.jsonl line 2" in err
    assert emu.batches_created == 0


def test_a_run_without_a_store_says_how_to_make_it_resumable(
        emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", (request(i) for i in range(3)))
    code, err = run(["run", str(source), "-o", str(tmp_path / "o.jsonl"), *job_args(emu)],
                    capsys)
    assert code == 0 and "no job store is on" in err and "--store" in err


def test_an_unexpected_failure_is_one_line_not_a_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(args: Any) -> int:
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr("claudebatch.cli.cmd_list", broken)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    code, err = run(["list"], capsys)
    assert code == 1 and "internal error: RuntimeError: something nobody expected" in err
    assert "CLAUDEBATCH_DEBUG=1" in err


def test_results_output_is_created_private(emu: Emulator, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from claudebatch import BatchClient

    client = BatchClient(api_key="k", base_url=emu.url, load_entry_points=False)
    batch = client.wait(client.create([request(0)]).id, poll_interval=0.01)
    out = tmp_path / "r.jsonl"
    code, _ = run(["results", batch.id, "-o", str(out), "--base-url", emu.url], capsys)
    assert code == 0 and os.stat(out).st_mode & 0o777 == 0o600
    assert json.loads(out.read_text())["custom_id"] == "r-0"


@responses.activate
@pytest.mark.parametrize("to_file", [True, False], ids=["-o", "stdout"])
def test_a_lone_surrogate_in_a_result_is_written_as_valid_json(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        to_file: bool) -> None:
    from .conftest import batch_json

    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    base = "http://127.0.0.1:9"
    url = f"{base}/v1/messages/batches/msgbatch_1/results"
    responses.get(f"{base}/v1/messages/batches/msgbatch_1",
                  json=batch_json("msgbatch_1", "ended", processing=0, succeeded=1,
                                  results_url=url))
    responses.get(url, body=b'{"custom_id":"r-1","result":{"type":"errored","error":{"type":'
                            b'"error","error":{"type":"api_error","message":"a \\ud800"}}}}\n')
    out = tmp_path / "r.jsonl"
    code = cli_main(["results", "msgbatch_1", "--base-url", base,
                     *(["-o", str(out)] if to_file else [])])
    captured = capsys.readouterr()
    assert code == 0 and "Traceback" not in captured.err
    written = out.read_text() if to_file else captured.out
    value = json.loads(written)  # valid JSON, whichever way the parser read the surrogate
    assert value["custom_id"] == "r-1"
    assert value["result"]["error"]["error"]["message"] in ("a \ud800", "a ?")


def test_backoff_never_overflows_however_long_a_job_polls() -> None:
    from claudebatch.policies import MAX_POLL_INTERVAL, DefaultPolicies, backoff_delay

    assert backoff_delay(5000) <= 8.0
    delay = DefaultPolicies().poll_delay(batch=None, attempt=5000,  # type: ignore[arg-type]
                                         first_interval=30.0)
    assert delay == MAX_POLL_INTERVAL


@responses.activate
def test_a_page_that_says_more_but_moves_nowhere_stops_the_listing(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    responses.get("http://127.0.0.1:9/v1/messages/batches",
                  json={"data": [], "has_more": True, "first_id": "x", "last_id": "x"})
    code, err = run(["list", "--base-url", "http://127.0.0.1:9"], capsys)
    assert code == 1 and "stopped paging" in err
    assert len(responses.calls) == 1


@responses.activate
@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000,
                                  b'{"id": NaN, "type": "message_batch_deleted"}'])
def test_a_delete_answered_with_nonsense_is_a_clear_error(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        body: bytes) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    responses.delete("http://127.0.0.1:9/v1/messages/batches/msgbatch_1", body=body)
    code, err = run(["delete", "msgbatch_1", "--base-url", "http://127.0.0.1:9"], capsys)
    assert code == 1 and "DELETE " in err and "/v1/messages/batches/msgbatch_1" in err


@responses.activate
@pytest.mark.parametrize("body", [b"[]", b"<html>oops</html>", b""])
def test_a_create_answered_with_nonsense_names_the_create(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        body: bytes) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    base = "http://127.0.0.1:9/v1/messages/batches"
    responses.post(base, body=body)
    responses.get(base, json={"data": [], "has_more": False})  # no batch was made
    source = write_jsonl(tmp_path / "in.jsonl", (request(i) for i in range(2)))
    code, err = run(["submit", str(source), "--base-url", "http://127.0.0.1:9"], capsys)
    assert code == 1 and "POST /v1/messages/batches answered" in err
    assert "none was made" in err


def test_an_empty_file_to_submit_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, err = run(["submit", str(empty), "--base-url", "http://127.0.0.1:9"], capsys)
    assert code == 3 and f"{empty}: a batch needs at least one request" in err


@pytest.mark.parametrize("base", ["http://127.0.0.1:9?x=1", "http://127.0.0.1:9#top",
                                  "ftp://127.0.0.1:9"])
def test_a_base_url_with_a_query_or_another_scheme_is_refused(base: str) -> None:
    from claudebatch import BatchClient, ConfigurationError

    with pytest.raises(ConfigurationError, match="base_url must be"):
        BatchClient(api_key="k", base_url=base, load_entry_points=False)
    BatchClient(api_key="k", base_url="HTTP://127.0.0.1:9", load_entry_points=False)
