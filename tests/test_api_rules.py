"""The client refuses, before sending, what the API version and betas in use refuse.

A job under ``anthropic-version: 2026-10-21`` whose requests carry ``temperature``
would come back hours later as errored results: it is refused at once, naming
file:line and the way out. Betas the params need are added to the header (and
said so); a ``max_tokens`` no beta allows is refused.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict

import pytest
import responses

from claudebatch import BatchClient, ConfigurationError, ValidationError
from claudebatch.apirules import (
    DEFAULT_API_VERSION,
    EXTENDED_OUTPUT_BETA,
    KNOWN_BETAS,
    request_needs,
    version_problems,
)
from claudebatch.cli import main

from .conftest import API_KEY, BASE_URL, BATCHES_URL


def params(**overrides: Any) -> Dict[str, Any]:
    p: Dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 16,
                         "messages": [{"role": "user", "content": "hi"}]}
    p.update(overrides)
    return p


def make_client(**kwargs: Any) -> BatchClient:
    return BatchClient(api_key=API_KEY, base_url=BASE_URL, load_entry_points=False, **kwargs)


def write_jsonl(path: Path, rows: Any) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# --- the validator's rules ---------------------------------------------------------------

def test_the_default_version_is_the_latest_as_in_the_official_sdk() -> None:
    assert DEFAULT_API_VERSION == "2026-10-21"
    assert make_client().api_version == "2026-10-21"


def test_version_rules_name_each_field() -> None:
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                               "data": "x"}}
    cited = {"type": "text", "text": "x", "citations": [{"type": "char_location"}]}
    p = params(temperature=1.0, top_k=5, messages=[
        {"role": "user", "content": [cited, {"type": "text", "text": "y", "citations": []}]},
        {"role": "assistant", "content": [document]}])
    fields = [field for field, _ in version_problems(p, "2026-10-21")]
    assert fields == ["temperature", "top_k", "messages.0.content.0.citations",
                      "messages.1.content.0"]
    assert version_problems(p, "2023-06-01") == []


def test_request_needs() -> None:
    assert request_needs(params(max_tokens=200_000, model="claude-opus-5-5"), ()).add == {
        EXTENDED_OUTPUT_BETA}
    assert request_needs(params(max_tokens=200_000, model="claude-opus-5-5"),
                      [EXTENDED_OUTPUT_BETA]).add == frozenset()
    over = request_needs(params(max_tokens=300_001, model="claude-opus-5-5"), ())
    assert over.problems and "at most 300,000" in over.problems[0][1]
    haiku = request_needs(params(max_tokens=100_000, model="claude-haiku-4-5"), ())
    assert haiku.problems[0][0] == "max_tokens" and "64,000" in haiku.problems[0][1]
    assert request_needs(params(max_tokens=10**6, model="claude-future-9"), ()).problems == ()
    assert request_needs(params(context_management={}), ()).add == {
        "context-management-2025-06-27"}
    mcp = request_needs(params(mcp_servers=[]), ())
    assert mcp.add == frozenset() and "mcp-client-2025-11-20" in mcp.problems[0][1]
    assert request_needs(params(mcp_servers=[]), ["mcp-client-2025-11-20"]).problems == ()


def test_sampling_parameters_are_refused_before_sending_naming_file_line_and_way_out(
        tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [
        {"custom_id": "ok", "params": params()},
        {"custom_id": "warm", "params": params(temperature=1.0)},
        {"custom_id": "nucleus", "params": params(top_p=0.9, top_k=40)}])
    with responses.RequestsMock() as mock, pytest.raises(ValidationError) as info:
        make_client().create(path)
        assert not mock.calls
    assert info.value.total == 3
    first = info.value.problems[0]
    assert first.startswith(f"{path} line 2 (custom_id 'warm'): params.temperature: refused "
                            "under anthropic-version 2026-10-21")
    assert "--api-version 2023-06-01" in first and "api_version='2023-06-01'" in first


def test_2023_06_01_still_takes_sampling_parameters(batch_json: Any) -> None:
    client = make_client(api_version="2023-06-01")
    with responses.RequestsMock() as mock:
        mock.post(BATCHES_URL, json=batch_json("msgbatch_1"))
        client.create([{"custom_id": "a", "params": params(temperature=0.2)}])
        assert mock.calls[0].request.headers["anthropic-version"] == "2023-06-01"


def test_a_job_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [
        {"custom_id": f"r{i}", "params": params(temperature=0.5)} for i in range(3)])
    with responses.RequestsMock() as mock, pytest.raises(ValidationError) as info:
        make_client().job(path, output=str(tmp_path / "out.jsonl")).run()
        assert not mock.calls
    assert info.value.total == 3 and f"{path} line 3" in info.value.problems[2]


def test_a_max_tokens_beyond_what_any_beta_allows_is_refused() -> None:
    with responses.RequestsMock(), pytest.raises(ValidationError) as info:
        make_client().create([{"custom_id": "a", "params": params(max_tokens=100_000)}])
    assert "params.max_tokens: 100,000 is over the 64,000" in info.value.problems[0]


def test_the_extended_output_beta_is_added_and_said(
        batch_json: Any, caplog: pytest.LogCaptureFixture) -> None:
    client = make_client()
    with responses.RequestsMock() as mock, caplog.at_level(logging.WARNING, "claudebatch"):
        mock.post(BATCHES_URL, json=batch_json("msgbatch_1"))
        mock.get(f"{BATCHES_URL}/msgbatch_1", json=batch_json("msgbatch_1"))
        client.create([{"custom_id": "a",
                        "params": params(model="claude-opus-5-5", max_tokens=250_000)}])
        client.retrieve("msgbatch_1")
        create, retrieve = (call.request.headers for call in mock.calls)
    assert create["anthropic-beta"] == EXTENDED_OUTPUT_BETA
    assert "anthropic-beta" not in retrieve  # only the batch that needs it
    assert EXTENDED_OUTPUT_BETA in caplog.text
    assert "sending the anthropic-beta header" in caplog.text


def test_betas_given_are_sent_with_those_added(batch_json: Any) -> None:
    client = make_client(betas=["mcp-client-2025-11-20"])
    with responses.RequestsMock() as mock:
        mock.post(BATCHES_URL, json=batch_json("msgbatch_1"))
        client.create([{"custom_id": "a", "params": params(mcp_servers=[],
                                                            context_management={})}])
        header = mock.calls[0].request.headers["anthropic-beta"]
    assert header.split(",") == ["context-management-2025-06-27", "mcp-client-2025-11-20"]


@pytest.mark.parametrize("betas, words", [
    (["Output 300k"], "is not a beta name"),
    (["a;b"], "is not a beta name"),
    (["output-300k-2026-03-24,"], "is not a beta name"),
    ([""], "is not a beta name"),
    ([7], "is not a beta name"),
])
def test_malformed_beta_names_are_refused(betas: Any, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        make_client(betas=betas)


def test_an_unknown_beta_name_is_sent_with_a_warning(
        batch_json: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The service may know a newer beta than this version: it refuses an unknown one at
    the first create, before anything is made, so the client warns and lets it through."""
    with caplog.at_level(logging.WARNING, "claudebatch"):
        client = make_client(betas=["newer-feature-2027-01-01", "newer-feature-2027-01-01"])
    assert client.betas == ("newer-feature-2027-01-01",)
    assert "'newer-feature-2027-01-01' is not a beta this version knows" in caplog.text
    with responses.RequestsMock() as mock:
        mock.post(BATCHES_URL, json=batch_json("msgbatch_1"))
        client.create([{"custom_id": "a", "params": params()}])
        assert mock.calls[0].request.headers["anthropic-beta"] == "newer-feature-2027-01-01"


def test_an_unknown_api_version_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="api_version must be one of 2023-06-01, "
                                                 "2026-10-21"):
        make_client(api_version="2024-01-01")


def test_the_known_betas_include_those_the_client_adds() -> None:
    assert EXTENDED_OUTPUT_BETA in KNOWN_BETAS
    assert {"context-management-2025-06-27", "structured-outputs-2025-11-13",
            "message-batches-2024-09-24"} <= KNOWN_BETAS


# --- the CLI -------------------------------------------------------------------------------

def test_cli_refuses_with_the_way_out_and_takes_api_version(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], batch_json: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", BASE_URL)
    path = write_jsonl(tmp_path / "in.jsonl", [{"custom_id": "a",
                                                "params": params(temperature=0.0)}])
    assert main(["submit", str(path)]) == 3
    err = capsys.readouterr().err
    assert "line 1" in err and "--api-version 2023-06-01" in err and "Traceback" not in err
    with responses.RequestsMock() as mock:
        mock.post(BATCHES_URL, json=batch_json("msgbatch_1"))
        assert main(["submit", str(path), "--api-version", "2023-06-01"]) == 0
    assert main(["submit", str(path), "--beta", "not a beta"]) == 2
    assert "is not a beta name" in capsys.readouterr().err


def test_inference_geo_on_an_older_model_is_refused_before_sending() -> None:
    with responses.RequestsMock(), pytest.raises(ValidationError) as info:
        make_client().create([
            {"custom_id": "old", "params": params(model="claude-sonnet-4-5", inference_geo="us")},
            {"custom_id": "new", "params": params(model="claude-sonnet-5-5", inference_geo="us")}])
    assert info.value.total == 1
    assert "params.inference_geo: claude-sonnet-4-5 does not take it" in info.value.problems[0]


def test_a_model_the_catalog_does_not_know_is_not_held_to_a_prefix_familys_limits() -> None:
    future = request_needs(params(model="claude-opus-4-9", max_tokens=100_000,
                                  inference_geo="us"), ())
    assert future.problems == () and future.add == frozenset()
    dated = request_needs(params(model="claude-sonnet-4-5-20250929", max_tokens=100_000), ())
    assert dated.problems  # a dated snapshot of a known model is known


def test_null_optional_fields_count_as_not_given() -> None:
    needs = request_needs(params(model="claude-haiku-4-5", inference_geo=None,
                                 mcp_servers=None, context_management=None), ())
    assert needs == request_needs(params(model="claude-haiku-4-5"), ())


def test_betas_may_be_given_as_the_header_writes_them() -> None:
    assert make_client(betas="output-300k-2026-03-24, context-1m-2025-08-07").betas == (
        "output-300k-2026-03-24", "context-1m-2025-08-07")
    assert make_client(betas=["output-300k-2026-03-24,context-1m-2025-08-07"]).betas == (
        "output-300k-2026-03-24", "context-1m-2025-08-07")
    assert make_client(betas=None).betas == ()  # type: ignore[arg-type]
