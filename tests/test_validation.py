"""``create`` validates everything before sending, and reports every problem at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest
import responses

import claudebatch._client
import claudebatch._inputs
from claudebatch import BatchClient, Request, ValidationError
from claudebatch._inputs import MAX_REQUESTS_PER_BATCH, validate_batch

BATCHES = "https://api.anthropic.com/v1/messages/batches"


def params(**overrides: Any) -> Dict[str, Any]:
    p: Dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 16,
                         "messages": [{"role": "user", "content": "hi"}]}
    p.update(overrides)
    return {k: v for k, v in p.items() if v is not None}


@pytest.fixture
def legacy_client(clock: Any) -> BatchClient:
    """A client on API version 2023-06-01, which still takes temperature, top_p and top_k."""
    return BatchClient(api_key="sk-ant-test", base_url="https://api.anthropic.com", clock=clock,
                       api_version="2023-06-01")


def refused(client: BatchClient, mock: responses.RequestsMock, items: Any) -> ValidationError:
    """Assert ``create(items)`` raises ValidationError and sends nothing; return the error."""
    with pytest.raises(ValidationError) as info:
        client.create(items)
    assert len(mock.calls) == 0, "nothing may be sent when validation fails"
    return info.value


def test_all_problems_are_reported_in_one_error_naming_index_and_custom_id(
        client: BatchClient, mock: responses.RequestsMock) -> None:
    items: List[Any] = [
        {"custom_id": "ok-0", "params": params()},
        {"custom_id": "has space", "params": params()},
        {"custom_id": "ok-2", "params": params(model=None)},
        {"custom_id": "ok-0", "params": params()},
        {"custom_id": "ok-4", "params": params(max_tokens=None, messages=None)},
    ]
    error = refused(client, mock, items)
    message = str(error)
    assert error.total == 5
    assert len(error.problems) == 5
    for index, custom_id in [(1, "has space"), (2, "ok-2"), (3, "ok-0"), (4, "ok-4")]:
        assert any(f"request {index}" in p and custom_id in p for p in error.problems), (
            index, custom_id, error.problems)
    assert not any(p.startswith("request 0") for p in error.problems)  # the valid first one
    assert "model" in message
    assert "max_tokens" in message
    assert "messages" in message
    assert "duplicate" in message


def test_a_valid_list_is_sent(client: BatchClient, mock: responses.RequestsMock,
                              batch_json: Any) -> None:
    mock.post(BATCHES, json=batch_json("b1"))
    client.create([Request("a", params()), {"custom_id": "b", "params": params()}])
    assert len(mock.calls) == 1


def test_zero_requests_are_refused(client: BatchClient, mock: responses.RequestsMock) -> None:
    error = refused(client, mock, [])
    assert "at least one request" in str(error)


def test_more_than_100000_requests_are_refused(
        client: BatchClient, mock: responses.RequestsMock) -> None:
    p = params()
    items = ({"custom_id": f"r{i}", "params": p} for i in range(MAX_REQUESTS_PER_BATCH + 1))
    error = refused(client, mock, items)
    assert "100,000" in str(error)
    assert "100,001" in str(error)


def test_the_limit_is_inclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    # The full-size boundary costs a second; the same comparison at a small limit does not.
    assert MAX_REQUESTS_PER_BATCH == 100_000
    monkeypatch.setattr(claudebatch._inputs, "MAX_REQUESTS_PER_BATCH", 10)
    items = [{"custom_id": f"r{i}", "params": params()} for i in range(11)]
    assert len(validate_batch(items[:10])) == 10
    with pytest.raises(ValidationError):
        validate_batch(items)


@pytest.mark.parametrize("custom_id", [
    "", "x" * 65, "has space", "dot.ted", "slash/ed", "ünïcode", "semi;colon", 42, None,
    "abc\n", "abc\r\n", "\nabc", "a\ud800",
])
def test_bad_custom_ids_are_refused(client: BatchClient, mock: responses.RequestsMock,
                                    custom_id: Any) -> None:
    error = refused(client, mock, [{"custom_id": custom_id, "params": params()}])
    assert "request 0" in str(error)
    assert "custom_id" in str(error)


@pytest.mark.parametrize("custom_id", ["a", "x" * 64, "A-z_0-9", "-", "_"])
def test_good_custom_ids_pass(custom_id: str) -> None:
    assert validate_batch([{"custom_id": custom_id, "params": params()}])[0].custom_id == custom_id


def test_duplicate_custom_id_names_both_places(
        client: BatchClient, mock: responses.RequestsMock) -> None:
    items = [{"custom_id": c, "params": params()} for c in ["a", "b", "a"]]
    error = refused(client, mock, items)
    assert len(error.problems) == 1
    problem = error.problems[0]
    assert "request 2" in problem and "'a'" in problem and "request 0" in problem


@pytest.mark.parametrize("bad, field", [
    (params(model=None), "model"),
    (params(model=""), "model"),
    (params(max_tokens=None), "max_tokens"),
    (params(max_tokens=-1), "max_tokens"),
    (params(max_tokens="16"), "max_tokens"),
    (params(max_tokens=True), "max_tokens"),
    (params(messages=None), "messages"),
    (params(messages=[]), "messages"),
    (params(messages="hi"), "messages"),
    (params(stream=True), "stream"),
])
def test_params_problems_are_refused(client: BatchClient, mock: responses.RequestsMock,
                                     bad: Dict[str, Any], field: str) -> None:
    error = refused(client, mock, [{"custom_id": "r1", "params": bad}])
    assert f"params.{field}" in str(error)
    assert "'r1'" in str(error)


@pytest.mark.parametrize("item", [
    {"custom_id": "r1"},
    {"custom_id": "r1", "params": "not an object"},
    {"custom_id": "r1", "params": params(), "extra": 1},
    "a string",
])
def test_malformed_request_objects_are_refused(
        client: BatchClient, mock: responses.RequestsMock, item: Any) -> None:
    error = refused(client, mock, [item])
    assert "request 0" in str(error)


def test_stream_false_is_allowed() -> None:
    assert validate_batch([{"custom_id": "r", "params": params(stream=False)}])


def test_many_problems_are_counted_beyond_the_listed_ones(
        client: BatchClient, mock: responses.RequestsMock) -> None:
    items = [{"custom_id": f"bad id {i}", "params": params()} for i in range(50)]
    error = refused(client, mock, items)
    assert error.total == 50
    assert 0 < len(error.problems) < 50
    assert f"{50 - len(error.problems)} more" in str(error)


def test_a_body_over_the_size_limit_is_refused_before_sending(
        client: BatchClient, mock: responses.RequestsMock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claudebatch._client, "MAX_BATCH_BYTES", 200)
    items = [{"custom_id": f"r{i}", "params": params()} for i in range(5)]
    error = refused(client, mock, items)
    assert "bytes" in str(error)


def test_create_from_a_jsonl_path_names_bad_lines_by_file_and_line(
        client: BatchClient, mock: responses.RequestsMock, tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    lines = [json.dumps({"custom_id": "a", "params": params()}), "{not json",
             "", json.dumps({"custom_id": "b c", "params": params()})]
    path.write_text("\n".join(lines) + "\n")
    error = refused(client, mock, str(path))
    message = str(error)
    assert f"{path} line 2" in message
    assert f"{path} line 4" in message
    assert "line 3" not in message  # a blank line is skipped, not an error


@pytest.mark.parametrize("extra", [{"max_tokens": 0}, {"speed": "fast"}, {"store": True},
                                   {"previous_thread_event_id": "evt_1"},
                                   {"cache_hint": "x"}, {"context_hint": "x"},
                                   {"research_preview_2026_02": "active"}])
def test_what_a_batch_refuses_is_refused_before_sending(extra: Dict[str, Any]) -> None:
    from claudebatch._inputs import describe_params_problems

    base = params()
    problems = describe_params_problems({**base, **extra})
    assert len(problems) == 1 and next(iter(extra)) in problems[0]
    assert describe_params_problems(base) == []


# --- JSON the API can read: what Python's json lets through ------------------------

def line(custom_id: str, **overrides: Any) -> str:
    """One JSONL line; ``overrides`` are raw JSON texts put into params as they are."""
    text = json.dumps({"custom_id": custom_id, "params": params()})
    extra = "".join(f', "{key}": {raw}' for key, raw in overrides.items())
    return text[:-2] + extra + "}}"


def write_lines(path: Path, lines: List[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    return str(path)


def problem_for(error: ValidationError, where: str) -> str:
    found = [p for p in error.problems if p.startswith(where + " ") or p.startswith(where + ":")]
    assert len(found) == 1, (where, error.problems)
    return found[0]


def test_a_custom_id_with_a_trailing_newline_is_refused_and_shown_readably(
        client: BatchClient, mock: responses.RequestsMock, tmp_path: Path) -> None:
    # `$` matches before a trailing newline: "abc\n" passed CUSTOM_ID_PATTERN.match
    error = refused(client, mock, [{"custom_id": "abc\n", "params": params()}])
    assert r"(found '\n')" in problem_for(error, "request 0")
    path = write_lines(tmp_path / "in.jsonl", [line("ok"), line("abc\n")])
    error = refused(client, mock, path)
    assert r"(found '\n')" in problem_for(error, f"{path} line 2")
    assert r"custom_id 'abc\n'" in error.problems[0]


def test_nan_and_infinity_in_jsonl_are_refused_naming_line_and_field(
        legacy_client: BatchClient, mock: responses.RequestsMock, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", [
        line("ok-1"),
        line("nan", temperature="NaN"),
        line("inf", metadata='{"weights": [1, Infinity]}'),
        line("ninf", top_p="-Infinity"),
        line("overflow", temperature="1e400"),  # float() makes it infinite
        line("ok-2", temperature="0.5"),
    ])
    error = refused(legacy_client, mock, path)
    assert error.total == 4
    assert "params.temperature is NaN" in problem_for(error, f"{path} line 2")
    assert "params.metadata.weights[1] is Infinity" in problem_for(error, f"{path} line 3")
    assert "params.top_p is -Infinity" in problem_for(error, f"{path} line 4")
    assert "params.temperature is 1e400" in problem_for(error, f"{path} line 5")
    assert "'nan'" in problem_for(error, f"{path} line 2")  # the custom_id is named


@pytest.mark.parametrize("value, text", [
    (float("nan"), "NaN"), (float("inf"), "Infinity"), (float("-inf"), "-Infinity")])
def test_nan_and_infinity_in_python_input_are_refused(
        legacy_client: BatchClient, mock: responses.RequestsMock, value: float, text: str) -> None:
    items = [{"custom_id": "ok", "params": params()},
             Request("bad", params(temperature=0.5, metadata={"scores": [0.1, value]}))]
    error = refused(legacy_client, mock, items)
    assert f"params.metadata.scores[1] is {text}" in problem_for(error, "request 1")
    assert "'bad'" in error.problems[0]


def test_integers_outside_64_bits_are_refused(
        client: BatchClient, mock: responses.RequestsMock, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", [
        line("max", metadata=f'[{2**63 - 1}, {-(2**63)}]'),  # the edges pass
        line("big").replace('"max_tokens": 16', '"max_tokens": ' + str(10**30)),
        line("over", metadata=f'{{"n": [{2**63}]}}'),
        line("under", metadata=str(-(2**63) - 1)),
        line("huge", metadata="9" * 5000),  # past int()'s 4,300-digit limit
    ])
    error = refused(client, mock, path)
    assert error.total == 4
    assert f"params.max_tokens is {10**30}, outside the signed 64-bit" in problem_for(
        error, f"{path} line 2")
    assert "params.metadata.n[0] is 9223372036854775808" in problem_for(error, f"{path} line 3")
    assert "params.metadata is -9223372036854775809" in problem_for(error, f"{path} line 4")
    assert "params.metadata is a 5,000-digit integer" in problem_for(error, f"{path} line 5")

    items = [{"custom_id": "a", "params": params(max_tokens=10**30)},
             {"custom_id": "b", "params": params(metadata={"n": -(2**63) - 1})},
             {"custom_id": "c", "params": params(metadata={"n": [2**63 - 1, -(2**63)]})}]
    error = refused(client, mock, items)
    assert error.total == 2
    assert "params.max_tokens is 1000000000000000000000000000000" in problem_for(
        error, "request 0")
    assert "params.metadata.n is -9223372036854775809" in problem_for(error, "request 1")


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_deeply_nested_jsonl_is_refused_not_a_recursion_error(
        client: BatchClient, mock: responses.RequestsMock, tmp_path: Path) -> None:
    from claudebatch._inputs import MAX_JSON_DEPTH

    assert MAX_JSON_DEPTH == 256
    path = write_lines(tmp_path / "in.jsonl", [
        line("ok-1"),
        nested(100_000),  # json.loads: RecursionError
        line("deep", metadata=nested(600)),  # json.loads copes; the limit does not
        # the request is level 1, params 2: 254 arrays in params reach level 256
        line("edge", metadata=nested(254)),
        line("over", metadata=nested(255)),
        line("ok-2"),
    ])
    error = refused(client, mock, path)
    assert error.total == 3
    assert "nested too deeply" in problem_for(error, f"{path} line 2")
    deep = problem_for(error, f"{path} line 3")
    assert "'deep'" in deep and "params.metadata[0]" in deep and "nested too deeply" in deep
    assert "nested too deeply" in problem_for(error, f"{path} line 5")


def test_deeply_nested_python_input_is_refused(
        client: BatchClient, mock: responses.RequestsMock) -> None:
    deep: Dict[str, Any] = {}
    inner = deep
    for _ in range(5000):
        inner["a"] = {}
        inner = inner["a"]
    cycle: List[Any] = []
    cycle.append(cycle)
    edge: List[Any] = []
    for _ in range(253):
        edge = [edge]  # 254 lists in params: level 256
    items = [{"custom_id": "deep", "params": params(metadata=deep)},
             {"custom_id": "cycle", "params": params(metadata=cycle)},
             {"custom_id": "edge", "params": params(metadata=edge)},
             {"custom_id": "over", "params": params(metadata=[edge])}]
    error = refused(client, mock, items)
    assert error.total == 3
    assert "params.metadata.a.a" in problem_for(error, "request 0")
    for where in ("request 0", "request 1", "request 3"):
        assert "nested too deeply" in problem_for(error, where)


def test_a_lone_surrogate_in_jsonl_is_refused_naming_the_field(
        client: BatchClient, mock: responses.RequestsMock, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", [
        line("pair", system='"\\ud83d\\ude00 is fine: a pair"'),
        line("lone", system='"a \\ud800 alone"'),
        line("low", metadata='{"x": ["\\uDC00"]}'),
        line("key", metadata='{"\\ud800": 1}'),
    ])
    error = refused(client, mock, path)
    assert error.total == 3
    assert (r"params.system holds a lone UTF-16 surrogate \ud800; the API's JSON must be "
            "valid UTF-8") in problem_for(error, f"{path} line 2")
    assert r"params.metadata.x[0] holds a lone UTF-16 surrogate \udc00" in problem_for(
        error, f"{path} line 3")
    assert r"surrogate \ud800" in problem_for(error, f"{path} line 4")


def test_a_lone_surrogate_in_python_input_is_refused(
        client: BatchClient, mock: responses.RequestsMock) -> None:
    items = [Request("a", params(system="x\ud800y")),
             {"custom_id": "b", "params": params(metadata={"k\udfff": 1})},
             {"custom_id": "c", "params": params(system="\U0001F600 fine")}]
    error = refused(client, mock, items)
    assert error.total == 2
    assert r"params.system holds a lone UTF-16 surrogate \ud800" in problem_for(
        error, "request 0")
    assert r"\udfff" in problem_for(error, "request 1")


def test_invalid_utf8_is_refused_per_line(
        client: BatchClient, mock: responses.RequestsMock, tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join([
        line("ok").encode(),
        line("latin1", system='"caf\xe9"').encode("latin-1"),
        line("encoded-surrogate", system='"x"').encode().replace(b'"x"', b'"\xed\xa0\x80"'),
        "\ufeff".encode() + line("bom").encode(),  # a byte order mark is skipped, as before
    ]) + b"\n")
    error = refused(client, mock, str(path))
    assert error.total == 2
    assert "not valid UTF-8: byte 0xe9" in problem_for(error, f"{path} line 2")
    assert "not valid UTF-8: byte 0xed" in problem_for(error, f"{path} line 3")


def test_values_json_cannot_write_are_refused(
        client: BatchClient, mock: responses.RequestsMock) -> None:
    items = [{"custom_id": "a", "params": params(metadata={"tags": {"x", "y"}})},
             {"custom_id": "b", "params": params(metadata={("a", "b"): 1})},
             {"custom_id": "c", "params": params(metadata={1: (1, 2.5, None, True)})}]
    error = refused(client, mock, items)
    assert error.total == 2
    assert "params.metadata.tags is a set" in problem_for(error, "request 0")
    assert "params.metadata has a key of type tuple" in problem_for(error, "request 1")


def test_a_job_refuses_them_too_before_sending(
        legacy_client: BatchClient, mock: responses.RequestsMock, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "in.jsonl", [
        line("ok"), line("nan", temperature="NaN"), nested(100_000),
        line("lone", system='"\\ud800"')])
    with pytest.raises(ValidationError) as info:
        legacy_client.job(path, output=str(tmp_path / "out.jsonl")).dry_run()
    assert [p.split(":")[0].split(" (")[0] for p in info.value.problems] == [
        f"{path} line {n}" for n in (2, 3, 4)]
    assert len(mock.calls) == 0


def test_the_planner_s_request_is_the_request_attrs_makes() -> None:
    """The planner makes each Request without its __init__ (#19): it must stay a class
    with nothing its __init__ would run."""
    import attrs

    from claudebatch._inputs import _request

    params = {"model": "m", "max_tokens": 1, "messages": []}
    made = _request("r-1", params)
    assert made == Request("r-1", params) and repr(made) == repr(Request("r-1", params))
    assert made.params is params and attrs.evolve(made, custom_id="x").custom_id == "x"
    assert not hasattr(Request, "__attrs_post_init__")
    assert all(f.validator is None and f.converter is None and f.on_setattr is None
               for f in attrs.fields(Request))
