"""Reuse in the core: the answer key, identical requests sent once, the two store hooks.

Jobs go over real HTTP to the emulator on loopback; the store here is a dict
(``DictStore``) so the hook contract is tested apart from any real store.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import pytest

from claudebatch import (
    BatchClient,
    BatchResult,
    MessageBatch,
    Request,
    StoredAnswer,
    answer_key,
    hookimpl,
)
from claudebatch.argtypes import duration
from claudebatch.cli import main
from claudebatch.emulator import Emulator
from claudebatch.errors import ReuseError

PARAMS: Dict[str, Any] = {
    "model": "claude-haiku-4-5", "max_tokens": 64,
    "system": [{"type": "text", "text": "Be brief."}],
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]}


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(rate=5000.0, seed=3) as emu:
        yield emu


def client_for(emulator: Emulator, *plugins: Any, **options: Any) -> BatchClient:
    return BatchClient(api_key="emulator", base_url=emulator.url, plugins=list(plugins),
                       load_entry_points=False, **options)


def rows(count: int, same: Sequence[int] = (), like: int = 0) -> List[Dict[str, Any]]:
    out = []
    for i in range(count):
        text = f"question {like if i in same else i}"
        out.append({"custom_id": f"r-{i:03d}", "params": {
            "model": "claude-haiku-4-5", "max_tokens": 64,
            "messages": [{"role": "user", "content": text}]}})
    return out


def sent(emulator: Emulator, since: int = 0) -> List[str]:
    client = client_for(emulator)
    return [v["custom_id"] for batch_id in emulator.batch_ids[since:]
            for v in client.results(batch_id, raw=True)]


def output(path: Path) -> Dict[str, Dict[str, Any]]:
    return {v["custom_id"]: v for v in map(json.loads, path.read_bytes().splitlines())}


# --- the key ---------------------------------------------------------------------------

def test_the_key_ignores_order_whitespace_and_cache_marks_but_nothing_else() -> None:
    key = answer_key(PARAMS)
    reordered = json.loads(json.dumps({k: PARAMS[k] for k in reversed(PARAMS)}, indent=3))
    assert answer_key(reordered) == key
    marked = json.loads(json.dumps(PARAMS))
    marked["system"][0]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    marked["messages"][0]["content"][0]["cache_control"] = {"type": "ephemeral"}
    marked["cache_control"] = {"type": "ephemeral"}
    assert answer_key(marked) == key
    for change in ({"max_tokens": 65}, {"model": "claude-sonnet-5"},
                   {"messages": [{"role": "user", "content": "hello"}]},
                   {"temperature": 0.0}, {"metadata": {"user_id": "u1"}}):
        assert answer_key({**PARAMS, **change}) != key, change
    assert answer_key(PARAMS, betas=["files-api-2025-04-14"]) != key
    assert answer_key(PARAMS, betas=["b", "a"]) == answer_key(PARAMS, betas=["a", "b", "a"])
    assert answer_key(PARAMS, declared={"structured.schema": "ab12"}) != key
    assert answer_key(PARAMS, service="http://127.0.0.1:8765") != key
    assert answer_key(PARAMS, service=None) == key  # the API's keys are as they were
    assert len(key) == 64 and int(key, 16) >= 0


# --- identical requests in one job -----------------------------------------------------

def test_reuse_on_sends_identical_requests_once_even_without_a_store(
        emulator: Emulator, tmp_path: Path) -> None:
    seen = Seen()
    data = rows(10, same=(4, 7, 9), like=1)
    report = client_for(emulator, seen, reuse=True).run(
        data, name="dups", output=str(tmp_path / "out.jsonl"), poll_interval=0.005)
    assert sorted(sent(emulator)) == [r["custom_id"] for i, r in enumerate(data)
                                      if i not in (4, 7, 9)]
    assert (report.duplicates, report.reused, report.total_requests) == (3, 0, 10)
    assert report.all_succeeded and report.counts == {"succeeded": 10}
    out = output(tmp_path / "out.jsonl")
    for follower in ("r-004", "r-007", "r-009"):
        assert out[follower]["reused_from"] == "dups/r-001"
        assert out[follower]["result"] == out["r-001"]["result"]
    assert sorted(seen.reusing) == ["r-004", "r-007", "r-009"]
    assert len(seen.ids) == 10
    joined = {req.custom_id: res for req, res in report.results()}
    assert joined["r-007"].result == joined["r-001"].result
    assert "3 answered by an identical request sent once" in report.summary()


def test_without_a_store_reuse_is_off_by_default(emulator: Emulator, tmp_path: Path) -> None:
    report = client_for(emulator).run(rows(6, same=(3, 5)), output=str(tmp_path / "o.jsonl"),
                                      poll_interval=0.005)
    assert len(sent(emulator)) == 6 and report.duplicates == 0


def test_a_duplicate_follows_its_request_into_a_resubmission(
        emulator: Emulator, tmp_path: Path) -> None:
    """A later pass sends what it was given, duplicates too (only the first pass's decisions
    are checked on a resume); the output keeps one line per custom_id, the last attempt's."""
    data = rows(6, same=(2, 5), like=0)
    again = ResendIds(["r-000", "r-002", "r-005", "r-003"])
    report = client_for(emulator, again, reuse=True).run(
        data, name="twice", output=str(tmp_path / "out.jsonl"), poll_interval=0.005)
    first_pass = len(emulator.batch_ids) - 1
    assert sorted(sent(emulator, first_pass)) == ["r-000", "r-002", "r-003", "r-005"]
    assert (report.passes, report.duplicates) == (2, 2)
    out_lines = (tmp_path / "out.jsonl").read_bytes().splitlines()
    assert len(out_lines) == 6
    out = output(tmp_path / "out.jsonl")
    last = {v["custom_id"]: v for v in client_for(emulator).results(
        emulator.batch_ids[-1], raw=True)}
    assert out["r-000"]["result"] == last["r-000"]["result"]
    assert out["r-005"]["result"] == last["r-005"]["result"]


def test_a_dry_run_says_what_would_not_be_sent(emulator: Emulator) -> None:
    plan = client_for(emulator, reuse=True).job(rows(5, same=(1, 2, 3))).dry_run()
    assert (plan.duplicates, plan.batches) == (3, [(2, plan.batches[0][1])])
    assert "3 answered by an identical request sent once (3 would not be sent)" in \
        plan.summary()


# --- the store hooks -------------------------------------------------------------------

def test_a_store_is_offered_each_answer_bought_and_asked_before_sending(
        emulator: Emulator, tmp_path: Path) -> None:
    store = DictStore()
    data = rows(8)
    client_for(emulator, store).run(data, name="first", output=str(tmp_path / "a.jsonl"),
                                    poll_interval=0.005)
    def key(params: Dict[str, Any]) -> str:  # an emulator's answers are keyed to it
        return answer_key(params, service=emulator.url)

    assert set(store.kept) == {key(r["params"]) for r in data}
    served = output(tmp_path / "a.jsonl")
    for row in data:  # the line as served, under its request's key
        assert json.loads(store.kept[key(row["params"])].line) == served[row["custom_id"]]
    made = len(emulator.batch_ids)
    seen = Seen()
    report = client_for(emulator, store, seen).run(
        rows(10), name="second", output=str(tmp_path / "b.jsonl"), poll_interval=0.005)
    assert sorted(sent(emulator, made)) == ["r-008", "r-009"]
    assert report.reused == 8 and store.asked_max_age == [None]
    out = output(tmp_path / "b.jsonl")
    assert out["r-003"]["reused_from"] == "first/r-003"
    assert out["r-003"]["result"] == served["r-003"]["result"]
    # on_result sees a reused answer with the batch that bought it
    assert seen.batches["r-003"].id == store.kept[key(data[3]["params"])].batch_id
    assert seen.batches["r-003"].created_at.year >= 2026


def test_no_reuse_asks_no_store_but_keeps_what_it_buys(emulator: Emulator,
                                                     tmp_path: Path) -> None:
    store = DictStore()
    client_for(emulator, store).run(rows(4), output=str(tmp_path / "a.jsonl"),
                                    poll_interval=0.005)
    store.asked.clear()
    made = len(emulator.batch_ids)
    report = client_for(emulator, store, reuse=False, reuse_max_age=60.0).run(
        rows(4, same=(1, 2)), output=str(tmp_path / "b.jsonl"), poll_interval=0.005)
    assert len(sent(emulator, made)) == 4 and store.asked == []
    assert report.reused == report.duplicates == 0


def test_a_damaged_store_answer_is_refused_before_anything_is_sent(
        emulator: Emulator, tmp_path: Path) -> None:
    store = DictStore()
    key = answer_key(rows(1)[0]["params"], service=emulator.url)
    store.kept[key] = StoredAnswer(b'{"not": "a result"}', "j", "c", "msgbatch_x", None, 1.0)
    with pytest.raises(ReuseError, match="not a result"):
        client_for(emulator, store).run(rows(2), output=str(tmp_path / "o.jsonl"))
    assert emulator.batch_ids == []


def test_an_emulators_answers_never_answer_another_server(tmp_path: Path) -> None:
    """A demo's stand-in answers, kept in a store, must not answer the same request sent to
    another server (the service): answers are keyed to the server that gave them."""
    store = DictStore()
    with Emulator(rate=5000.0, seed=3) as first:
        client_for(first, store).run(rows(3), output=str(tmp_path / "a.jsonl"),
                                     poll_interval=0.005)
        again = client_for(first, store).run(rows(3), output=str(tmp_path / "b.jsonl"),
                                             poll_interval=0.005)
        assert again.reused == 3  # the same server: reused
    with Emulator(rate=5000.0, seed=4) as other:
        report = client_for(other, store).run(rows(3), output=str(tmp_path / "c.jsonl"),
                                              poll_interval=0.005)
        assert report.reused == 0 and len(sent(other)) == 3


# --- options ---------------------------------------------------------------------------

def test_reuse_options_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert duration("7d") == 7 * 86400 and duration("90") == 90 and duration("1.5h") == 5400
    for bad in ("0", "-1d", "soon", "nan", "d"):
        with pytest.raises(argparse.ArgumentTypeError, match="span of time"):
            duration(bad)
    with pytest.raises(SystemExit):
        main(["run", "x.jsonl", "--dry-run", "--reuse-max-age", "soon"])
    assert "expected a span of time > 0" in capsys.readouterr().err


def test_the_client_refuses_a_bad_max_age() -> None:
    from claudebatch import ConfigurationError

    with pytest.raises(ConfigurationError, match="reuse_max_age"):
        BatchClient(api_key="k", reuse_max_age=-1.0, load_entry_points=False)


# --- helpers --------------------------------------------------------------------------

class Seen:
    def __init__(self) -> None:
        self.ids: List[str] = []
        self.reusing: List[str] = []
        self.batches: Dict[str, MessageBatch] = {}

    @hookimpl
    def on_result(self, result: BatchResult, context: Any, batch: MessageBatch) -> None:
        self.ids.append(result.custom_id)
        self.batches[result.custom_id] = batch
        if context.reusing:
            self.reusing.append(result.custom_id)


class ResendIds:
    def __init__(self, ids: List[str]) -> None:
        self.ids = ids

    @hookimpl
    def resubmit_requests(self, pass_number: int, context: Any) -> Optional[List[Request]]:
        return list(context.find_requests(self.ids)) if pass_number == 1 else None


class DictStore:
    """The two reuse hooks over a dict, as a minimal store would implement them."""

    def __init__(self) -> None:
        self.kept: Dict[str, StoredAnswer] = {}
        self.asked: List[str] = []
        self.asked_max_age: List[Optional[float]] = []

    @hookimpl
    def find_answers(self, keys: Sequence[str], max_age: Optional[float],
                     context: Any) -> Dict[str, StoredAnswer]:
        self.asked.extend(keys)
        if max_age not in self.asked_max_age:
            self.asked_max_age.append(max_age)
        return {key: self.kept[key] for key in keys if key in self.kept}

    @hookimpl
    def keep_answer(self, key: str, result: BatchResult, line: bytes, context: Any,
                    batch: MessageBatch) -> None:
        assert result.result.type == "succeeded"
        created = batch.created_at.timestamp() if isinstance(batch.created_at, dt.datetime) \
            else None
        self.kept.setdefault(key, StoredAnswer(line, context.name, result.custom_id, batch.id,
                                               created, context.clock.time()))


def test_the_planner_s_shortcut_keys_a_clean_request_as_answer_key_does() -> None:
    """The planner skips the canonical form's checks for a line read clean, and the copy
    without cache marks when there can be none, and hashes what every key of the job
    shares once: the key must not change."""
    from claudebatch.reuse import _answer_digest, _KeyHasher

    system_blocks = [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}]
    variants: List[Dict[str, Any]] = [
        {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        {"model": "m", "max_tokens": 5, "system": "plain", "temperature": 0.25,
         "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]},
        {"model": "m", "max_tokens": 5, "system": system_blocks,
         "messages": [{"role": "user", "content": "hi"}]},
        {"model": "m", "max_tokens": 5, "cache_control": {"type": "ephemeral"},
         "messages": [{"role": "user", "content": [{"type": "text", "text": "a",
                                                    "cache_control": {"type": "ephemeral"}}]}]},
        {"model": "m", "max_tokens": 5, "metadata": {"user_id": "ü\u2028"}, "top_k": 3,
         "messages": [{"role": "user", "content": "hi", "cache_control": {"type": "x"}}]},
    ]
    for params in variants:
        for options in ({}, {"betas": ["b2", "b1"]}, {"service": "http://127.0.0.1:1"},
                        {"declared": {"schema": {"multipleOf": 1e-05}}}):
            expected = answer_key(params, **options)  # type: ignore[arg-type]
            hasher = _KeyHasher(**options)  # type: ignore[arg-type]
            for clean in (False, True):
                got = _answer_digest(params, clean=clean, **options)  # type: ignore[arg-type]
                assert got.hex() == expected
                assert hasher.digest(params, clean).hex() == expected
    marked = dict(variants[0], messages=[{"role": "user", "content": "hi",
                                          "cache_control": {"type": "ephemeral"}}])
    assert answer_key(marked) == answer_key(variants[0])


def test_answer_key_takes_any_mapping_as_before() -> None:
    """``answer_key(params: Mapping)``: a read-only or other non-dict mapping is keyed as
    the same dict (the shortcut that skips the copy must not hand orjson a mapping it
    cannot write)."""
    import types
    from collections import OrderedDict

    plain = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    key = answer_key(plain)
    assert answer_key(types.MappingProxyType(plain)) == key
    assert answer_key(OrderedDict(reversed(list(plain.items())))) == key
