"""The emulator answers what the live service of late 2026 refuses, as the service does.

A create's headers choose the rules: ``anthropic-version`` (2026-10-21 refuses the
sampling parameters and two content placements) and ``anthropic-beta`` (which
gates the beta parameters and the extended output). Unknown versions and beta
names refuse the create; everything about one request's ``params`` comes back as
that request's ``errored`` result, checked against the vendored spec's schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

import pytest

from claudebatch.emulator import ManualClock

if TYPE_CHECKING:
    from conftest import Api

Req = Callable[..., Dict[str, Any]]


def outcome(api: Api, clock: ManualClock, requests: List[Dict[str, Any]], *,
            version: str = "2023-06-01", betas: Optional[str] = None) -> Dict[str, Any]:
    """Create a batch with these headers, let it end; every custom_id's result."""
    headers = {"anthropic-version": version}
    if betas is not None:
        headers["anthropic-beta"] = betas
    response = api.call("POST", "", json={"requests": requests}, headers=headers)
    assert response.status_code == 200, response.text
    clock.advance(3600)
    return {line["custom_id"]: line["result"] for line in api.results(response.json()["id"])}


def error_of(result: Dict[str, Any]) -> str:
    assert result["type"] == "errored", result
    error = result["error"]["error"]
    assert error["type"] == "invalid_request_error"
    return str(error["message"])


# --- the create's headers ---------------------------------------------------------------

def test_an_unknown_api_version_is_refused(api: Api, req: Req) -> None:
    response = api.call("POST", "", json={"requests": [req("a")]},
                        headers={"anthropic-version": "2025-01-01"})
    assert response.status_code == 400
    assert "anthropic-version" in response.json()["error"]["message"]


def test_an_unknown_beta_name_is_refused_with_the_services_words(api: Api, req: Req) -> None:
    response = api.call("POST", "", json={"requests": [req("a")]},
                        headers={"anthropic-beta": "message-batches-2024-09-24,no-such-beta"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(
        "Unexpected value(s) `no-such-beta` for the `anthropic-beta` header")
    assert api.emu.batches_created == 0


# --- API version 2026-10-21 ---------------------------------------------------------------

@pytest.mark.parametrize("name, value", [("temperature", 1.0), ("top_p", 0.9), ("top_k", 5)])
def test_sampling_parameters_are_refused_under_2026_10_21_even_at_defaults(
        api: Api, clock: ManualClock, req: Req, name: str, value: Any) -> None:
    results = outcome(api, clock, [req("r", **{name: value})], version="2026-10-21")
    assert error_of(results["r"]) == f"{name}: Extra inputs are not permitted"
    results = outcome(api, clock, [req("r", **{name: value})], version="2023-06-01")
    assert results["r"]["type"] == "succeeded"


def test_a_document_in_an_assistant_message_is_refused_under_2026_10_21(
        api: Api, clock: ManualClock, req: Req) -> None:
    document = {"type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "notes"}}
    messages = [{"role": "user", "content": "hi"},
                {"role": "assistant", "content": [document]},
                {"role": "user", "content": "go on"}]
    results = outcome(api, clock, [req("r", messages=messages)], version="2026-10-21")
    assert error_of(results["r"]).startswith("messages.1.content.0:")
    assert outcome(api, clock, [req("r", messages=messages)])["r"]["type"] == "succeeded"


def test_citations_on_user_text_are_refused_under_2026_10_21(
        api: Api, clock: ManualClock, req: Req) -> None:
    cited = {"type": "text", "text": "as said", "citations": [{
        "type": "char_location", "cited_text": "x", "document_index": 0,
        "document_title": None, "start_char_index": 0, "end_char_index": 1}]}
    messages = [{"role": "user", "content": [cited]}]
    results = outcome(api, clock, [req("r", messages=messages)], version="2026-10-21")
    assert error_of(results["r"]).startswith("messages.0.content.0.citations:")
    assert outcome(api, clock, [req("r", messages=messages)])["r"]["type"] == "succeeded"


# --- betas ------------------------------------------------------------------------------

def test_beta_parameters_need_their_beta_in_the_header(
        api: Api, clock: ManualClock, req: Req) -> None:
    request = req("r", context_management={"edits": []})
    assert error_of(outcome(api, clock, [request])["r"]) == (
        "context_management: Extra inputs are not permitted")  # no beta: the plain schema
    needs = error_of(outcome(api, clock, [request], betas="message-batches-2024-09-24")["r"])
    assert needs.startswith("context_management: this parameter requires the anthropic-beta")
    assert "context-management-2025-06-27" in needs
    results = outcome(api, clock, [request], betas="context-management-2025-06-27")
    assert results["r"]["type"] == "succeeded"


def test_extended_output_needs_its_beta_and_a_model_that_has_it(
        api: Api, clock: ManualClock, req: Req) -> None:
    big = req("big", model="claude-opus-5-5", max_tokens=300_000)
    over = req("over", model="claude-opus-5-5", max_tokens=300_001)
    haiku = req("haiku", model="claude-haiku-4-5", max_tokens=100_000)
    plain = outcome(api, clock, [big, over, haiku])
    assert "128000, which is the maximum allowed" in error_of(plain["big"])
    extended = outcome(api, clock, [big, over, haiku], betas="output-300k-2026-03-24")
    assert extended["big"]["type"] == "succeeded"
    assert "300000, which is the maximum allowed" in error_of(extended["over"])
    assert "64000, which is the maximum allowed" in error_of(extended["haiku"])


# --- the spec's schema -------------------------------------------------------------------

IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "AA=="}}


@pytest.mark.parametrize("params, message", [
    ({"metadata": {"user_id": "u", "team": "x"}}, "metadata.team: Extra inputs are not permitted"),
    ({"service_tier": "premium"}, "service_tier: Input should be 'auto' or 'standard_only'"),
    ({"tools": [{"name": "t", "input_schema": {"type": "array"}}]},
     "tools.0.input_schema.type: Input should be 'object'"),
    ({"messages": [{"role": "user", "content": [IMAGE]}]},
     "messages.0.content.0.source.media_type: Input should be 'image/jpeg', 'image/png', "
     "'image/gif' or 'image/webp'"),
    ({"messages": [{"role": "user", "content": [{"type": "hologram", "data": "x"}]}]},
     "messages.0.content.0.type: Input tag 'hologram' found using 'type' does not match"),
    ({"tools": [{"type": "teleport_20990101", "name": "beam"}]},
     "tools.0.type: Input tag 'teleport_20990101' found using 'type' does not match"),
    ({"max_tokens": "many"}, "max_tokens: Input should be a valid integer"),
])
def test_what_the_spec_calls_invalid_comes_back_errored(
        api: Api, clock: ManualClock, req: Req, params: Dict[str, Any], message: str) -> None:
    results = outcome(api, clock, [req("bad", **params), req("good")])
    assert results["good"]["type"] == "succeeded"
    assert error_of(results["bad"]).startswith(message)


def test_what_the_spec_allows_succeeds(api: Api, clock: ManualClock, req: Req) -> None:
    rich = req("rich", system=[{"type": "text", "text": "be brief"}],
               metadata={"user_id": "u-1"}, service_tier="auto", stop_sequences=["END"],
               tools=[{"name": "lookup", "description": "find",
                       "input_schema": {"type": "object", "properties": {}}},
                      {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
               tool_choice={"type": "auto"},
               messages=[{"role": "user", "content": [
                   {"type": "text", "text": "look"},
                   {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                "data": "AA=="}}]}])
    results = outcome(api, clock, [rich], version="2026-10-21")
    assert results["rich"]["type"] == "succeeded", results


def test_inference_geo_is_refused_on_older_models_and_reported_in_usage(
        api: Api, clock: ManualClock, req: Req) -> None:
    results = outcome(api, clock, [req("old", model="claude-haiku-4-5", inference_geo="us"),
                                   req("new", model="claude-opus-5-5", inference_geo="us"),
                                   req("default", model="claude-opus-5-5")])
    assert "inference_geo" in error_of(results["old"])
    assert results["new"]["message"]["usage"]["inference_geo"] == "us"
    assert results["default"]["message"]["usage"]["inference_geo"] == "global"


def test_paused_and_refused_answers_match_the_spec_and_a_pause_continues(
        make_emulator: Callable[..., Any], make_api: Callable[..., Api],
        clock: ManualClock, req: Req) -> None:
    api = make_api(make_emulator(rate=100.0, pause_rate=1.0, refusal_rate=0.0))
    search = [{"type": "web_search_20250305", "name": "web_search"}]
    first = outcome(api, clock, [req("s", tools=search)])["s"]["message"]
    assert first["stop_reason"] == "pause_turn"
    assert [block["type"] for block in first["content"]] == ["server_tool_use"]
    messages = [{"role": "user", "content": "Hello"},
                {"role": "assistant", "content": first["content"]}]
    again = outcome(api, clock, [req("s", tools=search, messages=messages)])["s"]
    assert again["type"] == "succeeded" and again["message"]["stop_reason"] == "end_turn"

    refusing = make_api(make_emulator(rate=100.0, refusal_rate=1.0))
    refused = outcome(refusing, clock, [req("r")])["r"]["message"]
    assert refused["stop_reason"] == "refusal"


@pytest.mark.parametrize("name, value, beta", [
    ("fallbacks", "default", "server-side-fallback-2026-07-01"),
    ("fallback_credit_token", "tok", "fallback-credit-2026-07-01")])
def test_beta_parameters_newer_than_the_vendored_spec_are_taken_with_their_beta(
        api: Api, clock: ManualClock, req: Req, name: str, value: Any, beta: str) -> None:
    request = req("r", **{name: value})
    assert "requires the anthropic-beta header" in error_of(
        outcome(api, clock, [request], betas="message-batches-2024-09-24")["r"])
    assert outcome(api, clock, [request], betas=beta)["r"]["type"] == "succeeded"


def test_the_beta_path_takes_the_beta_schema_and_still_gates_beta_features(
        api: Api, clock: ManualClock, req: Req) -> None:
    """The official SDK 2.x's beta namespace sends ``?beta=true`` with no beta header."""
    container = req("c", container={"id": None, "skills": []})
    managed = req("m", context_management={"edits": []})
    response = api.call("POST", "", json={"requests": [container, managed]},
                        params={"beta": "true"})
    assert response.status_code == 200, response.text
    clock.advance(3600)
    results = {line["custom_id"]: line["result"] for line in api.results(response.json()["id"])}
    assert results["c"]["type"] == "succeeded"
    assert "requires the anthropic-beta header" in error_of(results["m"])


def test_shapes_the_official_sdk_2_15_builds_beyond_the_vendored_spec_are_taken(
        api: Api, clock: ManualClock, req: Req) -> None:
    newer = [
        req("search", tools=[{"type": "web_search_20260318", "name": "web_search"}]),
        req("between", thinking={"type": "between_tools"}, max_tokens=4000),
        req("container", container={"skills": []}),
        req("profile", user_profile_id="up_1"),
        req("diagnostics", diagnostics={"previous_message_id": "msg_1"}),
        req("geo_null", model="claude-haiku-4-5", inference_geo=None),
    ]
    results = outcome(api, clock, newer, version="2026-10-21")
    assert {k: r["type"] for k, r in results.items()} == {r["custom_id"]: "succeeded"
                                                          for r in newer}


def test_an_mcp_toolset_without_a_name_is_taken_with_its_beta(
        api: Api, clock: ManualClock, req: Req) -> None:
    request = req("r", mcp_servers=[{"type": "url", "url": "https://mcp.example/sse",
                                     "name": "ex"}],
                  tools=[{"type": "mcp_toolset", "mcp_server_name": "ex"}])
    results = outcome(api, clock, [request], betas="mcp-client-2025-11-20")
    assert results["r"]["type"] == "succeeded", results


def test_a_pattern_is_matched_to_the_very_end(api: Api, clock: ManualClock, req: Req) -> None:
    """Python's ``$`` matches before a final newline; the service's does not."""
    bad = req("bad", tools=[{"name": "get_weather\n", "input_schema": {"type": "object"}}])
    assert "tools.0.name: String should match pattern" in error_of(
        outcome(api, clock, [bad])["bad"])


def test_an_api_version_header_with_spaces_around_it_is_read(api: Api, req: Req) -> None:
    response = api.call("POST", "", json={"requests": [req("a")]},
                        headers={"anthropic-version": "2026-10-21 "})
    assert response.status_code == 200, response.text
