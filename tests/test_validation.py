"""``create`` validates everything before sending, and reports every problem at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest
import responses

import claudebatch.client
import claudebatch.inputs
from claudebatch import BatchClient, Request, ValidationError
from claudebatch.inputs import MAX_REQUESTS_PER_BATCH, validate_batch

BATCHES = "https://api.anthropic.com/v1/messages/batches"


def params(**overrides: Any) -> Dict[str, Any]:
    p: Dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 16,
                         "messages": [{"role": "user", "content": "hi"}]}
    p.update(overrides)
    return {k: v for k, v in p.items() if v is not None}


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
    monkeypatch.setattr(claudebatch.inputs, "MAX_REQUESTS_PER_BATCH", 10)
    items = [{"custom_id": f"r{i}", "params": params()} for i in range(11)]
    assert len(validate_batch(items[:10])) == 10
    with pytest.raises(ValidationError):
        validate_batch(items)


@pytest.mark.parametrize("custom_id", [
    "", "x" * 65, "has space", "dot.ted", "slash/ed", "ünïcode", "semi;colon", 42, None,
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
    monkeypatch.setattr(claudebatch.client, "MAX_BATCH_BYTES", 200)
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


def test_max_tokens_zero_is_accepted_to_prewarm_the_cache() -> None:
    from claudebatch.inputs import describe_params_problems

    assert describe_params_problems(params(max_tokens=0)) == []
