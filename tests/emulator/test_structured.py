"""Requests asking for a JSON schema get JSON that follows it; the answer faults break a
share of them the ways a real job meets (for #14's repair path)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Dict

import pytest
from jsonschema import Draft202012Validator

from claudebatch.emulator import Emulator, Faults, ManualClock

if TYPE_CHECKING:
    from conftest import Api

Req = Callable[..., Dict[str, Any]]

SCHEMA = {"type": "object", "additionalProperties": False,
          "properties": {"sentiment": {"enum": ["negative", "neutral", "positive"]},
                         "urgency": {"type": "integer", "minimum": 1, "maximum": 5},
                         "summary": {"type": "string", "maxLength": 80},
                         "tags": {"type": "array", "items": {"type": "string"}},
                         "customer": {"$ref": "#/$defs/customer"}},
          "required": ["sentiment", "urgency", "summary", "customer"],
          "$defs": {"customer": {"type": "object", "required": ["name"],
                                 "properties": {"name": {"type": "string"},
                                                "plan": {"enum": ["free", "pro"]}}}}}


def structured(req: Req, custom_id: str, **params: Any) -> Dict[str, Any]:
    return req(custom_id, f"ticket {custom_id}", max_tokens=params.pop("max_tokens", 400),
               output_config={"format": {"type": "json_schema", "schema": SCHEMA}}, **params)


def answers(api: Api, clock: ManualClock, requests: Any) -> Dict[str, Any]:
    batch = api.create(requests)
    clock.advance(3600)
    return {line["custom_id"]: line["result"] for line in api.results(batch["id"])}


def test_answers_follow_the_schema_and_repeat_for_the_same_request(
        make_emulator: Callable[..., Emulator], make_api: Callable[..., Api],
        clock: ManualClock, req: Req) -> None:
    api = make_api(make_emulator(rate=100.0))
    first = answers(api, clock, [structured(req, f"r{i}") for i in range(30)])
    again = answers(api, clock, [structured(req, f"r{i}") for i in range(30)])
    check = Draft202012Validator(SCHEMA)
    for custom_id, result in first.items():
        message = result["message"]
        assert message["stop_reason"] == "end_turn"
        value = json.loads(message["content"][0]["text"])
        assert not list(check.iter_errors(value)), value
        assert again[custom_id]["message"]["content"] == message["content"]


@pytest.mark.parametrize("fault", ["invalid_json", "schema_violation", "truncated", "refused"])
def test_each_answer_fault_breaks_its_share(
        make_emulator: Callable[..., Emulator], make_api: Callable[..., Api],
        clock: ManualClock, req: Req, fault: str) -> None:
    api = make_api(make_emulator(rate=100.0, faults=Faults(**{fault: 1.0})))
    results = answers(api, clock, [structured(req, "s"), req("plain")])
    assert results["plain"]["message"]["stop_reason"] in ("end_turn", "max_tokens")
    message = results["s"]["message"]
    text = message["content"][0]["text"]
    if fault == "refused":
        assert message["stop_reason"] == "refusal"
    elif fault == "truncated":
        assert message["stop_reason"] == "max_tokens"
        with pytest.raises(ValueError):
            json.loads(text)
    elif fault == "invalid_json":
        with pytest.raises(ValueError):
            json.loads(text)
    else:
        value = json.loads(text)
        assert list(Draft202012Validator(SCHEMA).iter_errors(value))


def test_an_answer_longer_than_max_tokens_is_cut_there(
        make_emulator: Callable[..., Emulator], make_api: Callable[..., Api],
        clock: ManualClock, req: Req) -> None:
    api = make_api(make_emulator(rate=100.0))
    message = answers(api, clock, [structured(req, "s", max_tokens=5)])["s"]["message"]
    assert message["stop_reason"] == "max_tokens" and message["usage"]["output_tokens"] == 5
