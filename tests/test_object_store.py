"""Inputs and outputs at fsspec URLs, against a real S3-compatible server on loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from claudebatch import BatchClient, Rows
from claudebatch.cli import main
from claudebatch.emulator import Emulator
from claudebatch.errors import OutputPathError, ValidationError

pq = pytest.importorskip("pyarrow.parquet")

MODEL = "claude-haiku-4-5"


@pytest.fixture
def emulator() -> Any:
    with Emulator(rate=20000.0, seed=9, answer_tokens=(20, 40)) as emu:
        yield emu


def client_for(emulator: Emulator) -> BatchClient:
    return BatchClient(api_key="emulator", base_url=emulator.url, load_entry_points=False)


def test_rows_from_s3_to_a_parquet_table_on_s3(emulator: Emulator, s3: Any,
                                               tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s3.pipe("bucket/in/reviews.csv", b"id,text\na,hello\nb,world\nc,again\n")
    report = client_for(emulator).run(
        Rows("s3://bucket/in/reviews.csv", template="Say {{ text }}", model=MODEL,
             id_column="id"),
        output="s3://bucket/out/reviews.parquet", poll_interval=0.005)
    assert report.all_succeeded and report.table == "s3://bucket/out/reviews.parquet"
    with s3.open("bucket/out/reviews.parquet", "rb") as handle:
        table = pq.read_table(handle).to_pylist()
    assert [r["id"] for r in table] == ["a", "b", "c"]
    assert all(r["result_type"] == "succeeded" for r in table)
    # the result lines stay local, beside where the command ran: resumable, never half-sent
    results = Path(report.output)  # named after the table's URL, in the current folder
    assert results.parent == tmp_path and results.name.startswith("reviews.parquet-")
    assert len(results.read_text().splitlines()) == 3
    again = Rows("s3://bucket/out/reviews.parquet", template="{{ answer }}", model=MODEL)
    assert client_for(emulator).job(again).dry_run().total_requests == 3  # Parquet from S3


def test_requests_from_s3_and_result_lines_to_s3(emulator: Emulator, s3: Any,
                                                 tmp_path: Path) -> None:
    lines = [json.dumps({"custom_id": f"r{i}", "params": {
        "model": MODEL, "max_tokens": 30, "messages": [{"role": "user", "content": "hi"}]}})
        for i in range(4)]
    s3.pipe("bucket/requests.jsonl", ("\n".join(lines) + "\n").encode())
    report = client_for(emulator).run(
        "s3://bucket/requests.jsonl", output="s3://bucket/results.jsonl",
        results=str(tmp_path / "lines.jsonl"), poll_interval=0.005)
    assert report.all_succeeded
    uploaded = s3.cat("bucket/results.jsonl")
    assert uploaded == (tmp_path / "lines.jsonl").read_bytes()  # the lines, as written
    assert sorted(json.loads(x)["custom_id"] for x in uploaded.splitlines()) == \
        [f"r{i}" for i in range(4)]


def test_a_missing_bucket_or_object_is_refused_before_sending(emulator: Emulator, s3: Any,
                                                               tmp_path: Path) -> None:
    s3.pipe("bucket/in.csv", b"id,text\na,hello\n")
    rows = Rows("s3://bucket/in.csv", template="{{ text }}", model=MODEL)
    with pytest.raises(OutputPathError, match="'no-such-bucket' does not exist"):
        client_for(emulator).run(rows, output="s3://no-such-bucket/out.csv",
                                 results=str(tmp_path / "r.jsonl"))
    with pytest.raises(ValidationError, match=r"cannot read s3://bucket/missing\.csv"):
        Rows("s3://bucket/missing.csv", template="{{ text }}", model=MODEL)
    assert emulator.batch_ids == []


def test_cli_reads_and_writes_s3(emulator: Emulator, s3: Any, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "emulator")
    s3.pipe("bucket/rows.jsonl", b'{"q": "one"}\n{"q": "two"}\n')
    (tmp_path / "t.j2").write_text("Answer {{ q }}")
    code = main(["run", "s3://bucket/rows.jsonl", "--template", "t.j2", "--model", MODEL,
                 "-o", "s3://bucket/answers.csv", "--base-url", emulator.url,
                 "--poll-interval", "0.005", "--quiet"])
    assert code == 0, capsys.readouterr().err
    text = s3.cat("bucket/answers.csv").decode()
    assert text.splitlines()[0].startswith("q,custom_id,result_type,answer")
    assert len(text.splitlines()) == 3


def test_urls_that_name_no_file_or_no_format_or_no_server_are_named(
        emulator: Emulator, s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = Rows([{"text": "a"}], template="{{ text }}", model=MODEL)
    for output, words in (("s3://bucket.parquet", "names no file"),
                          ("s3://bucket", "cannot tell the table format"),
                          ("s3://bucket/out.xlsx", "cannot tell the table format")):
        with pytest.raises(OutputPathError, match=words):
            client_for(emulator).run(rows, output=output, results=str(tmp_path / "r.jsonl"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    with pytest.raises(ValidationError, match=r"cannot read s3://bucket/in\.csv"):
        Rows("s3://bucket/in.csv", template="{{ text }}", model=MODEL)
    with pytest.raises(OutputPathError, match="cannot reach the output"):
        client_for(emulator).run(rows, output="s3://bucket/o.csv",
                                 results=str(tmp_path / "r.jsonl"))
    assert emulator.batch_ids == []
