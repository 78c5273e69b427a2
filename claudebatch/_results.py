"""Stream a results body (JSONL) one result at a time, in constant memory.

The body is read from the socket in chunks and cut into lines; each line is
parsed once (orjson when installed) and handed on with its bytes as served, so
a job writes it without serializing it again. A multi-GB results file never
sits in memory, and a single line too long to hold is parsed by ijson as it
streams (its C backend when installed), in time linear in its length.
"""

from __future__ import annotations

import http.client
from typing import Any, Dict, Iterator, List, Optional, Protocol, Tuple

import attrs
import ijson
import requests
import urllib3

from . import _json
from ._lazy import structure_result
from .errors import APIConnectionError, ResultsParseError
from .models import Annotation, BatchResult

READ_SIZE = 64 * 1024
#: A results line longer than this is parsed as it streams, never held whole (a result
#: is a few KB; one of 16 MB is already far past the longest answer a model writes).
MAX_HELD_LINE = 16 * 1024 * 1024

#: What a broken connection raises from inside a read.
NETWORK_ERRORS = (OSError, urllib3.exceptions.HTTPError, requests.RequestException,
                  http.client.HTTPException)

#: The ijson backend in use ("yajl2_c" is the fast one).
BACKEND = ijson.backend_name if hasattr(ijson, "backend_name") else "unknown"


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class PieceReader:
    """``read`` over an HTTP response's pieces as urllib3 streams them (``raw.stream``):
    a chunked body is cut by urllib3 itself, faster than ``raw.read(n)`` through
    http.client. Each ``read`` gives the next piece, whatever ``size`` asks (the line
    reader and ijson take any length); b"" at the end."""

    def __init__(self, raw: Any, size: int = READ_SIZE):
        self._pieces = raw.stream(size, decode_content=True)

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson asks for nothing first, to see bytes or str
            return b""
        return next(self._pieces, b"")


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
    return iter_lines(stream, source=source, lines=False)  # type: ignore[return-value]


def iter_lines(stream: Readable, *, source: str = "results", lines: bool = True
               ) -> Iterator[Tuple[Dict[str, Any], Optional[bytes]]]:
    """Each result of a JSONL stream as ``(value, line)``: the line as served (no line
    end), parsed once. A job writes that line, so nothing is serialized again.
    ``lines=False``: each value alone.

    A line longer than :data:`MAX_HELD_LINE` is never held whole: from there on the
    stream is parsed as it comes by ijson, and ``line`` is None (the caller writes
    the value serialized).
    """
    reader = CountingReader(stream)
    loads = _json.loads
    fast = _json.fast_loads or loads  # on any error, ``loads`` reads it again to say why
    last_id: Optional[str] = None
    offset = 0  # where the next line starts in the stream
    pending: List[bytes] = []  # the start of a line not ended yet
    held = 0
    while True:
        try:
            chunk = reader.read(READ_SIZE)
        except NETWORK_ERRORS as exc:
            raise _broken(source, reader.offset, last_id, exc) from exc
        if not chunk:
            break
        end = chunk.rfind(b"\n")
        if end < 0:
            pending.append(chunk)
            held += len(chunk)
            if held > MAX_HELD_LINE:  # a huge line: streamed by ijson from its start
                rest = _Chained(pending, reader)
                for value in _iter_ijson(rest, source, offset, last_id):
                    yield (value, None) if lines else value  # type: ignore[misc]
                return
            continue
        if pending:
            pending.append(chunk[:end])
            block = b"".join(pending)
        else:
            block = chunk[:end]
        start = offset  # where the block starts; a line's own offset only for an error
        offset += len(block) + 1
        for line in block.split(b"\n"):
            try:
                value = fast(line)  # a "\r" before the "\n" is whitespace to JSON
            except (ValueError, RecursionError):
                if not line.strip():
                    continue  # a blank line
                value = _parse(loads, line.strip(), source, start + _line_at(block, line),
                               last_id)
            if type(value) is not dict or type(value.get("custom_id")) is not str \
                    or type(value.get("result")) is not dict:
                _checked(value, source, start + _line_at(block, line), last_id)  # raises
            last_id = value["custom_id"]
            if not lines:
                yield value  # type: ignore[misc]
                continue
            if line[-1:] == b"\r":
                line = line[:-1]
            yield value, line
        rest_of_chunk = chunk[end + 1:]
        pending = [rest_of_chunk] if rest_of_chunk else []
        held = len(rest_of_chunk)
    line = b"".join(pending).strip()
    if line:
        value = _parse(loads, line, source, offset, last_id)
        yield (value, line) if lines else value  # type: ignore[misc]


def _line_at(block: bytes, line: bytes) -> int:
    """Where ``line`` starts in ``block``: the first whole line of its bytes (a line that
    fails is the first of its bytes in its block: an equal one before it failed first)."""
    at = block.find(line)
    while at >= 0:
        after = at + len(line)
        if (at == 0 or block[at - 1] == 10) and (after == len(block) or block[after] == 10):
            return at
        at = block.find(line, at + 1)
    return 0  # (not reached: the line is one of the block's)


def _parse(loads: Any, line: bytes, source: str, offset: int, last_id: Optional[str]
           ) -> Dict[str, Any]:
    where = f"after custom_id {last_id!r}" if last_id else "before the first result"
    try:
        value = loads(line)
    except (ValueError, RecursionError) as exc:
        raise ResultsParseError(
            f"{source}: malformed JSON near byte {offset} ({where}): {exc}",
            custom_id=last_id, byte_offset=offset) from None
    return _checked(value, source, offset, last_id)


def _checked(value: Any, source: str, offset: int, last_id: Optional[str]) -> Dict[str, Any]:
    if type(value) is not dict or type(value.get("custom_id")) is not str \
            or type(value.get("result")) is not dict:
        raise ResultsParseError(
            f"{source}: a line near byte {offset} is not a result object "
            f"(expected custom_id and result; after custom_id {last_id!r})",
            custom_id=last_id, byte_offset=offset)
    return value


def _broken(source: str, offset: int, last_id: Optional[str], exc: BaseException
            ) -> APIConnectionError:
    where = f"after custom_id {last_id!r}" if last_id else "before the first result"
    return APIConnectionError(f"{source}: the stream broke near byte {offset} ({where}): "
                              f"{type(exc).__name__}: {exc}")


class _Chained:
    """The bytes held so far, then the rest of the stream."""

    def __init__(self, held: List[bytes], reader: CountingReader):
        self._held = held
        self._reader = reader

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson asks for nothing first, to see bytes or str
            return b""
        if self._held:
            return self._held.pop(0)
        return self._reader.read(size)


def _iter_ijson(stream: Readable, source: str, start: int, last_id: Optional[str]
                ) -> Iterator[Dict[str, Any]]:
    """The rest of a results stream parsed as it comes (for lines too long to hold)."""
    reader = CountingReader(stream)
    items = ijson.items(reader, "", multiple_values=True, use_float=True, buf_size=READ_SIZE)
    while True:
        try:
            value = next(items)
        except StopIteration:
            return
        except ijson.JSONError as exc:
            where = f"after custom_id {last_id!r}" if last_id else "before the first result"
            raise ResultsParseError(
                f"{source}: malformed JSON near byte {start + reader.offset} ({where}): {exc}",
                custom_id=last_id, byte_offset=start + reader.offset) from None
        except NETWORK_ERRORS as exc:
            raise _broken(source, start + reader.offset, last_id, exc) from exc
        value = _checked(value, source, start + reader.offset, last_id)
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


def result_hooks(caller: Any) -> Tuple[bool, bool]:
    """Whether a per-result hook (``hook.on_result``, ``hook.keep_answer``) has
    implementations, and whether one takes ``result``: the typed result is built only
    then (one that takes ``raw`` spares it)."""
    impls = caller.get_hookimpls()
    return bool(impls), any("result" in impl.argnames for impl in impls)


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
