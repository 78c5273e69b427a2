"""Identifiers and timestamps in the service's formats.

Batch ids look like ``msgbatch_01`` + 22 base62 characters (24 after the prefix, as in the
service's examples); message ids ``msg_01...``; request ids ``req_011C...``. Ids that must
not change between two downloads of the same results are derived from a hash instead of
drawn from the seeded generator.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import string
import threading

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_BYTE_TO_BASE62 = bytes(ord(BASE62[i % 62]) for i in range(256))


class IdFactory:
    """Seeded source of fresh ids (so two runs with one seed name their batches alike)."""

    def __init__(self, seed: object) -> None:
        # separate streams, so how often a client polls does not change the batch ids
        self._batches = random.Random(f"batch-ids:{seed}")
        self._requests = random.Random(f"request-ids:{seed}")
        self._lock = threading.Lock()

    def _token(self, rng: random.Random, n: int) -> str:
        with self._lock:
            return "".join(rng.choice(BASE62) for _ in range(n))

    def batch_id(self) -> str:
        return "msgbatch_01" + self._token(self._batches, 22)

    def request_id(self) -> str:
        return "req_011C" + self._token(self._requests, 20)


def derived_token(n: int, *parts: object) -> str:
    """``n`` (at most 64) base62 characters determined by ``parts``."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=64).digest()
    return digest[:n].translate(_BYTE_TO_BASE62).decode()


def message_id(*parts: object) -> str:
    return "msg_01" + derived_token(22, "msg", *parts)


def tool_use_id(*parts: object) -> str:
    return "toolu_01" + derived_token(22, "toolu", *parts)


def unit(*parts: object) -> float:
    """A number in [0, 1) determined by ``parts``: seeded coin flips without shared state."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def rfc3339(ts: float) -> str:
    """``2024-08-20T18:37:24.100435Z``, the service's format."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
