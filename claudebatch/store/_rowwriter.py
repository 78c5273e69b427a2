"""A batch's requests recorded while its create goes out.

The store keeps every request as sent (the ``requests`` table). Recorded inline, 100,000
requests held the job for about 0.7 s before its first create. Where the backend can cut
a chunk's rows out of one JSON array in SQL (SQLite's ``json_each``:
``Database.requests_from_json``), SQLite does it without Python's lock, so a thread can:

* while the body is written, each request's bytes go to a temporary file (no parsing),
  one :class:`~claudebatch._spool.Spool` for the whole pass (a pass writes every body
  before its first create, so a file per batch held a descriptor per batch, twice the
  bodies' own: a pass of 600 batches ran out of a 1,024-descriptor limit);
* the batch's intent is recorded (durably, as before any create);
* the thread records the file's requests while the create is on the wire, and every
  other use of the connection waits for it (``JobStore._guard``): the batch's id, its
  results, the next batch's intent.

A process killed before the thread is done leaves the batch with fewer rows than its
intent counts: the run that resumes it records them again from the job's input before
any of its results (``JobStore.before_pass``). A backend without that SQL records each
chunk inline as the body is written, before the intent, as before.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, ContextManager, List, Optional, Tuple

from .._spool import Spool
from ._records import Records

#: A chunk ends at this many requests or this many bytes, whichever comes first.
ROWS_PER_CHUNK = 1000
ROW_CHUNK_BYTES = 4 * 1024 * 1024

Task = Callable[[], None]


class RowWriter:
    """Runs the store's request-recording tasks in order: in a thread when ``threaded``."""

    def __init__(self, *, threaded: bool) -> None:
        self.threaded = threaded
        self._queue: queue.Queue[Optional[Task]] = queue.Queue()
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None

    def put(self, task: Task) -> None:
        if not self.threaded:
            task()
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True,
                                            name="claudebatch-store-requests")
            self._thread.start()
        self._queue.put(task)

    def settle(self) -> Optional[BaseException]:
        """Wait until every task put is done; what failed since the last settle (the
        tasks after a failure are dropped)."""
        if self._thread is not None:
            self._queue.join()
        error, self._error = self._error, None
        return error

    def wait(self) -> None:
        """:meth:`settle`, raising what failed."""
        error = self.settle()
        if error is not None:
            raise error

    def stop(self) -> None:
        """End the thread once it is idle (what failed is dropped: the job has ended)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()
        self._error = None

    def _loop(self) -> None:
        while True:
            task = self._queue.get()
            try:
                if task is None:
                    return
                if self._error is None:
                    task()
            except BaseException as exc:  # raised in the job's thread, at its next wait
                self._error = exc
            finally:
                self._queue.task_done()


class BatchRows:
    """One batch's requests as the job writes its body (``PendingBatch.observe(raw=True)``).

    With the pass's ``spool`` (a threaded writer), kept there until :meth:`record` hands
    them to the thread. Without one, recorded a chunk at a time as they come.
    """

    def __init__(self, writer: RowWriter, records: Records,
                 guard: Callable[[], ContextManager[None]], job_id: int, pass_number: int,
                 index: int, spool: Optional[Spool] = None) -> None:
        self.writer = writer
        self.records = records
        self.guard = guard
        self.job_id = job_id
        self.pass_number = pass_number
        self.index = index
        self.spool = spool
        self.count = 0
        self.first = True  # the next chunk replaces what the batch had recorded
        self.pieces: List[bytes] = []
        self.bytes = 0
        #: ``(start, end)`` of the spool's stretches holding this batch's requests not
        #: handed over yet (one, unless another batch's body was written in between).
        self.stretches: List[Tuple[int, int]] = []

    @property
    def deferred(self) -> bool:
        """Recorded by the thread once handed over, not as they come."""
        return self.spool is not None

    def restart(self) -> None:
        """The body is written again: what was recorded of it is replaced."""
        self.writer.wait()  # what was handed over is recorded
        self.count, self.first, self.pieces, self.bytes, self.stretches = 0, True, [], 0, []

    def add(self, data: bytes) -> None:
        """One request, as its JSON in the body (no parsing, no encoding again)."""
        self.count += 1
        if self.spool is not None:
            start = self.spool.tell()
            self.spool.append(data)
            if self.stretches and self.stretches[-1][1] == start:
                self.stretches[-1] = (self.stretches[-1][0], self.spool.tell())
            else:
                self.stretches.append((start, self.spool.tell()))
            return
        self.pieces.append(data)
        self.bytes += len(data)
        if len(self.pieces) >= ROWS_PER_CHUNK or self.bytes >= ROW_CHUNK_BYTES:
            self._put(self.count - len(self.pieces), self.pieces)
            self.pieces, self.bytes = [], 0

    def record(self) -> None:
        """Hand over what is not recorded yet (once; again after a restart)."""
        if self.spool is not None:
            stretches, self.stretches = self.stretches, []
            if stretches or self.first:
                self.first = False
                self.spool.flush()  # here: the thread then reads only what is on disk
                self.writer.put(lambda: self._record_spooled(stretches))
            return
        if self.pieces or self.first:
            self._put(self.count - len(self.pieces), self.pieces)
            self.pieces, self.bytes = [], 0

    def _put(self, start: int, pieces: List[bytes]) -> None:
        first, self.first = self.first, False
        self.writer.put(lambda: self._record(start, pieces, first))

    def _record(self, start: int, pieces: List[bytes], first: bool) -> None:
        with self.guard():
            self.records.add_request_pieces(self.job_id, self.pass_number, self.index, start,
                                            pieces, first=first)

    def _record_spooled(self, stretches: List[Tuple[int, int]]) -> None:
        """In the thread: the spooled requests, a chunk at a time (the first replaces)."""
        assert self.spool is not None
        first, start, pieces, size = True, 0, [], 0
        for stretch_start, stretch_end in stretches:
            for line in self.spool.lines(stretch_start, stretch_end):
                pieces.append(line)
                size += len(line) + 1
                if len(pieces) >= ROWS_PER_CHUNK or size >= ROW_CHUNK_BYTES:
                    self._record(start, pieces, first)
                    first, start, pieces, size = False, start + len(pieces), [], 0
        if pieces or first:
            self._record(start, pieces, first)
