"""The deterministic stand-in model.

The answer to a request depends only on the emulator's seed and the request itself,
so the same prompt gets the same text in every batch and run. Its length is drawn
from ``answer_tokens`` and cut at ``max_tokens`` (``stop_reason: "max_tokens"``);
a stop sequence that occurs in it cuts it there. A forced ``tool_choice`` yields a
``tool_use`` block, enabled thinking a ``thinking`` block. With ``refusal_rate``
a share of requests is refused (``stop_reason: "refusal"``); with ``pause_rate`` a
share of first turns that have a server tool (web search or fetch) stop at a
``server_tool_use`` with ``stop_reason: "pause_turn"``, and the same request sent
again with that content as the last assistant message gets its answer. Text is sliced from a
seeded corpus, exactly four characters per output token, so counting the text with
the emulator's tokenizer gives back ``output_tokens``.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from typing import Any, Dict, List, Optional, Tuple

from .cache import CacheUsage
from .catalog import ModelInfo
from .faults import ANSWER_FAULTS
from .ids import derived_token, tool_use_id, unit
from .jsonanswer import broken, not_json, requested_schema, sample
from .jsonanswer import dumps as jsonanswer_dumps
from .prompt import CHARS_PER_TOKEN, analyse, canonical, count_tokens

_VOCABULARY = (
    "the a batch of requests model answer token result cache prompt message system user "
    "assistant tool emulator stream line record status queue request response server client "
    "data value number word sentence paragraph summary reason detail example question "
    "simple clear short long first last next every each some many few more less "
    "is are was were be has have will can may should could would does did "
    "and or but so then because while when where which that this these those it "
    "in on at by for with from to into over under about after before between through "
    "quick careful steady exact plain useful small large early late new old good "
    "compute count parse split join write read check send keep wait poll retry end"
).split()

_CORPUS_CHARS = 1 << 20
_corpus: Optional[str] = None
_corpus_lock = threading.Lock()


class SafeText(str):
    """Answer text whose JSON string form is already known (``escaped``, without quotes).

    Corpus prose needs no escaping, so the results writer can splice it into a line
    instead of having the JSON encoder scan every character of a long answer.
    """

    escaped: str

    @classmethod
    def of(cls, lead: str, body: str) -> str:
        text = cls(lead + body)
        text.escaped = json.encoder.encode_basestring(lead)[1:-1] + body
        return text

    def cut(self, end: int, lead_length: int) -> str:
        if end <= lead_length:
            return str(self[:end])
        body = self[lead_length:end]
        return SafeText.of(str(self[:lead_length]), str(body))


def corpus() -> str:
    """About a megabyte of seeded filler prose (built once per process)."""
    global _corpus
    if _corpus is not None:
        return _corpus
    with _corpus_lock:
        if _corpus is None:
            rng = random.Random("claudebatch-emulator-corpus")
            parts: List[str] = []
            size = 0
            while size < _CORPUS_CHARS:
                words = rng.choices(_VOCABULARY, k=rng.randint(6, 16))
                sentence = " ".join(words).capitalize() + ". "
                parts.append(sentence)
                size += len(sentence)
            text = "".join(parts)[:_CORPUS_CHARS]
            _corpus = text + text  # doubled so any slice up to its length wraps around
        return _corpus


def _text(seed_value: int, chars: int, lead: str) -> str:
    """``chars`` characters: ``lead`` (cut if need be), then corpus prose."""
    if chars <= 0:
        return ""
    head = lead[:chars]
    need = chars - len(head)
    if need <= 0:
        return head
    body = corpus()
    start = seed_value % _CORPUS_CHARS
    space = body.find(" ", start, start + 64)
    start = space + 1 if space >= 0 else start
    if need <= _CORPUS_CHARS:
        return SafeText.of(head, body[start : start + need])
    reps = need // _CORPUS_CHARS + 2
    return SafeText.of(head, (body[:_CORPUS_CHARS] * reps)[start : start + need])


def _draw(rates: Tuple[float, ...], coin: float) -> Optional[str]:
    """Which answer fault (if any) a coin in [0, 1) falls on."""
    edge = 0.0
    for name, rate in zip(ANSWER_FAULTS, rates):
        edge += rate
        if coin < edge:
            return name
    return None


def _last_role(params: Dict[str, Any]) -> Optional[str]:
    messages = params.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages else None
    role = last.get("role") if isinstance(last, dict) else None
    return role if isinstance(role, str) else None


def _server_tool(params: Dict[str, Any]) -> Optional[str]:
    """The name of the request's web search or fetch tool, if it has one."""
    for tool in params.get("tools") or ():
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str) and kind.startswith(("web_search_", "web_fetch_")):
            return str(tool.get("name") or kind.split("_2")[0])
    return None


def _last_user_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                for block in content:
                    if isinstance(block, dict) and isinstance(block.get("text"), str):
                        return str(block["text"])
            return ""
    return ""


def _sample_input(schema: Any) -> Dict[str, Any]:
    """A tool input that fills the schema's required properties with plain values."""
    if not isinstance(schema, dict):
        return {}
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    out: Dict[str, Any] = {}
    required = schema.get("required")
    for name in required if isinstance(required, list) else []:
        spec = props.get(name, {}) if isinstance(props, dict) else {}
        kind = spec.get("type") if isinstance(spec, dict) else None
        if isinstance(spec, dict) and isinstance(spec.get("enum"), list) and spec["enum"]:
            out[name] = spec["enum"][0]
        elif kind in ("integer", "number"):
            out[name] = 0
        elif kind == "boolean":
            out[name] = False
        elif kind == "array":
            out[name] = []
        elif kind == "object":
            out[name] = _sample_input(spec)
        else:
            out[name] = "emulated"
    return out


class Responder:
    def __init__(self, seed: object, answer_tokens: Tuple[int, int] = (16, 400), *,
                 pause_rate: float = 0.0, refusal_rate: float = 0.0) -> None:
        low, high = answer_tokens
        if low < 1 or high < low:
            raise ValueError("answer_tokens must be (low, high) with 1 <= low <= high")
        self.seed = seed
        self.answer_tokens = (int(low), int(high))
        self.pause_rate = pause_rate
        self.refusal_rate = refusal_rate

    def _hash(self, params: Dict[str, Any], model: str) -> int:
        # repr of JSON values is stable and much cheaper than serialising them again
        key = repr((self.seed, model, params.get("system"), params.get("messages")))
        return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")

    def respond(
        self,
        params: Dict[str, Any],
        model: ModelInfo,
        message_id: str,
        cache: Optional[CacheUsage] = None,
        faults: Tuple[float, ...] = (),
    ) -> Dict[str, Any]:
        """The Message this model answers to ``params`` (which passed validation);
        ``faults``: the answer faults' rates (``faults.ANSWER_FAULTS``) of its batch."""
        prompt_tokens = analyse(params, model.resolved).tokens
        h = self._hash(params, model.resolved)
        low, high = self.answer_tokens
        target = low + h % (high - low + 1)
        budget = int(params["max_tokens"])
        content: List[Dict[str, Any]] = []
        output_tokens = 0
        stop_reason = "end_turn"
        stop_sequence: Optional[str] = None

        thinking = params.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
            think = min(16 + (h >> 16) % 48, budget)
            if think > 0:
                content.append({
                    "type": "thinking",
                    "thinking": _text(h >> 8, think * CHARS_PER_TOKEN, "Let me think. "),
                    "signature": derived_token(64, "sig", message_id),
                })
                output_tokens += think
                budget -= think

        tool = self._forced_tool(params)
        server_tool = _server_tool(params) if self.pause_rate else None
        schema = requested_schema(params) if tool is None else None
        fault = _draw(faults, unit(self.seed, message_id, "answer")) if schema else None
        if schema is not None and fault != "refused":
            value = sample(schema, h)
            if fault == "schema_violation":
                value = broken(schema, value)
            text = jsonanswer_dumps(value)
            if fault == "invalid_json":
                text = not_json(text)
            n = count_tokens(text)
            if fault == "truncated":
                budget = min(budget, max(1, n // 2))
            if n > budget:  # cut at max_tokens, as the service does, mid-JSON
                text, n, stop_reason = text[:budget * CHARS_PER_TOKEN], budget, "max_tokens"
            content.append({"type": "text", "text": text, "citations": None})
            output_tokens += n
        elif (self.refusal_rate and unit(self.seed, h, "refusal") < self.refusal_rate) \
                or fault == "refused":
            text = "I can't help with that request."
            content.append({"type": "text", "text": text, "citations": None})
            output_tokens += count_tokens(text)
            stop_reason = "refusal"
        elif server_tool is not None and _last_role(params) == "user" \
                and unit(self.seed, h, "pause") < self.pause_rate:
            query = _last_user_text(params.get("messages"))[:80] or "emulated"
            content.append({"type": "server_tool_use",
                            "id": "srvtoolu_01" + derived_token(22, "srvtoolu", message_id),
                            "name": server_tool, "input": {"query": query},
                            "caller": {"type": "direct"}})
            output_tokens += 8 + count_tokens(query)
            stop_reason = "pause_turn"
        elif tool is not None:
            tool_input = _sample_input(tool.get("input_schema"))
            cost = 8 + count_tokens(str(tool["name"])) + count_tokens(canonical(tool_input))
            if cost <= budget:
                content.append({
                    "type": "tool_use",
                    "id": tool_use_id(message_id),
                    "name": tool["name"],
                    "input": tool_input,
                    "caller": {"type": "direct"},
                })
                output_tokens += cost
                stop_reason = "tool_use"
            else:
                output_tokens += budget
                stop_reason = "max_tokens"
        else:
            n = target
            if n > budget:
                n = budget
                stop_reason = "max_tokens"
            asked = _last_user_text(params.get("messages"))[:60]
            lead = f"Emulated answer from {model.resolved} to: {asked!r}. "
            text = _text(h, n * CHARS_PER_TOKEN, lead)
            stops = params.get("stop_sequences") or []
            cut = -1
            for stop in stops:
                at = text.find(stop)
                if at >= 0 and (cut < 0 or at < cut):
                    cut, stop_sequence = at, stop
            if cut >= 0:
                text = text.cut(cut, len(lead)) if isinstance(text, SafeText) else text[:cut]
                n = count_tokens(text)
                stop_reason = "stop_sequence"
            if text:
                content.append({"type": "text", "text": text, "citations": None})
            output_tokens += n

        usage = cache or CacheUsage(0, 0, 0)
        written = usage.write_5m + usage.write_1h
        return {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model.resolved,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "stop_details": None,
            "usage": {
                "input_tokens": max(0, prompt_tokens - usage.read - written),
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": written,
                "cache_read_input_tokens": usage.read,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": usage.write_5m,
                    "ephemeral_1h_input_tokens": usage.write_1h,
                },
                "server_tool_use": None,
                "service_tier": "batch",
                "inference_geo": params.get("inference_geo") or "global",
            },
            "container": None,
        }

    @staticmethod
    def _forced_tool(params: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        choice = params.get("tool_choice")
        tools = params.get("tools")
        if not isinstance(choice, dict) or not isinstance(tools, list):
            return None
        named = [t for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)]
        if choice.get("type") == "tool":
            for t in named:
                if t["name"] == choice.get("name"):
                    return t
        if choice.get("type") == "any" and named:
            return named[0]
        return None
