"""A job's input fingerprint: resuming a name must mean resuming the same work.

Made in ``resume_state`` (after the job validated and split its input): a sha256
over the input's content, its request count and the options that decide the
split. The content is read again from the job's ``source`` when it can be: a
JSONL path (its bytes) or a re-iterable collection (each request as canonical
JSON). For rows and a template, the digest of the requests the job planned from
them (``context.input_digest``), whatever holds the rows. A one-shot iterator (a
generator) of requests cannot be read twice; the store then checks the custom_ids of
the batches it recorded instead (see ``store.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional

from claudebatch import JobContext, Request, Rows

CHUNK = 1 << 20


@dataclass(frozen=True)
class Fingerprint:
    kind: str  # "file", "items" or "stream"
    content: Optional[str]  # sha256 of the input's content; None for a stream
    total: int
    options: Dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Fingerprint:
        data = json.loads(text)
        return cls(kind=str(data["kind"]), content=data.get("content"),
                   total=int(data["total"]), options=dict(data.get("options") or {}))


def of_job(job: JobContext) -> Fingerprint:
    source = job.source
    options = dict(job.options)  # what decides how requests are cut into batches
    total = job.total_requests
    if isinstance(source, Rows):  # what the rows made: the requests, as planned
        return Fingerprint("rows", job.input_digest, total, options)
    if isinstance(source, (str, os.PathLike)):
        if "://" in os.fspath(source):  # an object store: read once, by the job
            return Fingerprint("stream", None, total, options)
        if not stat.S_ISREG(os.stat(source).st_mode):  # a pipe: read once, by the job
            return Fingerprint("stream", None, total, options)
        return Fingerprint("file", _file_digest(os.fspath(source)), total, options)
    if not isinstance(source, Iterator):
        return Fingerprint("items", _items_digest(source), total, options)
    return Fingerprint("stream", None, total, options)


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _items_digest(items: Any) -> str:
    digest = hashlib.sha256()
    for item in items:
        value = item.to_dict() if isinstance(item, Request) else \
            dict(item) if isinstance(item, Mapping) else repr(item)
        digest.update(json.dumps(value, sort_keys=True, separators=(",", ":"),
                                 ensure_ascii=False, default=str).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


#: The options every store has recorded since its first version.
_SPLIT_OPTIONS = frozenset({"max_batch_requests", "max_batch_bytes"})
#: Present only when reuse answered requests without sending them: absent means none.
_REUSE_OPTION = "reuse"


def difference(before: Fingerprint, now: Fingerprint) -> Optional[str]:
    """Why ``now`` is not the job recorded as ``before``; None if no difference is seen.

    Contents are compared only when both were read the same way; otherwise the
    caller checks the recorded custom_ids.
    """
    for key in sorted(set(before.options) | set(now.options)):
        if key not in before.options and key not in _SPLIT_OPTIONS | {_REUSE_OPTION}:
            continue  # recorded by an older version, which did not keep it
        if key == _REUSE_OPTION and before.options.get(key) != now.options.get(key):
            return ("the requests answered without sending them (reused answers, "
                    "duplicates) are not those of the job's first run, so the batches "
                    "would be cut differently: resume it with the reuse settings it started "
                    "with (a job started with --no-reuse, or by a version before reuse, "
                    "resumes with --no-reuse; otherwise the same --reuse-max-age); kept "
                    "answers it reused may also have been pruned since")
        if before.options.get(key) != now.options.get(key):
            how = "cut" if key in _SPLIT_OPTIONS else "sent"
            return (f"{key} was {before.options.get(key)!r} and is now {now.options.get(key)!r} "
                    f"(the batches would be {how} differently)")
    if before.total != now.total:
        return f"it had {before.total:,} requests and now has {now.total:,}"
    if before.kind == now.kind and before.content is not None and now.content is not None \
            and before.content != now.content:
        what = "file's content" if now.kind == "file" else "requests"
        return (f"the input {what} changed (sha256 {before.content[:12]}... before, "
                f"{now.content[:12]}... now)")
    return None
