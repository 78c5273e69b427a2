"""The official ``anthropic`` package, unchanged, against the emulator."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict

import pytest
import requests

from claudebatch.emulator import Emulator, ManualClock

anthropic = pytest.importorskip("anthropic")

Req = Callable[..., Dict[str, Any]]


@pytest.fixture
def sdk_emu(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(api_key="sk-ant-test", rate=100.0)


@pytest.fixture
def client(sdk_emu: Emulator) -> Any:
    return anthropic.Anthropic(api_key="sk-ant-test", base_url=sdk_emu.url, max_retries=0)


def raw(emu: Emulator, path: str) -> Any:
    r = requests.get(f"{emu.url}/v1/messages/batches{path}",
                     headers={"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"})
    assert r.status_code == 200
    if r.headers["content-type"] == "application/x-jsonl":
        return [json.loads(line) for line in r.content.splitlines()]
    return r.json()


def test_create_retrieve_results_delete(client: Any, sdk_emu: Emulator, clock: ManualClock,
                                        req: Req) -> None:
    batch = client.messages.batches.create(requests=[
        req("first", "Hello"), req("second", "Hi", max_tokens=3),
        req("broken", model="not-a-model"),
    ])
    assert batch.id.startswith("msgbatch_")
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 3

    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        client.messages.batches.results(batch.id)

    clock.advance(1)
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert ended.request_counts.succeeded == 2 and ended.request_counts.errored == 1
    assert ended.model_dump(mode="json") == _normalised(raw(sdk_emu, f"/{batch.id}"))

    results = {r.custom_id: r for r in client.messages.batches.results(batch.id)}
    assert set(results) == {"first", "second", "broken"}
    assert results["first"].result.type == "succeeded"
    message = results["first"].result.message
    assert message.content[0].type == "text" and message.content[0].text
    assert message.usage.output_tokens > 0
    assert results["second"].result.message.stop_reason == "max_tokens"
    assert results["broken"].result.type == "errored"
    assert results["broken"].result.error.error.type == "not_found_error"
    lines = {line["custom_id"]: line for line in raw(sdk_emu, f"/{batch.id}/results")}
    for custom_id, result in results.items():  # the same objects as the raw JSON says
        assert result.model_dump(mode="json", exclude_none=True) == _drop_none(lines[custom_id])

    deleted = client.messages.batches.delete(batch.id)
    assert deleted.id == batch.id and deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.batches.retrieve(batch.id)
    assert missing.value.body["error"]["type"] == "not_found_error"
    assert missing.value.request_id.startswith("req_")


def test_list_with_paging(client: Any, clock: ManualClock, req: Req) -> None:
    ids = []
    for i in range(7):
        ids.append(client.messages.batches.create(requests=[req(f"r{i}")]).id)
        clock.advance(1)
    assert [b.id for b in client.messages.batches.list(limit=3)] == ids[::-1]  # auto-paging
    first_page = client.messages.batches.list(limit=3)
    assert [b.id for b in first_page.data] == ids[::-1][:3]
    assert first_page.has_more and first_page.last_id == ids[4]
    second = first_page.get_next_page()
    assert [b.id for b in second.data] == ids[::-1][3:6]
    newer = client.messages.batches.list(limit=2, before_id=ids[2])
    assert [b.id for b in newer.data] == [ids[4], ids[3]]


def test_cancel(client: Any, clock: ManualClock, req: Req) -> None:
    batch = client.messages.batches.create(requests=[req(f"r{i}") for i in range(100)])
    clock.advance(0.2)
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None
    with pytest.raises(anthropic.BadRequestError, match="cannot be deleted"):
        client.messages.batches.delete(batch.id)
    clock.advance(2)
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert ended.request_counts.canceled == 80 and ended.request_counts.succeeded == 20
    kinds = [r.result.type for r in client.messages.batches.results(batch.id)]
    assert kinds.count("canceled") == 80


def test_beta_resource(client: Any, clock: ManualClock, req: Req) -> None:
    """Every endpoint of the beta namespace, which names its betas in ``anthropic-beta``."""
    batches = client.beta.messages.batches
    batch = batches.create(requests=[req("a")])
    clock.advance(1)
    assert batches.retrieve(batch.id).processing_status == "ended"
    (result,) = list(batches.results(batch.id))
    assert result.result.type == "succeeded"
    assert batch.id in [b.id for b in batches.list(limit=5)]
    long = batches.create(requests=[req(f"r{i}") for i in range(100)])
    assert batches.cancel(long.id).processing_status == "canceling"
    assert batches.delete(batch.id).id == batch.id

    extended = batches.create(
        requests=[req("long", model="claude-opus-5-5", max_tokens=250_000)],
        betas=["output-300k-2026-03-24"])
    plain = batches.create(requests=[req("long", model="claude-opus-5-5", max_tokens=250_000)])
    clock.advance(5)
    (ok,) = list(batches.results(extended.id))
    (refused,) = list(batches.results(plain.id))
    assert ok.result.type == "succeeded"
    assert refused.result.type == "errored"
    assert "maximum allowed number of output tokens" in refused.result.error.error.message
    with pytest.raises(anthropic.BadRequestError, match="Unexpected value"):
        batches.create(requests=[req("a")], betas=["no-such-beta-2099-01-01"])


def test_the_sdks_default_version_refuses_sampling_parameters(
        client: Any, clock: ManualClock, req: Req) -> None:
    """The official SDK 2.x sends anthropic-version 2026-10-21: temperature is errored."""
    batch = client.messages.batches.create(requests=[req("warm", temperature=0.5), req("ok")])
    clock.advance(1)
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert results["ok"].type == "succeeded"
    assert results["warm"].error.error.message == "temperature: Extra inputs are not permitted"
    legacy = anthropic.Anthropic(api_key="sk-ant-test", base_url=client.base_url, max_retries=0,
                                 default_headers={"anthropic-version": "2023-06-01"})
    batch = legacy.messages.batches.create(requests=[req("warm", temperature=0.5)])
    clock.advance(1)
    (line,) = list(legacy.messages.batches.results(batch.id))
    assert line.result.type == "succeeded"


def test_sdk_errors_map_to_its_exceptions(sdk_emu: Emulator, client: Any, req: Req) -> None:
    bad_key = anthropic.Anthropic(api_key="sk-wrong", base_url=sdk_emu.url, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad_key.messages.batches.list()
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.create(requests=[])
    sdk_emu.inject("rate_limit", retry_after=0)
    with pytest.raises(anthropic.RateLimitError):
        client.messages.batches.list()
    sdk_emu.inject("overloaded")
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        client.messages.batches.list()
    assert overloaded.value.status_code == 529


def test_sdk_retries_through_faults(sdk_emu: Emulator, req: Req) -> None:
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=sdk_emu.url, max_retries=3)
    sdk_emu.inject("rate_limit", retry_after=0)
    sdk_emu.inject("overloaded")
    batch = client.messages.batches.create(requests=[req("a")])
    assert sdk_emu.batches_created == 1 and sdk_emu.batch_ids == [batch.id]
    assert [r.status for r in sdk_emu.requests_to("create")] == [429, 529, 200]


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _normalised(batch: Dict[str, Any]) -> Dict[str, Any]:
    """The SDK renders datetimes its own way: compare after parsing them alike."""
    from datetime import datetime

    out = dict(batch)
    for key in ("created_at", "expires_at", "ended_at", "archived_at", "cancel_initiated_at"):
        if out[key] is not None:
            parsed = datetime.fromisoformat(out[key].replace("Z", "+00:00"))
            out[key] = parsed.isoformat().replace("+00:00", "Z")
    return out
