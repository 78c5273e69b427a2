"""A batch's requests recorded by a thread while the job writes the rest of its body.

The store keeps every request as sent (the ``requests`` table). Recorded inline, 100,000
requests held the job for about 0.7 s before its first create. The job hands each chunk
of request bytes to a :class:`RowWriter`, which records the chunks in order. When the
backend can cut a chunk's rows out of one JSON array in SQL (SQLite's ``json_each``:
``Database.requests_from_json``), a thread does it, and SQLite runs each chunk without
Python's lock, so the job goes on writing its body meanwhile. Otherwise each chunk is
recorded inline, as before.

Every other use of the connection waits until the writer is idle (``JobStore._guard``),
so a batch's intent is still recorded after all its requests, and a failure is raised
there, naming the store.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, ContextManager, Optional, Sequence, Tuple

from ._records import Records

#: A chunk to record: job id, pass, batch index, position of the first, the requests'
#: JSON, whether it replaces what the batch had recorded.
Chunk = Tuple[int, int, int, int, Sequence[bytes], bool]
#: A chunk ends at this many requests or this many bytes, whichever comes first ...
ROWS_PER_CHUNK = 1000
ROW_CHUNK_BYTES = 4 * 1024 * 1024
#: ... and this many wait for the thread: the writer holds at most about 20 MB.
QUEUED_CHUNKS = 4


class RowWriter:
    """Records chunks of requests in order: in a thread when ``threaded``."""

    def __init__(self, records: Records, guard: Callable[[], ContextManager[None]], *,
                 threaded: bool) -> None:
        self.records = records
        self.guard = guard
        self.threaded = threaded
        self._queue: queue.Queue[Optional[Chunk]] = queue.Queue(maxsize=QUEUED_CHUNKS)
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None

    def put(self, chunk: Chunk) -> None:
        if not self.threaded:
            self._record(chunk)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True,
                                            name="claudebatch-store-requests")
            self._thread.start()
        self._queue.put(chunk)

    def wait(self) -> None:
        """Return once every chunk put is recorded; raise what failed since the last wait
        (the chunks after a failure are dropped: the batch's intent is never recorded)."""
        if self._thread is not None:
            self._queue.join()
        error, self._error = self._error, None
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
            chunk = self._queue.get()
            try:
                if chunk is None:
                    return
                if self._error is None:
                    self._record(chunk)
            except BaseException as exc:  # raised in the job's thread, at its next wait
                self._error = exc
            finally:
                self._queue.task_done()

    def _record(self, chunk: Chunk) -> None:
        job_id, pass_number, index, start, pieces, first = chunk
        with self.guard():
            self.records.add_request_pieces(job_id, pass_number, index, start, pieces,
                                            first=first)

