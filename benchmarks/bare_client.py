"""The baseline of issue #19: a bare client doing the job of ``claudebatch run IN -o OUT``.

Plain Python + ``requests`` + ``orjson`` (stdlib ``json`` if orjson is missing). It
reads every line of a JSONL of requests, parses it, and checks what claudebatch checks
cheaply: custom_id fullmatches ``[a-zA-Z0-9_-]{1,64}`` and is unique (a set); params is
an object with a string model, an integer max_tokens >= 1, a non-empty messages list,
and none of the params a batch refuses (stream when true, speed, store,
previous_thread_event_id, cache_hint, context_hint, research_preview_2026_02). A bad
line stops it before anything is sent. It splits into batches of at most 100,000
requests and 256,000,000 body bytes (a first pass over the file notes each batch's
byte range; the second streams each body from the file), creates every batch, polls
each until ``processing_status`` is ``ended``, streams each ``results_url`` with
``iter_lines``, parses each line, checks its custom_id was sent, writes the line as
received and counts the result types. Nothing else: no spool, no resume, no plugins.

    python benchmarks/bare_client.py IN.jsonl -o OUT.jsonl --base-url URL [--poll 0.2]

Importable: ``run_bare(input_path, output_path, base_url, poll_interval) -> dict``.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Callable, Dict, Iterator, List, Set, Tuple

import requests

try:
    import orjson

    loads: Callable[[bytes], Any] = orjson.loads
    JSON_BACKEND = "orjson"
except ImportError:  # pragma: no cover - the fallback
    loads = json.loads
    JSON_BACKEND = "json"

MAX_REQUESTS = 100_000
MAX_BYTES = 256_000_000
API_VERSION = "2026-10-21"
CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
REFUSED = ("speed", "store", "previous_thread_event_id", "cache_hint", "context_hint",
           "research_preview_2026_02")
HEAD, SEP, TAIL = b'{"requests":[', b",", b"]}"
CHUNK = 1 << 20

# (first byte offset, end byte offset, requests, body bytes) of one batch in the file.
Plan = Tuple[int, int, int, int]


def check(line_no: int, row: Any, seen: Set[str]) -> None:
    if not isinstance(row, dict):
        raise ValueError(f"line {line_no}: not a JSON object")
    custom_id = row.get("custom_id")
    if not isinstance(custom_id, str) or not CUSTOM_ID.fullmatch(custom_id):
        raise ValueError(f"line {line_no}: bad custom_id {custom_id!r}")
    if custom_id in seen:
        raise ValueError(f"line {line_no}: duplicate custom_id {custom_id!r}")
    seen.add(custom_id)
    params = row.get("params")
    if not isinstance(params, dict):
        raise ValueError(f"line {line_no}: params is not an object")
    if not isinstance(params.get("model"), str):
        raise ValueError(f"line {line_no}: model is not a string")
    max_tokens = params.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ValueError(f"line {line_no}: max_tokens is not an integer >= 1")
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"line {line_no}: messages is not a non-empty list")
    if params.get("stream"):
        raise ValueError(f"line {line_no}: stream is refused in a batch")
    for name in REFUSED:
        if name in params:
            raise ValueError(f"line {line_no}: {name} is refused in a batch")


def plan(input_path: str) -> Tuple[List[Plan], Set[str]]:
    """Read, parse and check every line; the batches as byte ranges of the file."""
    plans: List[Plan] = []
    seen: Set[str] = set()
    start = offset = count = 0
    body = len(HEAD) + len(TAIL)
    with open(input_path, "rb") as handle:
        for line_no, line in enumerate(handle, 1):
            stripped = line.strip()
            if stripped:
                check(line_no, loads(stripped), seen)
                size = len(stripped) + (len(SEP) if count else 0)
                if count and (count == MAX_REQUESTS or body + size > MAX_BYTES):
                    plans.append((start, offset, count, body))
                    start, count, body = offset, 0, len(HEAD) + len(TAIL)
                    size = len(stripped)
                if body + size > MAX_BYTES:
                    raise ValueError(f"line {line_no}: one request over {MAX_BYTES} bytes")
                count += 1
                body += size
            offset += len(line)
    if count:
        plans.append((start, offset, count, body))
    return plans, seen


def body(input_path: str, batch: Plan) -> Iterator[bytes]:
    """The create body of one batch, streamed from its byte range of the file."""
    start, end, _, _ = batch
    yield HEAD
    first = True
    parts: List[bytes] = []
    size = 0
    with open(input_path, "rb") as handle:
        handle.seek(start)
        while handle.tell() < end:
            stripped = handle.readline().strip()
            if not stripped:
                continue
            if not first:
                parts.append(SEP)
            first = False
            parts.append(stripped)
            size += len(stripped)
            if size >= CHUNK:
                yield b"".join(parts)
                parts, size = [], 0
    parts.append(TAIL)
    yield b"".join(parts)


def run_bare(input_path: str, output_path: str, base_url: str, poll_interval: float,
             api_key: str = "x") -> Dict[str, Any]:
    """Run the whole job; the counts (requests, batches, results and their types)."""
    plans, sent = plan(input_path)
    session = requests.Session()
    session.headers.update({"x-api-key": api_key, "anthropic-version": API_VERSION,
                            "content-type": "application/json"})
    root = base_url.rstrip("/") + "/v1/messages/batches"
    batch_ids = []
    for batch in plans:
        made = session.post(root, data=body(input_path, batch), timeout=600)  # chunked
        made.raise_for_status()
        batch_ids.append(loads(made.content)["id"])
    types: Dict[str, int] = {}
    results = 0
    with open(output_path, "wb") as out:
        for batch_id in batch_ids:
            while True:
                got = session.get(f"{root}/{batch_id}", timeout=60)
                got.raise_for_status()
                state = loads(got.content)
                if state["processing_status"] == "ended":
                    break
                time.sleep(poll_interval)
            with session.get(state["results_url"], stream=True, timeout=600) as lines:
                lines.raise_for_status()
                for line in lines.iter_lines(chunk_size=1 << 16):
                    if not line:
                        continue
                    result = loads(line)
                    if result["custom_id"] not in sent:
                        raise ValueError(f"a result for {result['custom_id']!r}, not sent")
                    kind = result["result"]["type"]
                    types[kind] = types.get(kind, 0) + 1
                    results += 1
                    out.write(line)
                    out.write(b"\n")
    return {"requests": len(sent), "batches": len(batch_ids), "results": results,
            "types": types, "json": JSON_BACKEND}


def main() -> None:
    from _harness import job_script_main  # only as a script: the baseline imports nothing more

    job_script_main(run_bare)


if __name__ == "__main__":
    main()
