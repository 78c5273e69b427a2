"""A batch's results body, generated line by line as it is sent.

Nothing is precomputed but the cache usage: each line re-reads its request from the
batch's spool and runs the stand-in model, so a body of several gigabytes costs no
more memory than one line, and two downloads give the same bytes.
"""

from __future__ import annotations

import os
import secrets
from typing import Any, Dict, Iterator, List

from .catalog import Catalog
from .fastjson import decode, encode, encode_plain
from .ids import message_id
from .responder import Responder, SafeText
from .store import FAULT_API_ERROR, FAULT_OVERLOADED, INVALID, BatchRecord, View
from .validation import validate

_FAULT_ERRORS = {
    FAULT_API_ERROR: ("api_error", "Internal server error"),
    FAULT_OVERLOADED: ("overloaded_error", "Overloaded"),
}




#: Blocks whose every value the emulator makes itself (text, ids, token counts): no
#: float. A tool's input is drawn from the request's schema, which may hold any.
_OWN_BLOCKS = frozenset({"text", "thinking", "redacted_thinking"})

_MARK = "\x01" + secrets.token_hex(8)  # cannot occur in what a client sent and we echo


def _dump(custom_id: str, result: Dict[str, Any]) -> bytes:
    return (encode({"custom_id": custom_id, "result": result}) + "\n").encode()


def _dump_message(custom_id: str, message: Dict[str, Any]) -> bytes:
    """Like ``_dump`` for a succeeded result, splicing long answer text in unescaped."""
    spliced: List[str] = []
    for block in message["content"]:
        for key in ("text", "thinking"):
            value = block.get(key)
            if isinstance(value, SafeText) and len(value) > 200:
                block[key] = f"{_MARK}{len(spliced)}"
                spliced.append(value.escaped)
    own = all(block.get("type") in _OWN_BLOCKS for block in message["content"])
    line = (encode_plain if own else encode)(
        {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}})
    for i, escaped in enumerate(spliced):
        line = line.replace(f"\\u0001{_MARK[1:]}{i}", escaped, 1)
    return (line + "\n").encode()


def _errored(error_type: str, message: str) -> Dict[str, Any]:
    return {
        "type": "errored",
        "error": {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": None,
        },
    }


def iter_lines(
    record: BatchRecord, view: View, responder: Responder, catalog: Catalog
) -> Iterator[bytes]:
    """Every request's result line, in processing order; unprocessed ones last."""
    tail = b'"result":{"type":"%s"}}\n' % view.tail.encode()
    offsets, last = record.offsets, record.size - 1
    with open(record.spool_path, "rb") as spool:
        fd = spool.fileno()
        end_of_spool = os.fstat(fd).st_size
        for pos in range(record.size):
            index = record.order[pos]
            start = offsets[index]  # in processing order: anywhere in the spool, so one
            end = offsets[index + 1] if index < last else end_of_spool  # read, not a seek
            raw_id, _, raw_params = os.pread(fd, end - start, start).partition(b"\t")
            if pos >= view.processed:
                # custom_ids are [a-zA-Z0-9_-]: no escaping needed
                yield b'{"custom_id":"' + raw_id + b'",' + tail
                continue
            custom_id = raw_id.decode()
            code = record.codes[index]
            if code in _FAULT_ERRORS:
                yield _dump(custom_id, _errored(*_FAULT_ERRORS[code]))
                continue
            params = decode(raw_params)
            if code == INVALID:
                error = validate(params, catalog, dialect=record.dialect)
                assert error is not None
                yield _dump(custom_id, _errored(error.type, error.message))
                continue
            info = catalog.lookup(params["model"])
            assert info is not None
            cache = record.cache.get(index) if record.cache is not None else None
            message = responder.respond(params, info, message_id(record.id, index), cache,
                                        faults=record.answer_faults)
            yield _dump_message(custom_id, message)

