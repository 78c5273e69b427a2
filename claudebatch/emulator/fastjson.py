"""JSON for the emulator's hot paths: orjson when it is installed, the same text and values.

Creating a batch writes every request once; serving results reads every request back and
writes every answer: with the standard library that was a quarter of the emulator's time
on a large batch.
:func:`claudebatch._json.dumps` gives the bytes ``json`` gives, for values without NaN
or Infinity (orjson writes those as null); a request parsed from a body may hold
Infinity (``1e999``), so :func:`encode` hands a value whose text holds a null to
``json``. :func:`encode_plain` is for values known to hold no float at all (orjson
writes some floats otherwise than json), such as the emulator's own answers.
:func:`decode` reads what :func:`encode` wrote back to the values json reads.
"""

from __future__ import annotations

import json
from typing import Any

from .. import _json

_std_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_std_decode = json.JSONDecoder().decode
#: Digits to "0": a run of 19 shows an integer orjson may read as a float (past 64 bits).
_DIGITS = bytes(48 if 48 <= c <= 57 else c for c in range(256))
_LONG_NUMBER = b"0" * 19


def encode(value: Any) -> str:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``, faster."""
    if _json.fast_dumps is None:
        return _std_encode(value)
    data = _json.dumps(value)
    if b"null" in data:  # perhaps NaN or Infinity: json writes those as it always did
        return _std_encode(value)
    return data.decode()


def encode_plain(value: Any) -> str:
    """:func:`encode` for a value that holds no float (text, ids, token counts): orjson
    writes it as json does, with no check."""
    if _json.fast_dumps is None:
        return _std_encode(value)
    return _json.fast_dumps(value).decode()


def decode(data: bytes) -> Any:
    """``json.loads(data)``, faster: orjson unless the text may hold an integer past 64
    bits (orjson reads one as a float) or a NaN or Infinity (orjson refuses them)."""
    if _json.fast_loads is not None and _LONG_NUMBER not in data.translate(_DIGITS):
        try:
            return _json.fast_loads(data)
        except ValueError:
            pass  # NaN or Infinity, which json reads
    return _std_decode(data.decode())
