"""Request builders and a way to run the plugin's placement on a batch without HTTP."""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional

from claudebatch_cache import PromptCache

from claudebatch import BatchClient, PendingBatch, Request

MODEL = "claude-sonnet-4-5"  # minimum cacheable prefix: 1,024 tokens


def long_text(tokens: int, word: str = "policy") -> str:
    """About ``tokens`` tokens of text (the plugin and the emulator count chars / 4)."""
    unit = f"{word} clause, "
    return (unit * (tokens * 4 // len(unit) + 1))[: tokens * 4]


def tool(name: str, tokens: int) -> Dict[str, Any]:
    return {"name": name, "description": long_text(tokens, name),
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}


def request(custom_id: str, *, system: Any = None, tools: Optional[List[Any]] = None,
            messages: Optional[List[Any]] = None, question: Optional[str] = None,
            model: str = MODEL, **extra: Any) -> Request:
    params: Dict[str, Any] = {"model": model, "max_tokens": 64}
    if tools is not None:
        params["tools"] = tools
    if system is not None:
        params["system"] = system
    params["messages"] = messages if messages is not None else [
        {"role": "user", "content": question or f"question {custom_id}"}]
    params.update(extra)
    return Request(custom_id, params)


#: The context of a plain ``client.create``: no job.
CONTEXT = BatchClient(api_key="k", base_url="http://127.0.0.1:9", load_entry_points=False).context


def place(requests: List[Request], cache: Optional[PromptCache] = None) -> List[Request]:
    """The requests as the plugin would send them (its before_submit on a batch)."""
    pending = PendingBatch.from_requests(requests)
    (cache or PromptCache()).before_submit(requests=pending, context=CONTEXT)
    return list(pending)


def markers(params: Dict[str, Any]) -> List[Any]:
    """``(where, cache_control)`` for every marked block, in cache order."""
    found: List[Any] = []
    for i, t in enumerate(params.get("tools") or []):
        if "cache_control" in t:
            found.append((("tools", i), t["cache_control"]))
    system = params.get("system")
    if isinstance(system, list):
        for i, block in enumerate(system):
            if "cache_control" in block:
                found.append((("system", i), block["cache_control"]))
    for m, message in enumerate(params["messages"]):
        content = message["content"]
        if isinstance(content, list):
            for b, block in enumerate(content):
                if isinstance(block, dict) and "cache_control" in block:
                    found.append((("messages", m, b), block["cache_control"]))
    return found


def ephemeral(ttl: str = "1h") -> Dict[str, str]:
    return {"type": "ephemeral", "ttl": ttl}


def snapshot(requests: List[Request]) -> List[Any]:
    return [copy.deepcopy(r.params) for r in requests]
