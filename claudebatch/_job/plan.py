"""Planning a pass: validate every request, spool it once, cut the batches within the limits.

Nothing is sent unless the whole input is valid; the spool holds each request
serialized once, and each planned batch is a slice of it.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

import attrs

from .. import _json
from .._inputs import RequestValidator, _where, iter_source_numbered
from .._pending import dumps
from .._spool import Spool
from ..models import Request
from ..rows import Rows, RowsSpool
from .reuse import ReusePlan

#: Bytes of ``{"requests":[`` and ``]}`` around the requests of a body.
BODY_OVERHEAD = len(b'{"requests":[') + len(b"]}")
#: Bytes of serialized requests gathered before they are fed to the job's digest.
DIGEST_CHUNK = 1 << 20


@attrs.define
class PlannedBatch:
    """A slice of the spool that becomes one batch."""

    index: int
    start: int
    end: int
    count: int
    body_bytes: int
    #: The index, among the requests the pass sends, of this batch's first request.
    first: int = 0


def plan_requests(source: Any, *, max_requests: int, max_bytes: int, job_name: str,
                  watchers: Sequence[Callable[[Request], None]] = (),
                  validator: Optional[RequestValidator] = None, grow_each: int = 0,
                  reuse: Optional[ReusePlan] = None, rows: Optional[RowsSpool] = None,
                  digest: Optional[Any] = None,
                  ) -> Tuple[Spool, List[PlannedBatch]]:
    """Validate every request and cut the batches; raise before anything is sent.

    ``watchers`` see each valid request to be sent as it is spooled
    (``JobContext.on_planned``); ``validator`` checks against the client's API version
    and betas; ``grow_each``: bytes each request may gain from plugins' rewrites,
    counted when cutting; ``reuse`` holds back the requests answered without sending;
    ``rows`` keeps the rows (or custom_ids) in order, for a table; ``digest`` (a
    hashlib object) is fed every valid request as serialized, sent or not.
    """
    validator = validator if validator is not None else RequestValidator()
    hashed = bytearray()  # fed to ``digest`` a megabyte at a time: one call a request costs more
    spool = Spool()
    plans: List[PlannedBatch] = []
    start = spool.tell()
    count = sent = 0
    body = BODY_OVERHEAD
    limit = max_bytes

    def add(request: Request, data: bytes) -> None:
        nonlocal start, count, body, sent
        size = len(data) + grow_each
        for watch in watchers:
            watch(request)
        if count and (count >= max_requests or body + 1 + size > limit):
            plans.append(PlannedBatch(len(plans), start, spool.tell(), count, body,
                                      sent - count))
            start, count, body = spool.tell(), 0, BODY_OVERHEAD
        body += size + (1 if count else 0)
        count += 1
        sent += 1
        spool.append(data)

    items: Iterable[Tuple[str, int, Any, bool]]
    if isinstance(source, Rows):
        items = _numbered(source.requests(rows))  # unique custom_ids by construction
        validator.track_ids = False
        ids = None
    else:
        items = iter_source_numbered(source, max_line_bytes=limit)
        ids = rows
    direct = _json.fast_dumps
    check = validator.check_numbered
    for head, number, item, clean in items:
        request = check(item, head, number, clean)
        if request is None:
            continue
        if ids is not None:
            ids.add_id(request.custom_id)
        if type(item) is dict and item.get("params") is request.params \
                and next(iter(item)) == "custom_id":  # the request as sent: no copy to build
            data = (direct if direct is not None and clean
                    else dumps)(item)  # a line read clean holds no float written otherwise
        else:
            data = dumps(request.to_dict())
        size = len(data) + grow_each
        if BODY_OVERHEAD + size > limit:
            validator.add_problem(
                f"{_where(head, number)} (custom_id {request.custom_id!r})",
                f"the request alone is {size:,} bytes; a batch body holds at most "
                f"{limit:,}")
            continue
        if validator.problem_count:
            continue  # keep checking, stop writing: nothing will be sent
        if digest is not None:
            hashed += data
            hashed += b"\n"
            if len(hashed) >= DIGEST_CHUNK:
                digest.update(hashed)
                hashed.clear()
        if reuse is None:
            add(request, data)
        else:
            for ready in reuse.feed(request, data, clean):
                add(*ready)
    if digest is not None:
        digest.update(hashed)
    if reuse is not None and not validator.problem_count:
        for ready in reuse.flush():
            add(*ready)
    held = reuse.held_count if reuse is not None else 0
    if validator.problem_count == 0 and sent == 0 and held == 0:
        name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else \
            source.name if isinstance(source, Rows) else "input"
        validator.add_problem(str(name), "there are no requests")
    if validator.problem_count:
        spool.close()
        validator.raise_if_problems(f"job {job_name}: refused before sending")
    if count:
        plans.append(PlannedBatch(len(plans), start, spool.tell(), count, body, sent - count))
    return spool, plans


def _numbered(items: Iterable[Tuple[str, Any]]) -> Iterator[Tuple[str, int, Any, bool]]:
    """``(where, item)`` pairs as :func:`iter_source_numbered` gives them: a ``where``
    whole is a head with no number (-1)."""
    for where, item in items:
        yield where, -1, item, False
