"""JSON in and out, with orjson when it is installed (the ``fast`` extra), the same bytes without.

A job parses every input line and every result line, and serializes every request:
orjson does each several times faster than the standard library. It is an
accelerator only, never a change of meaning: where it would read or write
something other than what the standard library (as the core uses it) would, the
standard library does the work.

- ``loads``: orjson refuses what the strict reader refuses (NaN, Infinity, invalid
  UTF-8, a lone surrogate): those lines are then read by ``json`` so the caller
  sees the same value or error as without orjson. One difference stays: orjson
  reads an integer past 64 bits as a float. The input's reader (``_inputs``) sends
  lines with long digit runs to the strict reader; a result line that holds one (a
  model may write one in a tool's input) is still written as served, and only its
  parsed value differs.
- ``dumps``: compact, UTF-8, the bytes ``json.dumps(separators=(",", ":"),
  ensure_ascii=False)`` gives; ``dumps_sorted`` with ``sort_keys=True`` (keys that
  name stored answers). orjson writes small floats (below 1e-4) without an exponent
  and refuses keys that are not strings: those go to ``json``. Both are for JSON
  values without NaN or Infinity (orjson writes those as null): requests as validated,
  results as read.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Optional

_orjson: Any
try:  # pragma: no cover - which branch runs depends on the environment
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None

#: The accelerator in use: "orjson", or "json" (the standard library).
BACKEND = "json"
#: orjson's own reading (None without it), for a caller that knows when it agrees with
#: the strict reading (it reads an integer past 64 bits as a float).
fast_loads: Optional[Callable[[bytes], Any]] = None
#: orjson's own writing (None without it), for a caller that knows the value holds no
#: float it writes otherwise and no key that is not a string.
fast_dumps: Optional[Callable[[Any], bytes]] = None
#: The same with keys sorted (``dumps_sorted`` without its checks), on the same terms.
fast_dumps_sorted: Optional[Callable[[Any], bytes]] = None


def _refuse_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON (the API's JSON has no NaN or Infinity)")


_STRICT = json.JSONDecoder(parse_constant=_refuse_constant)


def std_loads(data: bytes) -> Any:
    """The standard library's reading of one JSON document, refusing NaN and Infinity."""
    return _STRICT.decode(data.decode("utf-8"))


def std_dumps(value: Any) -> bytes:
    """Compact JSON as the request body carries it, by the standard library."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _make_loads(fast: Any) -> Callable[[bytes], Any]:
    fast_loads, error = fast.loads, fast.JSONDecodeError

    def loads(data: bytes) -> Any:
        try:
            return fast_loads(data)
        except error:  # the standard library says what (or accepts a lone surrogate)
            return std_loads(data)

    return loads


def _negative_exponent(data: bytes) -> bool:
    """Whether ``data`` may hold a float with a negative exponent: a digit, then "e-"
    (words such as "re-run" are passed over)."""
    at = data.find(b"e-")
    while at > 0:
        if 48 <= data[at - 1] <= 57:
            return True
        at = data.find(b"e-", at + 2)
    return False


def std_dumps_sorted(value: Any) -> bytes:
    """Canonical JSON (keys sorted), by the standard library."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def _make_dumps(fast: Any, option: int = 0, std: Callable[[Any], bytes] = std_dumps
                ) -> Callable[[Any], bytes]:
    error = fast.JSONEncodeError
    fast_dumps = fast.dumps if not option else lambda value: fast.dumps(value, option=option)

    def dumps(value: Any) -> bytes:
        try:
            data: bytes = fast_dumps(value)
        except error:  # a key that is not a string, an int past 64 bits, a lone surrogate
            return std(value)
        if b"0.0000" in data or (b"e-" in data and _negative_exponent(data)):  # a float
            return std(value)  # json writes otherwise (1e-05, 1.5e-09; orjson 0.00001, 1.5e-9)
        return data

    return dumps


def use(accelerator: Optional[str]) -> None:
    """Switch the accelerator: "orjson" or None (the standard library). For tests and
    benchmarks; the default is orjson when it is installed."""
    global loads, dumps, dumps_sorted, fast_loads, fast_dumps, fast_dumps_sorted, BACKEND
    if accelerator is None:
        loads, dumps, dumps_sorted = std_loads, std_dumps, std_dumps_sorted
        fast_loads, fast_dumps, fast_dumps_sorted, BACKEND = None, None, None, "json"
    elif accelerator == "orjson":
        if _orjson is None:
            raise ImportError("orjson is not installed: pip install 'claudebatch[fast]'")
        loads, dumps, BACKEND = _make_loads(_orjson), _make_dumps(_orjson), "orjson"
        dumps_sorted = _make_dumps(_orjson, _orjson.OPT_SORT_KEYS, std_dumps_sorted)
        fast_loads, fast_dumps = _orjson.loads, _orjson.dumps
        sort_keys = _orjson.OPT_SORT_KEYS
        fast_dumps_sorted = lambda value: _orjson.dumps(value, option=sort_keys)  # noqa: E731
    else:
        raise ValueError(f"unknown JSON accelerator {accelerator!r}")


#: Set (to anything but "" or "0") to run on the standard library with orjson installed:
#: how the tests run the pure-Python path too.
NO_ORJSON_ENV = "CLAUDEBATCH_NO_ORJSON"

loads: Callable[[bytes], Any] = std_loads
dumps: Callable[[Any], bytes] = std_dumps
dumps_sorted: Callable[[Any], bytes] = std_dumps_sorted
if _orjson is not None and os.environ.get(NO_ORJSON_ENV, "") in ("", "0"):
    use("orjson")
