"""Writing result lines from the store to a JSONL file, atomically.

Used by ``export`` (the whole job, without the service) and on resume (the
results of the batches that had finished, before the job appends the rest).
"""

from __future__ import annotations

import os
import stat
import tempfile
from typing import Iterable


def write_lines(path: str, lines: Iterable[bytes]) -> int:
    """Replace ``path`` with ``lines`` (one JSON object each); return how many.

    Written to a temporary file beside it and renamed, so a reader (or a crash)
    never sees half a file. A new file gets mode 0600 (it holds the answers);
    an existing one keeps its mode.
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path) or "."
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = 0o600
    fd, tmp = tempfile.mkstemp(prefix=".claudebatch-", suffix=".tmp", dir=directory)
    count = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for line in lines:
                out.write(line)
                out.write(b"\n")
                count += 1
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return count
