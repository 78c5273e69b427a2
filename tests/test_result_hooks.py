"""What ``on_result`` costs a job: the typed result is built only for an implementation
that takes ``result``; one that takes ``raw`` reads the line's dict. And an observed,
unrewritten batch goes out as stored, not serialized again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from claudebatch import BatchClient, BatchResult, PendingBatch, Request, hookimpl
from claudebatch._job import collect
from claudebatch.emulator import Emulator

MODEL = "claude-haiku-4-5"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(rate=float("inf"), seed=3) as emu:
        yield emu


def requests(count: int) -> List[Dict[str, Any]]:
    return [{"custom_id": f"r-{i}", "params": {
        "model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": f"q{i}"}]}}
        for i in range(count)]


class RawOnly:
    def __init__(self) -> None:
        self.seen: List[Dict[str, Any]] = []

    @hookimpl
    def on_result(self, raw: Dict[str, Any], line: bytes) -> None:
        assert json.loads(line) == raw
        self.seen.append(raw)


class Typed:
    def __init__(self) -> None:
        self.seen: List[BatchResult] = []

    @hookimpl
    def on_result(self, result: BatchResult, raw: Dict[str, Any]) -> None:
        assert result.custom_id == raw["custom_id"]
        self.seen.append(result)


@pytest.fixture
def typed_built(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """The custom_ids the job turned into typed results."""
    built: List[str] = []
    to_result = collect.to_result

    def counting(value: Dict[str, Any], **kwargs: Any) -> BatchResult:
        built.append(value["custom_id"])
        return to_result(value, **kwargs)

    monkeypatch.setattr(collect, "to_result", counting)
    return built


def test_a_job_whose_result_hooks_take_raw_builds_no_typed_result(
        emulator: Emulator, tmp_path: Path, typed_built: List[str]) -> None:
    plugin = RawOnly()
    client = BatchClient(api_key="k", base_url=emulator.url, poll_interval=0.01,
                         load_entry_points=False, plugins=[plugin])
    report = client.run(requests(30), output=str(tmp_path / "out.jsonl"))
    written = [json.loads(line) for line in Path(report.output).read_text().splitlines()]
    assert plugin.seen == written  # each result as written, in the order written
    assert typed_built == []


def test_a_hook_that_takes_result_still_gets_it_beside_one_that_takes_raw(
        emulator: Emulator, tmp_path: Path, typed_built: List[str]) -> None:
    raw, typed = RawOnly(), Typed()
    client = BatchClient(api_key="k", base_url=emulator.url, poll_interval=0.01,
                         load_entry_points=False, plugins=[raw, typed])
    client.run(requests(30), output=str(tmp_path / "out.jsonl"))
    assert [r.custom_id for r in typed.seen] == [r["custom_id"] for r in raw.seen]
    assert all(r.result.type == "succeeded" and r.result.message.usage.output_tokens
               for r in typed.seen)
    assert sorted(typed_built) == sorted(f"r-{i}" for i in range(30))


class Keeper:
    """A store of answers as the first-party stores keep them: from ``raw`` alone."""

    def __init__(self) -> None:
        self.kept: Dict[str, bytes] = {}

    @hookimpl
    def keep_answer(self, key: str, raw: Dict[str, Any], line: bytes) -> None:
        assert json.loads(line) == raw and len(key) == 64
        self.kept[raw["custom_id"]] = line


class TypedKeeper:
    def __init__(self) -> None:
        self.typed: List[BatchResult] = []

    @hookimpl
    def keep_answer(self, result: BatchResult, raw: Dict[str, Any]) -> None:
        assert result.custom_id == raw["custom_id"]
        self.typed.append(result)


def test_answers_are_kept_from_raw_with_no_typed_result_unless_a_keeper_asks(
        emulator: Emulator, tmp_path: Path, typed_built: List[str]) -> None:
    keeper = Keeper()
    client = BatchClient(api_key="k", base_url=emulator.url, poll_interval=0.01,
                         load_entry_points=False, plugins=[keeper, RawOnly()])
    client.run(requests(12), output=str(tmp_path / "out.jsonl"))
    assert sorted(keeper.kept) == sorted(f"r-{i}" for i in range(12))
    assert typed_built == []
    typed = TypedKeeper()
    client = BatchClient(api_key="k", base_url=emulator.url, poll_interval=0.01,
                         load_entry_points=False, plugins=[typed, RawOnly()])
    client.run(requests(12), output=str(tmp_path / "out2.jsonl"))
    assert sorted(r.custom_id for r in typed.typed) == sorted(typed_built) \
        == sorted(f"r-{i}" for i in range(12))


def test_client_results_hands_raw_to_the_hooks(emulator: Emulator,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from claudebatch import _client

    plugin = RawOnly()
    client = BatchClient(api_key="k", base_url=emulator.url, load_entry_points=False,
                         plugins=[plugin])
    batch = client.wait(client.create(requests(5)).id, poll_interval=0.01)
    typed = list(client.results(batch))
    assert [r.custom_id for r in typed] == [r["custom_id"] for r in plugin.seen]

    built: List[Any] = []
    monkeypatch.setattr(_client, "to_result", lambda *a, **k: built.append(a))
    plugin.seen.clear()
    raw = list(client.results(batch, raw=True))  # dicts asked for, dicts for the hook
    assert raw == plugin.seen and len(raw) == 5 and built == []


def test_an_observed_batch_goes_out_as_stored_and_each_request_is_shown() -> None:
    """Stored bytes are copied (these carry spaces compact JSON would not write); a
    transform makes the batch serialized again, as rewritten."""
    stored = [b'{"custom_id": "a", "params": {"n": 1}}', b'{"custom_id": "b", "params": {"n": 2}}']
    parsed = [Request("a", {"n": 1}), Request("b", {"n": 2})]
    pending = PendingBatch(lambda: iter(parsed), 2, serialized=lambda: iter(stored))
    shown: List[Request] = []
    pending.observe(shown.append)
    assert pending.write_body().read() == b'{"requests":[' + b",".join(stored) + b"]}"
    assert shown == parsed

    pending.transform(lambda r: Request(r.custom_id, {**r.params, "n": r.params["n"] * 10}))
    body = json.loads(pending.write_body().read())
    assert body["requests"] == [{"custom_id": "a", "params": {"n": 10}},
                                {"custom_id": "b", "params": {"n": 20}}]
    assert shown[2:] == [Request("a", {"n": 10}), Request("b", {"n": 20})]


def test_a_plugin_that_leaves_while_results_stream_is_not_called_again(
        emulator: Emulator) -> None:
    client = BatchClient(api_key="k", base_url=emulator.url, poll_interval=0.01,
                         load_entry_points=False)

    class Sampler:
        """Watches the first two results, then unregisters itself."""

        def __init__(self) -> None:
            self.seen: List[str] = []

        @hookimpl
        def on_result(self, raw: Dict[str, Any]) -> None:
            self.seen.append(raw["custom_id"])
            if len(self.seen) == 2:
                client.plugin_manager.unregister(self)

    sampler, late = Sampler(), RawOnly()
    client.plugin_manager.register(sampler)
    batch = client.create(requests(6))
    client.wait(batch.id, poll_interval=0.01)
    for i, _ in enumerate(client.results(batch.id)):
        if i == 3:
            client.plugin_manager.register(late)
    assert len(sampler.seen) == 2
    assert len(late.seen) == 2  # the results after it came
