"""Stream a results body (JSONL) one result at a time, in constant memory.

The body is read from the socket in chunks by ijson (its C backend when
installed), so a multi-GB results file never sits in memory and a single huge
line costs time linear in its length.
"""

from __future__ import annotations

import http.client
from typing import Any, Dict, Iterator, Optional, Protocol, Tuple

import attrs
import ijson
import requests
import urllib3

from ._serde import structure_result
from .errors import APIConnectionError, ResultsParseError
from .models import Annotation, BatchResult

READ_SIZE = 64 * 1024

#: What a broken connection raises from inside a read.
NETWORK_ERRORS = (OSError, urllib3.exceptions.HTTPError, requests.RequestException,
                  http.client.HTTPException)

#: The ijson backend in use ("yajl2_c" is the fast one).
BACKEND = ijson.backend_name if hasattr(ijson, "backend_name") else "unknown"


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class CountingReader:
    """A file wrapper that counts bytes read, to say where a parse error happened."""

    def __init__(self, raw: Readable):
        self._raw = raw
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.offset += len(data)
        return data


def iter_raw(stream: Readable, *, source: str = "results") -> Iterator[Dict[str, Any]]:
    """Yield each JSON object of a JSONL stream as a dict, checking it is a result line."""
    reader = CountingReader(stream)
    last_id: Optional[str] = None
    items = ijson.items(reader, "", multiple_values=True, use_float=True, buf_size=READ_SIZE)
    while True:
        try:
            value = next(items)
        except StopIteration:
            return
        except ijson.JSONError as exc:
            where = f"after custom_id {last_id!r}" if last_id else "before the first result"
            raise ResultsParseError(
                f"{source}: malformed JSON near byte {reader.offset} ({where}): {exc}",
                custom_id=last_id, byte_offset=reader.offset) from None
        except NETWORK_ERRORS as exc:
            where = f"after custom_id {last_id!r}" if last_id else "before the first result"
            raise APIConnectionError(
                f"{source}: the stream broke near byte {reader.offset} ({where}): "
                f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(value, dict) or not isinstance(value.get("custom_id"), str) \
                or not isinstance(value.get("result"), dict):
            raise ResultsParseError(
                f"{source}: a line near byte {reader.offset} is not a result object "
                f"(expected custom_id and result; after custom_id {last_id!r})",
                custom_id=last_id, byte_offset=reader.offset)
        last_id = value["custom_id"]
        yield value


def to_result(value: Dict[str, Any], *, source: str = "results") -> BatchResult:
    """One raw result line as a typed BatchResult, with an error naming its custom_id.

    Public as ``claudebatch.parse_result``: a store that keeps result lines as JSON
    turns them back into results the same way the client does.
    """
    try:
        return structure_result(value)
    except Exception as exc:
        custom_id = value.get("custom_id")
        raise ResultsParseError(
            f"{source}: the result for custom_id {custom_id!r} does not parse: {exc}",
            custom_id=custom_id if isinstance(custom_id, str) else None) from None


def annotate(hook: Any, value: Dict[str, Any], result: BatchResult, context: Any
             ) -> Tuple[Dict[str, Any], BatchResult, bool]:
    """The result line and result with what the ``annotate_result`` plugins add, and
    whether every plugin found the answer usable (``Annotation.usable``)."""
    fields: Dict[str, Any] = {}
    owned: set[str] = set()
    parsed: Any = None
    usable = True
    for note in hook.annotate_result(result=result, context=context):
        if not isinstance(note, Annotation):
            raise TypeError(f"annotate_result must return an Annotation or None, got "
                            f"{type(note).__name__}")
        usable = usable and note.usable
        owned.update(note.owns)
        for name, field in note.fields.items():
            if name not in _CORE_FIELDS and name not in fields:
                fields[name] = field
        if parsed is None:
            parsed = note.parsed
    if not fields and parsed is None and not owned.intersection(value):
        return value, result, usable
    if parsed is None:
        parsed = fields.get("parsed")
    kept = {k: v for k, v in value.items() if k not in owned or k in _CORE_FIELDS}
    return {**kept, **fields}, attrs.evolve(result, parsed=parsed), usable


#: Fields of a result line no plugin may replace.
_CORE_FIELDS = frozenset({"custom_id", "result", "reused_from"})
