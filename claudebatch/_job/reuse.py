"""Which requests of a pass are answered without being sent, decided as the pass is planned.

Each valid request gets its :func:`~claudebatch.reuse.answer_key`. The first request
of a key is sent (the leader); a later one with the same key is a duplicate and gets
the leader's answer; a key a store answered (``find_answers``) is not sent at all.
Requests not sent go to a spool of their own (joins and resubmissions find them),
the answers to write to another, so memory holds only a small index per request.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from .. import _json
from .._spool import Spool
from ..context import JobContext
from ..errors import ReuseError
from ..models import Request
from ..reuse import StoredAnswer, _KeyHasher

#: Keys looked up per ``find_answers`` call.
LOOKUP_CHUNK = 512
DIGEST = 32  # bytes of a sha256


#: Bytes of a digest that index it (checked against the full digest).
SHORT = 8


class ReusePlan:
    """One pass's decisions: keys of the requests sent, duplicates, answers reused.

    ``lookup``: ask the stores (``find_answers``); ``dedupe``: send identical requests
    once; keys are computed whenever either is on or a store keeps answers.
    """

    def __init__(self, context: JobContext, *, lookup: bool, dedupe: bool,
                 max_age: Optional[float], betas: Sequence[str],
                 declared: Mapping[str, Any], service: Optional[str] = None) -> None:
        self.context = context
        self.hook = context.client.hook
        self.lookup = lookup
        self.dedupe = dedupe
        self.max_age = max_age
        self.betas = tuple(betas)
        self.declared = dict(declared)
        self.service = service
        self._digest = _KeyHasher(betas, declared, service).digest
        #: sha256 digests of the requests sent, in the order they are spooled.
        self.keys = bytearray()
        self._sent: Dict[bytes, int] = {}  # short key -> index of the request sent for it
        #: index of a request sent -> custom_ids of the identical requests it answers.
        self.followers: Dict[int, List[str]] = {}
        # short key -> (digest, offset of its answer)
        self._reused_at: Dict[bytes, Tuple[bytes, int]] = {}
        #: Requests not sent (reused or duplicates), as spooled requests.
        self.held = Spool()
        #: The answers to write for reused requests: a JSON header (for whom, bought
        #: where), a tab, the line as kept.
        self.answers = Spool()
        self.reused = 0
        self.duplicates = 0
        self._decisions = hashlib.sha256()
        self._buffer: List[Tuple[Request, bytes, bytes]] = []

    @property
    def held_count(self) -> int:
        return self.reused + self.duplicates

    @property
    def decisions(self) -> str:
        """A digest of what was not sent and why: a resumed run must decide the same."""
        return self._decisions.hexdigest()[:16]

    def key_of(self, index: int) -> str:
        """The answer key (hex) of the ``index``-th request sent."""
        return self.keys[index * DIGEST:(index + 1) * DIGEST].hex()

    def feed(self, request: Request, data: bytes, clean: bool = False
             ) -> List[Tuple[Request, bytes]]:
        """Take one valid request; return those now known to be sent, in input order.
        ``clean``: its params were read clean (see :func:`claudebatch.reuse._answer_digest`)."""
        self._buffer.append((request, data, self._digest(request.params, clean)))
        if self.lookup and len(self._buffer) < LOOKUP_CHUNK:
            return []
        return self.flush()

    def flush(self) -> List[Tuple[Request, bytes]]:
        """Decide every request taken so far."""
        buffer, self._buffer = self._buffer, []
        if not buffer:
            return []
        sent, reused_at, known = self._sent, self._reused_at, self._known
        found: Mapping[str, StoredAnswer] = {}
        if self.lookup:  # the keys not decided yet (a short key never seen: none)
            wanted = sorted({digest.hex() for _, _, digest in buffer
                             if (digest[:SHORT] not in sent and digest[:SHORT] not in reused_at)
                             or known(digest) is None})
            if wanted:
                found = self.hook.find_answers(keys=wanted, max_age=self.max_age,
                                               context=self.context) or {}
        send: List[Tuple[Request, bytes]] = []
        keys, dedupe = self.keys, self.dedupe
        for request, data, digest in buffer:
            short = digest[:SHORT]
            if short in sent or short in reused_at:  # decided before, or earlier in the chunk
                seen = known(digest)
                if seen is not None:
                    self._hold(request, data, seen)
                    continue
            answer = found.get(digest.hex()) if found else None
            if answer is not None:
                self._reuse(request, data, digest, answer)
                continue
            if dedupe:
                sent.setdefault(short, len(keys) // DIGEST)
            keys += digest
            send.append((request, data))
        return send

    def _known(self, digest: bytes) -> Optional[Tuple[str, Any]]:
        """("sent", index) or ("reused", offset) for a key already decided, else None."""
        short = digest[:SHORT]
        index = self._sent.get(short)
        if index is not None and self.keys[index * DIGEST:(index + 1) * DIGEST] == digest:
            return "sent", index
        reused = self._reused_at.get(short)
        if reused is not None and reused[0] == digest:
            return "reused", reused[1]
        return None

    def _hold(self, request: Request, data: bytes, known: Tuple[str, Any]) -> None:
        kind, where = known
        self.held.append(data)
        if kind == "sent":
            self.followers.setdefault(where, []).append(request.custom_id)
            self.duplicates += 1
            self._decide(request.custom_id, f"duplicate of request {where}")
            return
        header, line = next(self.answers.lines(where, self.answers.tell())).split(b"\t", 1)
        bought = json.loads(header)
        bought[0] = request.custom_id
        self.answers.append(_dumps(bought) + b"\t" + line)
        self.reused += 1
        self._decide(request.custom_id, f"{bought[1]}/{bought[2]}")

    def _reuse(self, request: Request, data: bytes, digest: bytes,
               answer: StoredAnswer) -> None:
        line = answer.line.strip()
        if not (line.startswith(b"{") and line.endswith(b"}") and b'"result"' in line):
            raise ReuseError(f"the store answered key {digest.hex()[:16]}... with a line that "
                             "is not a result (the store is damaged): nothing was sent; run "
                             "again with --no-reuse, or prune the store's answers")
        self._reused_at[digest[:SHORT]] = (digest, self.answers.tell())
        # the answer as kept, behind who it is for and where it was bought (parsed once,
        # when written)
        header = [request.custom_id, answer.job, answer.custom_id, answer.batch_id,
                  answer.batch_created_at, answer.stored_at]
        self.answers.append(_dumps(header) + b"\t" + line)
        self.held.append(data)
        self.reused += 1
        self._decide(request.custom_id, answer.source)

    def _decide(self, custom_id: str, why: str) -> None:
        self._decisions.update(f"{custom_id}\0{why}\n".encode())

    def iter_answers(self) -> Iterator[Tuple[Dict[str, Any], StoredAnswer]]:
        """``(line value, where it was bought)`` for each reused request, in input order."""
        for record in self.answers.lines(0, self.answers.tell()):
            header, line = record.split(b"\t", 1)
            custom_id, job, source_id, batch_id, created_at, stored_at = json.loads(header)
            bought = StoredAnswer(line=b"", job=job, custom_id=source_id, batch_id=batch_id,
                                  batch_created_at=created_at, stored_at=stored_at)
            try:
                value = _json.loads(line)
            except ValueError:
                value = None
            if not isinstance(value, dict) or not isinstance(value.get("result"), dict):
                raise ReuseError(f"the answer kept for {bought.source} is not a result line "
                                 "(the store is damaged): run again with --no-reuse")
            value["custom_id"] = custom_id
            value["reused_from"] = bought.source
            yield value, bought

    def close(self) -> None:
        self.held.close()
        self.answers.close()


def _dumps(value: Any) -> bytes:
    return _json.dumps(value)
