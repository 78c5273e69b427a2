"""A JSONL line longer than a batch can hold is refused before it is read whole or parsed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

import claudebatch._inputs
from claudebatch._inputs import MAX_BATCH_BYTES, SourceProblem, iter_source

from .peak_rss import PEAK_RSS_FUNCTION

PARAMS = {"model": "claude-haiku-4-5", "max_tokens": 8,
          "messages": [{"role": "user", "content": "hi"}]}

#: With 8-byte chunks every line of a few dozen bytes is a "long" line.
LINES = [
    b'{"a":1}',                                 # 1: shorter than a chunk
    b'{"b":"123"}',                             # 2: longer than a chunk, fits the limit
    b"x" * 7,                                   # 3: a chunk with its newline
    b"y" * 8,                                   # 4: exactly a chunk, then the newline
    b'{"c":"' + b"z" * 40 + b'"}',              # 5: over the limit (48 bytes)
    b"",                                        # 6: blank lines are skipped
    b"   ",                                     # 7
    b'{"d":"0123456789abcdef"}\r',              # 8: CRLF, fits (24 bytes)
    b'{"e":"' + b"w" * 24 + b'"}',              # 9: 32 bytes: the limit exactly
    b'{"f":"' + b"w" * 25 + b'"}',              # 10: 33 bytes: one over
    b'{"g":"' + b"v" * 40 + b'"}',              # 11: over the limit, last, no newline
]
EXPECTED: List[Tuple[int, Any]] = [
    (1, {"a": 1}), (2, {"b": "123"}), (3, "not valid JSON"), (4, "not valid JSON"),
    (5, "the line is 48 bytes; a batch body holds at most 32"),
    (8, {"d": "0123456789abcdef"}), (9, {"e": "w" * 24}),
    (10, "the line is 33 bytes; a batch body holds at most 32"),
    (11, "the line is 48 bytes; a batch body holds at most 32"),
]


def outcome(source: str) -> List[Tuple[int, Any]]:
    rows = []
    for where, item in iter_source(source, max_line_bytes=32):
        assert where.startswith(f"{source} line ")
        number = int(where.rsplit(" ", 1)[1])
        rows.append((number, item.message[:len("not valid JSON")]
                     if isinstance(item, SourceProblem) and "JSON" in item.message
                     else item.message if isinstance(item, SourceProblem) else item))
    return rows


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claudebatch._inputs, "READ_CHUNK_BYTES", 8)


def test_long_lines_are_measured_refused_or_read_whole_and_numbered_right(
        small_chunks: None, tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(LINES))
    assert outcome(str(path)) == EXPECTED


def test_the_default_limit_is_the_batch_size(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(LINES))
    assert [item for _, item in iter_source(str(path))][:2] == [{"a": 1}, {"b": "123"}]
    assert MAX_BATCH_BYTES == 256_000_000  # "256 MB", the smaller reading


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_cannot_seek_back_and_gives_the_same_lines(
        small_chunks: None, tmp_path: Path) -> None:
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("wb") as handle:
            handle.write(b"\n".join(LINES))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert outcome(str(fifo)) == EXPECTED
    finally:
        writer.join(timeout=10)


CHILD = PEAK_RSS_FUNCTION + textwrap.dedent("""
    import json, sys
    from claudebatch import BatchClient, ValidationError
    from claudebatch._inputs import validate_batch
    figures = {}
    try:
        validate_batch(sys.argv[1])  # what create() does
    except ValidationError as exc:
        figures["create"] = exc.problems
    client = BatchClient(api_key="k", base_url="http://127.0.0.1:9", load_entry_points=False)
    try:
        client.run(sys.argv[1], output=sys.argv[2])  # a job: nothing is sent either
    except ValidationError as exc:
        figures["run"] = exc.problems
    figures["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(figures))
""")


def write_huge_line_file(path: Path, text_bytes: int) -> None:
    """Good lines around one line of ``text_bytes`` of prompt, written a MiB at a time."""
    def row(custom_id: str, params: Dict[str, Any] = PARAMS) -> bytes:
        return json.dumps({"custom_id": custom_id, "params": params}).encode() + b"\n"

    head, tail = row("huge").split(b'"hi"')
    piece = b"z" * (1024 * 1024)
    with path.open("wb") as handle:
        handle.write(row("good-1"))
        handle.write(head + b'"')
        for start in range(0, text_bytes, len(piece)):
            handle.write(piece[:text_bytes - start])
        handle.write(b'"' + tail)
        handle.write(row("good-3"))
        handle.write(row("bad id"))
        handle.write(row("good-5"))


@pytest.mark.slow
def test_a_300mb_line_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    write_huge_line_file(source, 300_000_000)
    assert source.stat().st_size > 300_000_000
    out = subprocess.run([sys.executable, "-c", CHILD, str(source), str(tmp_path / "out.jsonl")],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    figures = json.loads(out.stdout)
    for path in ("create", "run"):
        problems = figures[path]
        assert len(problems) == 2, (path, problems)
        assert problems[0].startswith(f"{source} line 2: the line is 300,000,")
        assert "bytes; a batch body holds at most" in problems[0]
        assert problems[1].startswith(f"{source} line 4 (custom_id 'bad id')")
    assert figures["peak_rss_mb"] < 150, figures


def test_a_job_refuses_a_line_longer_than_its_own_batch_limit_before_parsing(
        tmp_path: Path) -> None:
    from claudebatch import BatchClient, ValidationError

    path = tmp_path / "in.jsonl"
    good = {"custom_id": "a", "params": {"model": "m", "max_tokens": 1,
                                         "messages": [{"role": "user", "content": "hi"}]}}
    big = {**good, "custom_id": "b"}
    big["params"] = {**good["params"], "messages": [{"role": "user", "content": "x" * 2000}]}
    path.write_text(json.dumps(good) + "\n" + json.dumps(big) + "\n")
    client = BatchClient(api_key="k", base_url="http://127.0.0.1:9", load_entry_points=False)
    with pytest.raises(ValidationError) as info:
        client.job(str(path), max_batch_bytes=1000).dry_run()
    assert info.value.problems == [
        f"{path} line 2: the line is {len(json.dumps(big)):,} bytes; a batch body holds at "
        "most 980"]
