"""orjson (the ``fast`` extra) changes speed, never bytes or meaning.

Every request is serialized into the spool and its digest, and every answer key is
a hash of canonical JSON kept in stores across runs: with orjson installed or not,
they must be the same bytes. Reading must refuse and accept what the strict reader
does.
"""

from __future__ import annotations

import json
import random
from typing import Any, Iterator, List

import pytest

from claudebatch import _json
from claudebatch._inputs import _read_line, iter_jsonl_lines

orjson = pytest.importorskip("orjson")


@pytest.fixture(autouse=True)
def _restore_the_backend() -> Iterator[None]:
    """Each test switches freely; the next test finds the process's own backend."""
    before = _json.BACKEND
    yield
    _json.use("orjson" if before == "orjson" else None)

_CHARACTERS = ["a", "Z", "0", " ", '"', "\\", "/", "\n", "\t", "\x00", "\x1f", "\x7f", "\x80",
               "é", "\u2028", "\u2029", "\ufeff", "中", "\U0001f600", "\uffff", "<", "&"]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(_CHARACTERS) for _ in range(rng.randint(0, 12)))


def _float(rng: random.Random) -> float:
    kind = rng.random()
    if kind < 0.3:
        return rng.uniform(-1, 1) * 10 ** rng.randint(-330, 308)
    if kind < 0.5:
        return float(rng.randint(-10**6, 10**6))
    if kind < 0.7:
        return rng.choice([0.0, -0.0, 1e-5, 1e-4, 1e-7, 1e16, 1e15, 1e22, 5e-324, 0.1, 1.5,
                           123456789.123, 2.0**53, 1.7976931348623157e308, 0.00001234])
    return round(rng.uniform(-1000, 1000), rng.randint(0, 8))


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randint(0, 7 if depth < 4 else 4)
    if kind == 0:
        return _text(rng)
    if kind == 1:
        return rng.choice([rng.randint(-2**63, 2**63 - 1), rng.randint(-1000, 1000)])
    if kind == 2:
        return _float(rng)
    if kind == 3:
        return rng.choice([True, False, None])
    if kind == 4:
        return rng.randint(0, 10)
    if kind in (5, 6):
        return {_text(rng): _value(rng, depth + 1) for _ in range(rng.randint(0, 5))}
    return [_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]


def _values(count: int) -> Iterator[Any]:
    rng = random.Random(19)
    for _ in range(count):
        yield _value(rng)


def test_dumps_gives_the_standard_librarys_bytes() -> None:
    _json.use("orjson")
    for value in _values(3000):
        assert _json.dumps(value) == _json.std_dumps(value), value
        assert _json.dumps_sorted(value) == _json.std_dumps_sorted(value), value


def test_words_that_look_like_exponents_keep_the_fast_path() -> None:
    _json.use("orjson")
    assert not _json._negative_exponent(b'{"t":"re-run the e-mail"}')
    assert _json._negative_exponent(b'{"t":[1.5e-9]}')
    assert _json.dumps({"t": "re-run", "f": 2.5e-9}) == b'{"t":"re-run","f":2.5e-09}'


def test_keys_that_are_not_strings_are_written_as_the_standard_library_does() -> None:
    _json.use("orjson")
    value = {1: "a", None: "b", 2.5: [1e-05]}
    assert _json.dumps(value) == _json.std_dumps(value) == b'{"1":"a","null":"b","2.5":[1e-05]}'


@pytest.mark.parametrize("text", [
    '{"custom_id":"a","result":{"type":"canceled"}}',
    '{"a":"\\ud800"}',  # a lone surrogate: json reads it, orjson refuses; the same value
    '{"a":"\\ud83d\\ude00"}',
    '{"n":18446744073709551615}', '{"f":1e-05}', ' {"x": [1, 2.5, null]} ',
])
def test_loads_reads_what_the_strict_reader_reads(text: str) -> None:
    _json.use("orjson")
    expected = _json.std_loads(text.encode())
    found = _json.loads(text.encode())
    assert found == expected
    assert type(found.get("n")) is type(expected.get("n"))


@pytest.mark.parametrize("text", ['{"a":NaN}', '{"a":Infinity}', '{"a":-Infinity}', "{",
                                  '{"a":1} x', b'{"a":"\xff"}'])
def test_loads_refuses_what_the_strict_reader_refuses(text: Any) -> None:
    data = text if isinstance(text, bytes) else text.encode()
    for accelerator in ("orjson", None):
        _json.use(accelerator)
        with pytest.raises(ValueError):
            _json.loads(data)
    _json.use("orjson")


@pytest.mark.parametrize("line, with_orjson, without", [
    (b'{"custom_id":"a","params":{"max_tokens":5}}', True, True),
    (b'{"custom_id":"a","params":{"n":1234567890123456789}}', False, False),  # read strictly
    (b'{"custom_id":"a","params":{"s":"\\ud800"}}', False, False),  # a lone surrogate
    # an escape: orjson refuses lone surrogates itself; json's reading is walked
    (b'{"custom_id":"a","params":{"s":"\\u00e9"}}', True, False),
    (b'{"custom_id":"a","params":{"n":NaN}}', False, False),
    (b'{"custom_id":"a","params":' + b"[" * 300 + b"]" * 300 + b"}", False, False),
])
def test_a_line_is_known_clean_only_when_nothing_in_it_needs_a_closer_look(
        line: bytes, with_orjson: bool, without: bool) -> None:
    for accelerator, clean in (("orjson", with_orjson), (None, without)):
        _json.use(accelerator)
        value, found = _read_line(line)
        assert found is clean, accelerator
        assert value is not None
    _json.use("orjson")


def test_an_integer_past_64_bits_is_refused_with_or_without_orjson(tmp_path: Any) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"custom_id": "a", "params": {
        "model": "claude-haiku-4-5", "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"n": 123456789012345678901234567890}}}) + "\n")
    from claudebatch._inputs import RequestValidator

    for accelerator in ("orjson", None):
        _json.use(accelerator)
        validator = RequestValidator()
        with open(path, "rb") as handle:
            for where, item in iter_jsonl_lines(handle, str(path)):
                assert validator.check(item, where) is None
        assert "outside the signed 64-bit integer range" in validator.problems[0]
    _json.use("orjson")


def _planned_both_ways(path: Any) -> List[bytes]:
    """The spool's bytes for the requests in ``path``, planned with orjson and without."""
    from claudebatch._job.plan import plan_requests

    found = []
    for accelerator in ("orjson", None):
        _json.use(accelerator)
        spool, _ = plan_requests(str(path), max_requests=10, max_bytes=10**6, job_name="t")
        found.append(b"".join(spool.lines(0, spool.tell())))
        spool.close()
    return found


@pytest.mark.parametrize("number", ["0.00001", "1e-5", "1E-5", "2.5e-9", "0.0001", "1e16", "1.5",
                                    "0.5", "123456.789", "1e+300", "-0.0", "100"])
def test_the_spool_holds_the_standard_librarys_bytes_for_every_number(
        tmp_path: Any, number: str) -> None:
    text = ('{"custom_id":"a","params":{"model":"claude-haiku-4-5","max_tokens":5,'
            '"messages":[{"role":"user","content":"re-run the e-mail"}],'
            f'"metadata":{{"x":{number}}}}}}}\n')
    path = tmp_path / "in.jsonl"
    path.write_text(text)
    found = _planned_both_ways(path)
    assert found[0] == found[1] == _json.std_dumps(json.loads(text))


@pytest.mark.parametrize("line, clean", [
    (b"12345678", False), (b'"a string"', False), (b'{"a":[1,2.5,"x"]}', True),
    (b'{"a":123456789012345678901234567890}', False), (b'{"a":1e-05}', False),
    (b'{"a":' + b"[" * 300 + b"]" * 300 + b"}", False),
])
def test_a_long_line_is_checked_by_walking_what_orjson_read(
        monkeypatch: pytest.MonkeyPatch, line: bytes, clean: bool) -> None:
    from claudebatch import _inputs

    _json.use("orjson")
    monkeypatch.setattr(_inputs, "_WALK_ABOVE", 4)  # every line here counts as long
    value, found = _read_line(line)
    assert found is clean
    assert value == _json.std_loads(line) or not found


@pytest.mark.parametrize("pad", [0, 70_000])  # a short line (its shape), a long one (walked)
@pytest.mark.parametrize("depth", [253, 254, 255, 256])
def test_a_request_nested_as_deeply_as_the_api_allows_is_planned(
        tmp_path: Any, depth: int, pad: int) -> None:
    """orjson writes at most 254 levels: a clean line nested deeper (the API takes 256)
    must still be serialized (by json), not crash the planner."""
    messages: Any = "x" * pad  # the line is nested ``depth`` levels: line, params, messages...
    for _ in range(depth - 2):
        messages = [messages]
    value = {"custom_id": "a", "params": {"model": "claude-haiku-4-5", "max_tokens": 5,
                                          "messages": messages}}
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(value) + "\n")
    found = _planned_both_ways(path)
    assert found[0] == found[1] == _json.std_dumps(value)
