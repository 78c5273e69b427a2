"""The requests of one batch on their way out: what ``before_submit`` sees.

A PendingBatch never needs all its requests in memory: it re-reads them from
its source each time it is iterated, applying the rewrites plugins registered
with :meth:`PendingBatch.transform`. The request body is written once to a
spooled temporary file (disk past a few MB), so an HTTP retry re-sends the same
bytes and a 250 MB batch costs little memory.
"""

from __future__ import annotations

import tempfile
from typing import IO, Callable, Iterable, Iterator, List, Optional, Sequence

from .limits import json_bytes
from .models import Request

Transform = Callable[[Request], Request]

#: Bodies up to this size stay in memory; larger ones go to a temporary file.
SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024


#: Compact JSON, as the request body carries it (the byte count the limits apply to).
dumps = json_bytes


class PendingBatch:
    """Requests about to become one batch. Iterable more than once; ``len()`` is known."""

    def __init__(self, source: Callable[[], Iterable[Request]], count: int, *, index: int = 0,
                 serialized: Optional[Callable[[], Iterable[bytes]]] = None):
        self._source = source
        self._serialized = serialized
        self._count = count
        self._transforms: List[Transform] = []
        #: Position of this batch within its job (0 for a single ``create``).
        self.index = index

    @classmethod
    def from_requests(cls, requests: Sequence[Request], *, index: int = 0) -> PendingBatch:
        return cls(lambda: requests, len(requests), index=index)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Request]:
        for request in self._source():
            for fn in self._transforms:
                request = fn(request)
            yield request

    def __repr__(self) -> str:
        return f"<PendingBatch index={self.index} requests={self._count}>"

    def transform(self, fn: Transform) -> None:
        """Rewrite every request on the way out; ``fn`` must return a Request, not mutate."""
        self._transforms.append(fn)

    def write_body(self) -> IO[bytes]:
        """The whole ``{"requests": [...]}`` body in a rewound, seekable file."""
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)
        spool.write(b'{"requests":[')
        if self._serialized is not None and not self._transforms:
            pieces: Iterable[bytes] = self._serialized()  # already JSON: copy, don't re-encode
        else:
            pieces = (dumps(request.to_dict()) for request in self)
        for i, piece in enumerate(pieces):
            if i:
                spool.write(b",")
            spool.write(piece)
        spool.write(b"]}")
        spool.seek(0)
        return spool
