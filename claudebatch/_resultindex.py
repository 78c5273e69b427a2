"""Where each custom_id's line is in a results file: an index on disk, not in memory.

Results come in any order; a table lists them in the input's. Joining a million
rows through a dict would hold a million strings, so the offsets go into a
SQLite file in a private temporary folder, and each chunk of rows looks its
lines up together. The last line of a custom_id wins, as in the output.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from typing import Dict, Iterator, List, Sequence, Tuple

from ._fs import temporary_folder

_PREFIX = b'{"custom_id":"'
LOOKUP = 500  # ids per query: below every SQLite's limit on parameters


def _lines(path: str) -> Iterator[Tuple[str, int, int]]:
    """``(custom_id, offset, length)`` of each line of a results file."""
    offset = 0
    with open(path, "rb") as handle:
        for line in handle:
            length = len(line)
            if line.startswith(_PREFIX):
                end = line.find(b'"', len(_PREFIX))
                custom_id = line[len(_PREFIX):end].decode("utf-8", "replace")
                if "\\" in custom_id:
                    custom_id = str(json.loads(line)["custom_id"])
            elif line.strip():
                custom_id = str(json.loads(line).get("custom_id"))
            else:
                offset += length
                continue
            yield custom_id, offset, length
            offset += length


class ResultIndex:
    """custom_id -> its line in ``path``; ``close()`` removes the index."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._folder = temporary_folder("index")
        self._db = sqlite3.connect(os.path.join(self._folder, "index.db"))
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE line (custom_id TEXT PRIMARY KEY, start INTEGER, "
                         "length INTEGER) WITHOUT ROWID")
        rows = _lines(path)
        while True:
            part = [row for _, row in zip(range(10_000), rows)]
            if not part:
                break
            self._db.executemany("INSERT OR REPLACE INTO line VALUES (?, ?, ?)", part)
        self._db.commit()
        self._handle = open(path, "rb")

    def find(self, custom_ids: Sequence[str]) -> Dict[str, bytes]:
        """The lines of those of ``custom_ids`` that have one."""
        found: Dict[str, bytes] = {}
        fd = self._handle.fileno()
        for start in range(0, len(custom_ids), LOOKUP):
            part: List[str] = list(custom_ids[start:start + LOOKUP])
            marks = ",".join("?" * len(part))
            for custom_id, offset, length in self._db.execute(
                    f"SELECT custom_id, start, length FROM line WHERE custom_id IN ({marks})",
                    part):
                found[custom_id] = os.pread(fd, length, offset)
        return found

    def close(self) -> None:
        self._handle.close()
        self._db.close()
        shutil.rmtree(self._folder, ignore_errors=True)
