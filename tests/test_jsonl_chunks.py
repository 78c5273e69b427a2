"""JSONL read a chunk at a time (#19) gives exactly what reading it a line at a time gives:
the same line numbers, values, problems and clean flags, wherever the chunks cut."""

from __future__ import annotations

import io
import json
import random
from typing import Any, List, Tuple

import pytest

from claudebatch import _inputs, _json
from claudebatch._inputs import SourceProblem, iter_jsonl_lines, iter_source_numbered

pytestmark = pytest.mark.skipif(_json.fast_loads is None, reason="the chunked reader needs orjson")


def _request(rng: random.Random, n: int) -> bytes:
    params: Any = {"model": "claude-haiku-4-5", "max_tokens": 16,
                   "messages": [{"role": "user", "content": "x" * rng.randrange(0, 300)}]}
    odd = rng.random()
    if odd < 0.05:
        params["temperature"] = 0.00001  # a float json writes otherwise than orjson
    elif odd < 0.1:
        params["metadata"] = {"n": 2**70}  # past 64 bits
    elif odd < 0.13:
        deep: Any = "x"
        for _ in range(rng.choice([250, 254, 255, 300])):
            deep = [deep]
        params["metadata"] = {"deep": deep}
    elif odd < 0.16:
        params["metadata"] = {"pi": 3.14159, "e": 2.5e-3}
    line = json.dumps({"custom_id": f"r{n}", "params": params}).encode()
    roll = rng.random()
    if roll < 0.03:
        return b"{not json"
    if roll < 0.05:
        return b"   "
    if roll < 0.07:
        return b""
    if roll < 0.09:
        return line + b"\r"
    if roll < 0.1:
        return b'{"custom_id": "\xff"}'
    return line


def _read(data: bytes, chunked: bool, max_line_bytes: int = 10**6) -> List[Tuple[Any, ...]]:
    reader = _inputs._read_jsonl if chunked else _inputs._read_jsonl_by_line
    out: List[Tuple[Any, ...]] = []
    for _, number, value, clean in reader(io.BytesIO(data), "in.jsonl line", max_line_bytes):
        out.append((number, value.message if isinstance(value, SourceProblem) else value,
                    isinstance(value, SourceProblem), clean))
    return out


@pytest.mark.parametrize("chunk", [64, 700, 4096, 1 << 20])
@pytest.mark.parametrize("seed", range(4))
def test_chunks_read_as_lines_do_wherever_they_cut(monkeypatch: pytest.MonkeyPatch,
                                                    chunk: int, seed: int) -> None:
    rng = random.Random(seed)
    lines = [_request(rng, n) for n in range(300)]
    data = rng.choice([b"", b"\xef\xbb\xbf"]) + b"\n".join(lines) \
        + rng.choice([b"", b"\n", b"\r\n", b"\n\n"])
    monkeypatch.setattr(_inputs, "READ_CHUNK_BYTES", chunk)
    assert _read(data, chunked=True) == _read(data, chunked=False)


def test_a_line_longer_than_a_chunk_is_measured_and_refused_without_being_held(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_inputs, "READ_CHUNK_BYTES", 100)
    ok = json.dumps({"custom_id": "a", "params": {"model": "m", "max_tokens": 1,
                                                   "messages": [{"role": "user",
                                                                 "content": "y" * 150}]}})
    data = (ok + "\n" + "z" * 1000 + "\n" + ok + "\r\n" + ok).encode()
    got = _read(data, chunked=True, max_line_bytes=500)
    assert got == _read(data, chunked=False, max_line_bytes=500)
    assert [row[0] for row in got] == [1, 2, 3, 4]
    assert got[1][1] == "the line is 1,000 bytes; a batch body holds at most 500"
    assert got[0][3] and got[2][3] and got[3][3]  # long lines around it stay clean


def test_a_line_that_needs_the_strict_reading_is_not_clean_and_its_chunk_neighbours_are_read_alike(
        ) -> None:
    plain = b'{"custom_id": "a", "params": {"n": 1}}'
    for odd in (b'{"custom_id": "b", "params": {"n": 1e-05}}',
                b'{"custom_id": "b", "params": {"n": 12345678901234567890123}}',
                b'{"custom_id": "b", "params": {"n": ' + b"[" * 255 + b"]" * 255 + b"}}"):
        got = _read(b"\n".join([plain, odd, plain]), chunked=True)
        assert [row[3] for row in got] == [True, False, True]


def test_where_names_the_file_and_line_as_before(tmp_path: Any) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"custom_id": "a", "params": {}}\n\n{oops\n')
    with open(path, "rb") as handle:
        pairs = list(iter_jsonl_lines(handle, str(path)))
    assert [where for where, _ in pairs] == [f"{path} line 1", f"{path} line 3"]
    assert type(pairs[0][0]).__name__ == "CheckedWhere"
    assert type(pairs[1][0]) is str and isinstance(pairs[1][1], SourceProblem)
    numbered = list(iter_source_numbered(str(path)))
    assert [(head, number) for head, number, _, _ in numbered] == [
        (f"{path} line", 1), (f"{path} line", 3)]
    rows = list(iter_source_numbered([{"custom_id": "x"}]))
    assert rows == [("request", 0, {"custom_id": "x"}, False)]
