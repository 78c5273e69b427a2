"""What the shared store layer needs of a database: SQL with ``?`` marks, transactions.

A backend (SQLite in claudebatch-sqlite, PostgreSQL in claudebatch-postgres)
subclasses :class:`Database`; the records, the locks, the hooks, the commands and
the workers are written once against it. Its SQL is the subset both speak
(``INSERT ... ON CONFLICT``, ``RETURNING``); the few places they differ are
attributes here, not branches in the callers.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from typing import Any, ContextManager, Iterable, Iterator, Optional, Sequence, Tuple

_HEX_HEAD = re.compile("[0-9a-f]{16}")


def answer_key_id(key: str) -> int:
    """The signed 64-bit integer a store looks an answer key up by: the key's first 16
    hex digits (8 bytes of its sha256) as two's complement; a key of another form (none
    is made so, but a store may hold one) by the first 8 bytes of its MD5, as
    PostgreSQL's ``md5()`` gives them.

    Answer keys are random: each commit of a job's answers writes every index page they
    touch, and an index of 8-byte integers has a fifth of the pages the 64-character
    keys needed (100,000 answers into a store holding 1,000,000: half the CPU, a third of
    the log; ``benchmarks/answer_index.py``). Two keys
    sharing an id is a 1 in 2^64 chance per pair; a store that keeps one answer per id
    then keeps the first, and the other request is bought again when it comes.
    """
    head = key[:16]
    if _HEX_HEAD.fullmatch(head):
        value = int(head, 16)
    else:
        value = int.from_bytes(hashlib.md5(key.encode("utf-8")).digest()[:8], "big")
    return value - (1 << 64) if value >= (1 << 63) else value


class Database:
    """One connection to one store. Outside a transaction, every statement commits.

    ``transaction()`` is exclusive among writers of the store (SQLite's ``BEGIN
    IMMEDIATE``; a transaction-scoped advisory lock on PostgreSQL), so what the
    store decides under it (a job's lock, an intent) no other process decides at
    once. ``claim_transaction()`` is a plain transaction for ``FOR UPDATE SKIP
    LOCKED`` claims that many workers make side by side.
    """

    #: ``"sqlite"`` or ``"postgresql"``: shown in messages.
    kind: str = ""
    #: Where the store is, for messages: a path, or a DSN without its password.
    name: str = ""
    #: The column that orders result rows as they were stored.
    order_column: str = "rowid"
    #: An ``INSERT`` of ``requests`` rows cut out of one JSON array of requests as a body
    #: carries them, with the parameters job id, pass, batch index, first position and the
    #: array's text; each row's ``params`` the request's own JSON text. None: the rows are
    #: parsed in Python. (A backend with it records them in a thread: ``_rowwriter``.)
    requests_from_json: Optional[str] = None

    def claim_suffix(self, table: str = "", *, skip: bool = False) -> str:
        """What ends a ``SELECT`` that claims rows (of ``table``, an alias) other workers may
        be claiming; ``skip``: pass over rows another has claimed rather than wait."""
        return ""

    def another(self) -> Database:
        """A second connection to the same store (for a thread of its own)."""
        raise NotImplementedError

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; the cursor (``fetchone``, ``fetchall``, iteration,
        ``rowcount``)."""
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[Any]:
        """Rows of a read of any size, in bounded memory, while this connection goes on
        being used (the store writes as a job replays what it read)."""
        yield from self.execute(sql, params)

    def begin(self, *, exclusive: bool, durable: bool) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def rollback(self) -> None:
        """Undo the transaction under way, if one is (and whatever ``begin`` set)."""
        raise NotImplementedError

    @property
    def in_transaction(self) -> bool:
        raise NotImplementedError

    def guard(self) -> ContextManager[None]:
        """Turn the driver's errors into :class:`~claudebatch.store.StoreError` naming the
        store and what to do."""
        return contextlib.nullcontext()

    def files(self) -> Tuple[str, ...]:
        """The files the store lives in (an output must never be one of them)."""
        return ()

    def close(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[Database]:
        """An exclusive transaction; ``durable``: its commit survives a power cut."""
        with self._transaction(exclusive=True, durable=durable):
            yield self

    @contextlib.contextmanager
    def claim_transaction(self) -> Iterator[Database]:
        with self._transaction(exclusive=False, durable=True):
            yield self

    @contextlib.contextmanager
    def _transaction(self, *, exclusive: bool, durable: bool) -> Iterator[None]:
        self.begin(exclusive=exclusive, durable=durable)
        try:
            yield
            self.commit()
        except BaseException:
            self.rollback()
            raise
