"""The requests of one batch on their way out: what ``before_pass`` and ``before_submit`` see.

A PendingBatch never needs all its requests in memory. Its body is written once:
each request is read from the spool, rewritten by the plugins' transforms
(:meth:`PendingBatch.transform`), shown to their observers
(:meth:`PendingBatch.observe`) and serialized, in one pass; the body is then kept
in a temporary file (on disk past a few MB), so an HTTP retry re-sends the same
bytes and a 250 MB batch costs little memory. Iterating the batch reads its
source again (a plugin that must see every request observes instead).
"""

from __future__ import annotations

import tempfile
from typing import (
    IO,
    Any,
    Callable,
    FrozenSet,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from .limits import json_bytes
from .models import Request

Transform = Callable[[Request], Request]
Observer = Callable[[Request], None]
#: An observer given each request's JSON as the body carries it (``observe(raw=True)``).
RawObserver = Callable[[bytes], None]
Restart = Callable[[], None]

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
        self._observers: List[Tuple[Callable[[Any], None], Optional[Restart], bool]] = []
        self._body: Optional[IO[bytes]] = None
        self._on_disk = False
        #: Position of this batch within its pass (0 for a single ``create``).
        self.index = index
        #: Betas its requests need beyond the client's own (the extended-output beta for a
        #: ``max_tokens`` over the model's standard limit...): sent with this batch's create.
        self.betas: FrozenSet[str] = frozenset()

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

    @property
    def watched(self) -> bool:
        """True when a plugin rewrites or observes the requests (writing the body runs
        its functions): a dry run writes only such bodies."""
        return bool(self._transforms or self._observers)

    def transform(self, fn: Transform) -> None:
        """Rewrite every request on the way out; ``fn`` must return a Request, not mutate.

        Registered after the body was written (a ``before_submit`` inside a job), the
        body is written again at once, so the hooks after it see the final requests.
        """
        self._transforms.append(fn)
        self._rewrite_if_written()

    def observe(self, fn: Union[Observer, RawObserver], *, restart: Optional[Restart] = None,
                raw: bool = False) -> None:
        """Show ``fn`` every request as it goes into the body, after every transform.

        The body is written once, reading each request once: a plugin that must see
        every request (an estimate, a record of what was sent) observes, rather than
        iterating the batch again. If the body is written again (a transform added
        late), ``restart()`` is called first and ``fn`` sees every request anew.

        :param fn: called with each :class:`~claudebatch.Request`, in body order.
        :param restart: called before the body is written again, if it is.
        :param raw: call ``fn`` with the request's JSON instead, the very bytes the body
            carries: compact UTF-8, ``{"custom_id":...,"params":{...}}`` in that order. A
            plugin that records what was sent needs no parsing, and when no plugin
            rewrites the requests the body stays a copy of the job's spool (observing
            parsed requests makes the job decode and encode every request again).
        """
        self._observers.append((fn, restart, raw))
        self._rewrite_if_written()

    def _rewrite_if_written(self) -> None:
        if self._body is None:
            return
        self.discard_body()
        for _, restart, _ in self._observers:
            if restart is not None:
                restart()
        self.write_body(on_disk=self._on_disk)

    def write_body(self, *, on_disk: bool = False) -> IO[bytes]:
        """The whole ``{"requests": [...]}`` body in a rewound, seekable file.

        Written once (again only when a transform or an observer is added after).
        ``on_disk``: never hold it in memory (a job writes a whole pass's bodies first).
        """
        if self._body is not None:
            self._body.seek(0)
            return self._body
        spool: IO[bytes] = (tempfile.TemporaryFile() if on_disk else
                            tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES))
        spool.write(b'{"requests":[')
        if self._serialized is not None and not self._transforms:
            pieces: Iterable[bytes] = self._copied_pieces()  # already JSON: don't re-encode
        else:
            pieces = self._final_pieces()
        for i, piece in enumerate(pieces):
            if i:
                spool.write(b",")
            spool.write(piece)
        spool.write(b"]}")
        spool.seek(0)
        self._body, self._on_disk = spool, on_disk
        return spool

    def _copied_pieces(self) -> Iterator[bytes]:
        """No plugin rewrites the requests: each goes out as stored, copied, not serialized
        again. Parsed observers see it as the source gives it, raw ones its bytes."""
        assert self._serialized is not None
        parsed = [fn for fn, _, raw in self._observers if not raw]
        raw = [fn for fn, _, raw in self._observers if raw]
        if not parsed:
            if not raw:
                yield from self._serialized()
                return
            for piece in self._serialized():
                for fn in raw:
                    fn(piece)
                yield piece
            return
        for request, piece in zip(self._source(), self._serialized()):
            for fn in parsed:
                fn(request)
            for fn in raw:
                fn(piece)
            yield piece

    def _final_pieces(self) -> Iterator[bytes]:
        parsed = [fn for fn, _, raw in self._observers if not raw]
        raw = [fn for fn, _, raw in self._observers if raw]
        for request in self:
            for fn in parsed:
                fn(request)
            piece = dumps(request.to_dict())
            for fn in raw:
                fn(piece)
            yield piece

    def discard_body(self) -> None:
        """Drop the written body (once the batch is created, or vetoed)."""
        if self._body is not None:
            self._body.close()
            self._body = None
