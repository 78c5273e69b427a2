"""Which job and which batch a log record is about, in every record: ``%(job)s``, ``%(batch)s``.

The core marks the job it runs and the batch it submits or collects (context
variables: no threads to manage). :class:`LogContext` is a logging filter that
copies them onto each record passing a handler, so a format string or a JSON
formatter can show them, whatever logger (core or plugin) made the record::

    handler = logging.StreamHandler()
    handler.addFilter(claudebatch.LogContext())
    handler.setFormatter(logging.Formatter("%(levelname)s [%(job)s %(batch)s] %(message)s"))
    logging.getLogger("claudebatch").addHandler(handler)

``claudebatch -v`` sets this up on stderr.
"""

from __future__ import annotations

import contextlib
import logging
from contextvars import ContextVar
from typing import Iterator, Optional

#: The job being run (its name), or "-".
CURRENT_JOB: ContextVar[str] = ContextVar("claudebatch_job", default="-")
#: The batch being submitted or collected (its id), or "-".
CURRENT_BATCH: ContextVar[str] = ContextVar("claudebatch_batch", default="-")

FORMAT = "%(asctime)s %(levelname)s %(name)s [job=%(job)s batch=%(batch)s] %(message)s"


class LogContext(logging.Filter):
    """Adds ``job`` and ``batch`` to every record it sees (it never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "job"):
            record.job = CURRENT_JOB.get()
        if not hasattr(record, "batch"):
            record.batch = CURRENT_BATCH.get()
        return True


@contextlib.contextmanager
def about(*, job: Optional[str] = None, batch: Optional[str] = None) -> Iterator[None]:
    """Mark what the records made inside the block are about."""
    tokens = [(var, var.set(value)) for var, value in ((CURRENT_JOB, job),
                                                       (CURRENT_BATCH, batch))
              if value is not None]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``-v`` installs: one at most, however often the CLI runs in a process."""


def log_to_stderr(verbosity: int) -> None:
    """``-v``: INFO records of claudebatch and its plugins on stderr; ``-vv``: DEBUG."""
    root = logging.getLogger("claudebatch")
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    handler = _StderrHandler()
    handler.addFilter(LogContext())
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)
