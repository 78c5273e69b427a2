"""The shortcuts change nothing a user sees: the same bodies, figures and output.

A request too short to cache is settled without analysing its prompt, and a batch of a
pass none of whose requests can be marked gets no transform. Each test runs the same
varied requests with those shortcuts and with them turned off (every request analysed,
every batch transformed: the computation before them), and compares byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import attrs
import claudebatch_cache.placement
import claudebatch_cache.plugin
import pytest
from claudebatch_cache import PromptCache
from claudebatch_cache import prompt as prompt_module
from claudebatch_cache.figures import Observed
from claudebatch_cache.placement import Rules, fixed_reason, triage
from claudebatch_cache.prompt import Boundary, Prompt, analyse, is_string_at, short_and_unmarked

from claudebatch import BatchClient, PendingBatch, Request, hookimpl, parse_result
from claudebatch.emulator import Emulator, ManualClock
from claudebatch.tokens import iter_blocks

from .helpers import CONTEXT, long_text, tool

MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1")  # 1,024 / 4,096 / 1,024
SYSTEMS = (long_text(1300, "policy"), long_text(4200, "manual"))
TOOLS = [tool("search", 700), tool("fetch", 500)]
SHORT_TOOLS = [tool("lookup", 20)]
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="}}  # noqa: E501


def ephemeral(ttl: str) -> Dict[str, str]:
    return {"type": "ephemeral", "ttl": ttl}


def varied_params(rng: random.Random, i: int) -> Dict[str, Any]:
    """One request's params of a mixed job: shared and short system prompts, tools,
    multi-turn messages, images, the caller's own breakpoints, several models."""
    params: Dict[str, Any] = {"model": rng.choice(MODELS), "max_tokens": 32}
    system = rng.randrange(7)
    if system == 1:
        params["system"] = "You answer briefly."
    elif system in (2, 3):
        params["system"] = rng.choice(SYSTEMS)
    elif system == 4:
        params["system"] = [{"type": "text", "text": SYSTEMS[0]},
                            {"type": "text", "text": f"Ticket queue {i % 3}."}]
    elif system == 5:
        params["system"] = [{"type": "text", "text": "Be short.",
                             **({"cache_control": ephemeral("5m")} if i % 2 else {})}]
    tools = rng.randrange(5)
    if tools == 1:
        params["tools"] = TOOLS
    elif tools == 2:
        params["tools"] = SHORT_TOOLS
    turns = rng.randrange(6)
    if turns == 0:
        messages: List[Any] = [{"role": "user", "content": f"Question {i}?"}]
    elif turns == 1:
        messages = [{"role": "user", "content": rng.choice(SYSTEMS)},
                    {"role": "assistant", "content": "Read."},
                    {"role": "user", "content": f"Clause {i % 4}?"}]
    elif turns == 2:
        messages = [{"role": "user", "content": [IMAGE, {"type": "text", "text": f"What? {i}"}]}]
    elif turns == 3:
        messages = [{"role": "user", "content": [
            {"type": "text", "text": long_text(1200, "contract")},
            {"type": "text", "text": f"Summarise part {i % 5}.",
             **({"cache_control": ephemeral(rng.choice(("5m", "1h")))} if i % 3 == 0 else {})}]}]
    elif turns == 4:
        messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                    {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
                    {"role": "user", "content": f"and {i}"}]
    else:
        messages = [{"role": "user", "content": f"Ticket {i}: " + "export fails. " * 40}]
    params["messages"] = messages
    if rng.randrange(15) == 0:
        params["cache_control"] = ephemeral("5m")
    return params


def varied_requests(count: int, seed: int) -> List[Request]:
    rng = random.Random(seed)
    return [Request(f"r{i:04d}", varied_params(rng, i)) for i in range(count)]


def short_requests(count: int) -> List[Request]:
    """The benchmark's shape: a shared system prompt too short for Haiku 4.5."""
    return [Request(f"t{i:04d}", {
        "model": "claude-haiku-4-5", "max_tokens": 16,
        "system": "You label support tickets with one word. " * 8,
        "messages": [{"role": "user", "content": f"Ticket {i}: export fails. " * 4}]})
        for i in range(count)]


def without_shortcuts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request analysed and every batch transformed, as before the shortcuts."""
    # both the counting pass and the marking decide through placement's triage
    monkeypatch.setattr(claudebatch_cache.placement, "short_and_unmarked",
                        lambda params, minimum: False)
    monkeypatch.setattr(claudebatch_cache.placement, "fixed_reason", lambda prompt, rules: None)


class Bodies:
    """Every batch body as sent (the job's and the primers'), in order."""

    def __init__(self) -> None:
        self.sent: List[bytes] = []

    @hookimpl(trylast=True)
    def before_submit(self, requests: PendingBatch) -> None:
        body = requests.write_body()
        self.sent.append(body.read())
        body.seek(0)


def run_job(requests: List[Request], tmp_path: Path, shortcuts: bool,
            monkeypatch: pytest.MonkeyPatch, **options: Any) -> Tuple[Any, ...]:
    with monkeypatch.context() as patch:
        if not shortcuts:
            without_shortcuts(patch)
        clock = ManualClock()
        cache, bodies = PromptCache(**options), Bodies()
        output = tmp_path / f"out-{shortcuts}.jsonl"
        with Emulator(seed=5, rate=200.0, clock=clock) as emulator:
            client = BatchClient(api_key="emulator", base_url=emulator.url, clock=clock,
                                 plugins=[cache, bodies], poll_interval=1.0)
            report = client.run(requests, output=str(output), max_batch_requests=25)
        lines = sorted(json.loads(line)["custom_id"] + json.dumps(
            json.loads(line)["result"].get("message", {}).get("usage"), sort_keys=True)
            for line in output.read_text().splitlines())
        return (bodies.sent, report.plugins["cache"], cache.predicted, cache.observed,
                cache.hit_rate, lines)


@pytest.mark.parametrize("options", [
    {}, {"ttl": "5m"}, {"override": True}, {"prime": True}, {"min_group": 2},
    {"min_tokens": {"claude-haiku": 900}},
], ids=["default", "5m", "override", "prime", "min_group", "min_tokens"])
def test_a_varied_job_is_the_same_with_and_without_the_shortcuts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: Dict[str, Any]) -> None:
    # short prompts first and last: those batches are settled, the others transformed
    requests = short_requests(30) + varied_requests(120, seed=len(options) + 3) + [
        Request(f"z{r.custom_id}", r.params) for r in short_requests(30)]
    fast = run_job(requests, tmp_path, True, monkeypatch, **options)
    slow = run_job(requests, tmp_path, False, monkeypatch, **options)
    assert fast == slow
    section = fast[1]
    assert section["requests_marked"] > 0 and section["unmarked_too_short"] > 0


def test_a_job_of_prompts_too_short_to_cache_is_the_same_and_sent_as_planned(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark's shape: every batch is settled when counted, none transformed."""
    requests = short_requests(60)
    fast = run_job(requests, tmp_path, True, monkeypatch)
    slow = run_job(requests, tmp_path, False, monkeypatch)
    assert fast == slow
    assert fast[1]["unmarked_too_short"] == 60 and fast[1]["requests_marked"] == 0
    plain = run_job(requests, tmp_path, True, monkeypatch, min_tokens={"claude-haiku": 10**6})
    assert plain[0] == fast[0]  # the bodies: the requests as planned


def test_batches_that_can_be_marked_are_transformed_and_the_others_are_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """In one pass: a batch of short prompts is settled, a batch sharing a long system
    prompt is transformed, and the figures add up over both."""
    cache = PromptCache()
    context = BatchClient(api_key="k", base_url="http://127.0.0.1:9", plugins=[cache],
                          load_entry_points=False).job([]).context
    cache.on_job_start(context=context)
    short = short_requests(4)
    shared = [Request(f"s{i}", {"model": "claude-sonnet-4-5", "max_tokens": 8,
                                "system": SYSTEMS[0],
                                "messages": [{"role": "user", "content": f"q{i}"}]})
              for i in range(3)]
    for request in short + shared:
        cache._count_request(request)
    batches = [PendingBatch.from_requests(short, index=0),
               PendingBatch.from_requests(shared, index=1)]
    cache.before_pass(batches=batches, context=context)
    assert [b.watched for b in batches] == [False, True]
    assert [r.params for r in batches[0]] == [r.params for r in short]  # untouched
    assert all(isinstance(r.params["system"], list) for r in batches[1])  # marked
    for batch in batches:
        batch.write_body()
    figures = [cache._planned[b].predicted for b in batches]
    assert (figures[0].requests, dict(figures[0].unmarked)) == (4, {"too-short": 4})
    assert (figures[1].requests, figures[1].requests_marked) == (3, 3)
    with monkeypatch.context() as patch:  # what the comparisons above compare with
        without_shortcuts(patch)
        cache.on_job_start(context=context)
        for request in short + shared:
            cache._count_request(request)
        batches = [PendingBatch.from_requests(short), PendingBatch.from_requests(shared)]
        cache.before_pass(batches=batches, context=context)
        assert [b.watched for b in batches] == [True, True]


def test_a_plain_create_is_the_same_with_and_without_the_shortcuts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    requests = varied_requests(80, seed=7) + short_requests(10)

    def place() -> Tuple[Any, ...]:
        cache = PromptCache(ttl="5m")
        pending = PendingBatch.from_requests(requests)
        cache.before_submit(requests=pending, context=CONTEXT)
        return [r.params for r in pending], cache.last_batch

    fast = place()
    with monkeypatch.context() as patch:
        without_shortcuts(patch)
        slow = place()
    assert fast == slow
    assert fast[1] is not None and fast[1].requests_marked > 0


def test_a_dry_run_counts_the_same_with_and_without_the_shortcuts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    requests = varied_requests(90, seed=11) + short_requests(40)

    def plan() -> Dict[str, Any]:
        client = BatchClient(api_key="k", base_url="http://127.0.0.1:9",
                             plugins=[PromptCache(prime=True)], load_entry_points=False)
        found: Dict[str, Any] = client.job(requests, max_batch_requests=30).dry_run().plugins
        return found

    fast = plan()
    with monkeypatch.context() as patch:
        without_shortcuts(patch)
        slow = plan()
    assert fast == slow and fast["cache"]["unmarked_too_short"] >= 40


def all_shapes(seed: int) -> Iterator[Dict[str, Any]]:
    rng = random.Random(seed)
    for i in range(400):
        params = varied_params(rng, i)
        if i % 7 == 0:
            params.pop("system", None)
        if i % 11 == 0:
            params["system"] = ""
        if i % 13 == 0:
            params["messages"].append({"role": "assistant", "content": []})
        if i % 17 == 0:
            params["messages"][0]["content"] = ""
        if i % 19 == 0:
            params["system"] = []
        yield params


@pytest.mark.parametrize("override", [False, True])
def test_the_cheap_test_says_too_short_only_when_the_analysis_does(override: bool) -> None:
    """``short_and_unmarked`` counts what ``iter_blocks`` counts, for the shapes it takes:
    just under the total it answers True, at the total False; and a True is always the
    analysis's "too-short"."""
    answered = 0
    for params in all_shapes(seed=int(override)):
        total = sum(block.tokens for block in iter_blocks(params))
        if short_and_unmarked(params, total + 1):
            answered += 1
            assert not short_and_unmarked(params, total)
            prompt = analyse(params)
            assert prompt.user_breakpoints() == []
            rules = Rules("1h", override, 3, lambda model, m=total + 1: m)
            assert fixed_reason(prompt, rules) == "too-short"
            assert triage(params, rules) == (None, "too-short")
        for minimum in (1024, 4096):
            if short_and_unmarked(params, minimum):
                assert total < minimum
                rules = Rules("1h", override, 3, lambda model, m=minimum: m)
                assert fixed_reason(analyse(params), rules) == "too-short"
    assert answered > 100  # the common shapes take the cheap path


def test_the_cheap_test_leaves_marked_and_unusual_prompts_to_the_analysis() -> None:
    base: Dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 8,
                            "messages": [{"role": "user", "content": "hi"}]}
    marked_block = {"type": "text", "text": "hi", "cache_control": ephemeral("5m")}
    nested = {"type": "tool_result", "tool_use_id": "t",
              "content": [{"type": "text", "text": "x", "cache_control": ephemeral("5m")}]}
    odd: List[Optional[Dict[str, Any]]] = [
        {**base, "cache_control": ephemeral("5m")},
        {**base, "tools": SHORT_TOOLS},
        {**base, "system": [marked_block]},
        {**base, "messages": [{"role": "user", "content": [marked_block]}]},
        {**base, "messages": [{"role": "user", "content": [nested]}]},
        {**base, "messages": [{"role": "user", "content": None}]},
        {**base, "system": 3},
    ]
    assert short_and_unmarked(base, 10**6)
    for params in odd:
        assert params is not None and not short_and_unmarked(params, 10**6)


def observed_before(observed: Any, model: str, usage: Any) -> None:
    """``Observed.add`` as it was (a loop over the five sums), to compare with."""
    read = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    breakdown = usage.cache_creation
    w1h = breakdown.ephemeral_1h_input_tokens if breakdown is not None else 0
    w5m = breakdown.ephemeral_5m_input_tokens if breakdown is not None else written
    observed.results += 1
    observed.input_tokens += usage.input_tokens or 0
    observed.output_tokens += usage.output_tokens or 0
    observed.cache_read_tokens += read
    observed.cache_write_tokens += written
    observed.cache_write_5m_tokens += w5m
    observed.cache_write_1h_tokens += w1h
    observed.requests_with_reads += read > 0
    observed.requests_with_writes += written > 0
    if read or written:
        row = observed.by_model.setdefault(model, [0, 0, 0])
        row[0] += read
        row[1] += w5m
        row[2] += w1h
    full = observed.all_by_model.setdefault(model, [0, 0, 0, 0, 0])
    for i, value in enumerate((usage.input_tokens or 0, w5m, w1h, read,
                               usage.output_tokens or 0)):
        full[i] += value


def test_the_usage_sums_are_the_same_as_before() -> None:
    """Usages with and without cache reads, writes of either TTL, no breakdown, fields
    left out: every sum and both per-model tables come out the same."""
    rng = random.Random(3)
    fast, slow, raw = Observed(), Observed(), Observed()
    for i in range(2000):
        written = rng.choice((0, 0, rng.randrange(1, 5000)))
        w1h = rng.randrange(written + 1)
        usage: Dict[str, Any] = {
            "input_tokens": rng.randrange(1, 3000), "output_tokens": rng.randrange(200),
            "cache_read_input_tokens": rng.choice((0, None, rng.randrange(1, 9000))),
            "cache_creation_input_tokens": written if i % 9 else None}
        if i % 4:
            usage["cache_creation"] = {"ephemeral_1h_input_tokens": w1h,
                                       "ephemeral_5m_input_tokens": written - w1h}
            if i % 13 == 0:
                del usage["cache_creation"]["ephemeral_5m_input_tokens"]
        if i % 17 == 0:
            del usage["output_tokens"]
        line = {"custom_id": f"r{i}", "result": {"type": "succeeded", "message": {
            "id": f"msg_{i}", "type": "message", "role": "assistant",
            "model": rng.choice(MODELS), "content": [], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": usage}}}
        message = parse_result(line).result.message  # type: ignore[union-attr]
        fast.add(message.model, message.usage)
        observed_before(slow, message.model, message.usage)
        raw.add_raw(message.model, usage)  # the line's own usage, as on_result reads it
    assert attrs.asdict(fast) == attrs.asdict(slow) == attrs.asdict(raw)
    assert fast.hit_rate == slow.hit_rate and fast.requests_with_reads > 0


def _locations_before(params: Dict[str, Any]) -> Iterator[Tuple[Any, ...]]:
    tools, system = params.get("tools"), params.get("system")
    yield from (("tools", i) for i in range(len(tools) if isinstance(tools, list) else 0))
    if isinstance(system, str):
        yield from (("system", 0),) if system else ()
    elif isinstance(system, list):
        yield from (("system", i) for i in range(len(system)))
    messages = params.get("messages")
    for m, message in enumerate(messages if isinstance(messages, list) else ()):
        if isinstance(message, dict):
            content = message.get("content")
            count = len(content) if isinstance(content, list) and content else 1
            yield from (("messages", m, b) for b in range(count))


def analyse_before(params: Dict[str, Any]) -> Prompt:
    """``analyse`` as it was: the core's ``iter_blocks`` zipped with the locations."""
    model = str(params.get("model", ""))
    digest = hashlib.blake2b(model.encode("utf-8"), digest_size=8)
    tokens = 0
    out: List[Boundary] = []
    message = -1
    for block, location in zip(iter_blocks(params), _locations_before(params)):
        tokens += block.tokens
        section = block.section.encode("utf-8")
        if location[0] == "messages" and location[1] != message:
            message = location[1]
            digest.update(b"\x1d" + section)
        if isinstance(block.value, list):
            continue
        digest.update(b"\x1e" + section + b"\x1f")
        digest.update(prompt_module._content_bytes(block.value))
        key = int.from_bytes(digest.copy().digest(), "big")
        markable = prompt_module._markable(block.section, block.value,
                                           is_string_at(params, location))
        out.append(Boundary(key, tokens, location, markable,
                            prompt_module._ttl(block.cache_control),
                            prompt_module._nested_ttls(block.value)))
    return Prompt(model, out, prompt_module._ttl(params.get("cache_control")))


ODD_BLOCKS: List[Any] = [
    {"type": "text", "text": ""},
    {"type": "text", "text": "lone \ud800 surrogate"},
    {"type": "text", "text": 5},
    {"type": "text", "text": "cited", "citations": [{"type": "char_location"}]},
    {"type": "thinking", "thinking": "hmm", "signature": "s"},
    {"type": "redacted_thinking", "data": "xx"},
    {"type": "tool_use", "id": "t1", "name": "search", "input": {"q": "x" * 300}},
    {"type": "tool_result", "tool_use_id": "t1", "content": "found it"},
    {"type": "tool_result", "tool_use_id": "t1", "content": [
        {"type": "text", "text": "deep", "cache_control": {"type": "ephemeral"}}]},
    {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                    "data": "doc " * 500}},
    {"type": "document", "source": {"type": "content", "content": [
        {"type": "text", "text": "inner", "cache_control": {"type": "ephemeral",
                                                             "ttl": "1h"}}]}},
    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                    "data": "JVBERi0="}},
    {"type": "search_result", "source": "s", "title": "t", "content": []},
    {"type": "text", "text": "odd ttl", "cache_control": {"type": "ephemeral", "ttl": "9h"}},
    {"type": "text", "text": "not a dict marker", "cache_control": "yes"},
    {"type": "mystery", "payload": [1, 2.5, None]},
    IMAGE,
    "a bare string",
    ["a", "list"],
    7,
    None,
]


def odd_params(rng: random.Random, i: int) -> Dict[str, Any]:
    """Params of every shape ``analyse`` may meet after validation, and some it should
    not: the walk must treat each as ``iter_blocks`` does."""
    params = varied_params(rng, i)
    pick = rng.randrange(12)
    if pick == 0:
        params["tools"] = [*TOOLS, ["not", "a", "tool"], "nor this",
                           {**SHORT_TOOLS[0], "cache_control": ephemeral("1h")}]
    elif pick == 1:
        params["system"] = [rng.choice(ODD_BLOCKS) for _ in range(rng.randrange(4))]
    elif pick == 2:
        params["messages"] = [{"role": "user",
                               "content": [rng.choice(ODD_BLOCKS)
                                           for _ in range(rng.randrange(1, 5))]}]
    elif pick == 3:
        params["messages"] = ["not a message", {"role": "user", "content": None},
                              {"role": "assistant", "content": {"type": "text", "text": "d"}},
                              {"role": None, "content": 3}, {"content": "no role"}]
    elif pick == 4:
        params["messages"].insert(0, {"role": "user", "content": []})
    elif pick == 5:
        params["cache_control"] = rng.choice((None, "odd", {"type": "ephemeral"},
                                              ephemeral("1h")))
    elif pick == 6:
        params.pop("model")
        params["messages"] = "not a list"
    elif pick == 7:
        params["system"] = rng.choice(("", None, 4, {"type": "text", "text": "dict"}))
    elif pick == 8:
        params["tools"] = rng.choice(([], None, "tools", {"name": "x"}))
    return params


def test_the_walk_keys_and_counts_every_shape_as_before() -> None:
    """``analyse`` in one loop gives the very boundaries (keys, tokens, locations,
    markable, TTLs, nested TTLs) of the walk over ``iter_blocks`` it replaces."""
    rng = random.Random(19)
    shapes = [odd_params(rng, i) for i in range(3000)]
    shapes += list(all_shapes(seed=4))
    for params in shapes:
        assert analyse(params) == analyse_before(params), params


def test_a_system_prompt_hashed_once_keys_the_same_when_it_comes_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The memo of hashed system prompts: a hit, a miss, another model, a prompt with
    tools (not kept), and a full memo starting over, all key as the walk does."""
    monkeypatch.setattr(prompt_module, "PREFIX_MEMO_SIZE", 3)
    monkeypatch.setattr(prompt_module, "_PREFIXES", {})
    systems = [long_text(300 + 10 * i, "rule") for i in range(8)]
    same_ends = systems[0][:600] + "X" + systems[0][601:]  # its length and ends, not its middle
    systems += [same_ends, systems[0][:600] + "Y" + systems[0][601:]]
    rng = random.Random(2)
    for i in range(400):
        params: Dict[str, Any] = {"model": rng.choice(MODELS), "max_tokens": 8,
                                  "system": rng.choice(systems),
                                  "messages": [{"role": "user", "content": f"q{i % 7}"}]}
        if i % 5 == 0:
            params["tools"] = SHORT_TOOLS
        assert analyse(params) == analyse_before(params)
        assert len(prompt_module._PREFIXES) <= 3
    short = {"model": MODELS[0], "system": "brief", "messages": []}
    assert analyse(short) == analyse_before(short)
    assert not any(probe[3] == "brief" for probe in prompt_module._PREFIXES)  # too short
