"""Validated requests on disk, one serialized JSON object a line.

The file has no name from the start (an unlinked temporary file): a process
killed at any moment leaves no copy of the prompts behind. Reads are
positional (``os.pread``), so any number of readers share it without moving
where the next request is written.
"""

from __future__ import annotations

import os
import tempfile
from typing import IO, Iterator, Tuple

from . import _json
from .models import Request

READ_SIZE = 1024 * 1024
WRITE_SIZE = 1024 * 1024
_ID_PREFIX = b'{"custom_id":"'


def custom_id_of(line: bytes) -> str:
    """The custom_id of a spooled line: written first, and it holds no quotes."""
    return line[len(_ID_PREFIX):line.index(b'"', len(_ID_PREFIX))].decode("ascii")


def request_of(line: bytes) -> Request:
    value = _json.loads(line)
    return Request(value["custom_id"], value["params"])


class Spool:
    """Append serialized requests; read back any range of them by byte offsets."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="claudebatch-spool-",
                                                       buffering=0)
        self._end = 0
        # appended, not written yet: copied in, not kept as given (orjson's bytes hold a
        # 4 KB buffer each, whatever their length)
        self._buffer = bytearray()

    def append(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        buffer += b"\n"
        if len(buffer) >= WRITE_SIZE:
            self.flush()
        self._end += len(data) + 1

    def flush(self) -> None:
        if self._buffer:
            with memoryview(self._buffer) as data:
                while data:
                    written = self._file.write(data)
                    if not written:
                        raise OSError("the spool file took no bytes")
                    data = data[written:]
            self._buffer = bytearray()

    def tell(self) -> int:
        """Where the next request will be written: the end of what is stored."""
        return self._end

    def lines(self, start: int, end: int) -> Iterator[bytes]:
        """The serialized requests stored between two offsets. A range already on disk is
        read without touching what is appended meanwhile (another thread may read it
        while this one appends, as the store's row thread does)."""
        if end > self._end - len(self._buffer):
            self.flush()
        fd = self._file.fileno()
        offset, head = start, []  # head: the start of a line longer than one read
        while offset < end:
            chunk = os.pread(fd, min(READ_SIZE, end - offset), offset)
            if not chunk:
                break
            offset += len(chunk)
            pieces = chunk.split(b"\n")
            if len(pieces) == 1:
                head.append(chunk)
                continue
            if head:
                head.append(pieces[0])
                pieces[0] = b"".join(head)
                head = []
            last = pieces.pop()
            if last:
                head.append(last)
            yield from pieces
        if head:
            yield b"".join(head)

    def request_at(self, offset: int) -> Request:
        """The request whose line starts at ``offset``."""
        return request_of(next(self.lines(offset, self._end)))

    def requests(self, start: int, end: int) -> Iterator[Request]:
        for line in self.lines(start, end):
            yield request_of(line)

    def custom_ids(self, start: int, end: int) -> Iterator[Tuple[str, int, bytes]]:
        """``(custom_id, offset, line)`` for each request, without parsing its params."""
        offset = start
        for line in self.lines(start, end):
            yield custom_id_of(line), offset, line
            offset += len(line) + 1

    def close(self) -> None:
        self._file.close()
