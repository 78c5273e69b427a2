"""A set of 64-bit digests, each with a number, in flat arrays: 12 bytes a slot.

Catching duplicate keys in millions of rows must not cost a Python object per
row (a dict of strings holds ~170 bytes each). An open-addressing table of two
``array('Q')`` holds the digest and the row it came from, so the first row of a
duplicate can be named; 64 bits of sha256 make a false match (about 3 in 10^8
at a million rows) far rarer than any other failure.
"""

from __future__ import annotations

from array import array
from itertools import compress
from typing import Optional

_EMPTY = 0
#: One empty slot: tables are made by repeating it, with no temporary as large as the table.
_ZERO_Q, _ZERO_I = (0,), (0,)
_MAX_LOAD = 0.6
_MAX_NUMBER = 2**32 - 1  # a number past it is kept as this (a row past 4 billion)


class DigestTable:
    """Digest (a nonzero int below 2**64) -> number (an int >= 0)."""

    def __init__(self, capacity: int = 1024) -> None:
        size = 1
        while size < capacity:
            size *= 2
        self._keys = array("Q", _ZERO_Q) * size
        self._values = array("I", _ZERO_I) * size
        self._mask = size - 1
        self._limit = int(_MAX_LOAD * size)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, digest: int, number: int) -> Optional[int]:
        """Record ``digest`` with ``number``; if it was there already, return its number."""
        digest = digest or 1  # 0 marks an empty slot
        keys, mask = self._keys, self._mask
        slot = digest & mask
        found = keys[slot]
        while found:
            if found == digest:
                return int(self._values[slot])
            slot = (slot + 1) & mask
            found = keys[slot]
        keys[slot] = digest
        self._values[slot] = number if number < _MAX_NUMBER else _MAX_NUMBER
        self._count = count = self._count + 1
        if count > self._limit:
            self._grow()
        return None

    def _grow(self) -> None:
        old_keys, old_values = self._keys, self._values
        size = 2 * (self._mask + 1)
        self._keys = keys = array("Q", _ZERO_Q) * size
        self._values = values = array("I", _ZERO_I) * size
        self._mask = mask = size - 1
        self._limit = int(_MAX_LOAD * size)
        for digest, number in compress(zip(old_keys, old_values), old_keys):  # filled slots
            slot = digest & mask
            while keys[slot]:
                slot = (slot + 1) & mask
            keys[slot] = digest
            values[slot] = number
