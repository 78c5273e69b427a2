"""Results as served, read back from the job's output as the job writes it.

``on_result`` hands plugins a parsed :class:`~claudebatch.BatchResult`, which
keeps only the fields claudebatch models (a new API field would be lost) and is
slow to turn back into JSON. The job writes each result line, exactly as
served, to its output file as it streams; the store follows that file from the
offset where this run began writing and stores complete lines. The lag is the
job's write buffer (a few kB); at ``on_batch_end`` the job has flushed, so the
batch is complete in the store.
"""

from __future__ import annotations

import json
import os
import re
from typing import IO, List, Optional, Tuple

#: The job writes the service's key order back: custom_id first, then result.type.
_HEAD = re.compile(rb'\{"custom_id":"([A-Za-z0-9_-]{1,64})","result":\{"type":"([a-z_]+)"')


def parse_line(line: bytes) -> Optional[Tuple[str, str]]:
    """``(custom_id, result type)`` of a result line, or None if it is not one."""
    match = _HEAD.match(line)
    if match is not None:
        custom_id, kind = match.groups()
        return custom_id.decode("ascii"), kind.decode("ascii")
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("custom_id"), str):
        return None
    result = value.get("result")
    kind = result.get("type") if isinstance(result, dict) else None
    return value["custom_id"], str(kind or "unknown")


class OutputTail:
    """Complete lines appended to ``path`` after ``offset``."""

    def __init__(self, path: str, offset: int) -> None:
        self.path = path
        self.offset = offset
        self._handle: Optional[IO[bytes]] = None
        self._identity: Optional[Tuple[int, int]] = None
        #: True once the file was replaced or truncated: nothing more is read.
        self.lost = False

    def read_lines(self) -> List[bytes]:
        handle = self._open()
        if handle is None:
            return []
        handle.seek(self.offset)
        data = handle.read()
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        return [line for line in data[:end].split(b"\n") if line.strip()]

    def _open(self) -> Optional[IO[bytes]]:
        if self.lost:
            return None
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        identity = (stat.st_dev, stat.st_ino)
        if self._handle is not None and (identity != self._identity or stat.st_size < self.offset):
            # Replaced or truncated under us (not by the job while it streams): lines read
            # from here on could belong to anything. Stop; the caller reports it.
            self.close()
            self.lost = True
            return None
        if self._handle is None:
            try:
                self._handle = open(self.path, "rb")
            except OSError:
                return None
            self._identity = identity
        return self._handle

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
