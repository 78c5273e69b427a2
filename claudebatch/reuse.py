"""Never pay twice: the key an answer is stored under, and what a store hands back.

A succeeded answer is kept under :func:`answer_key` of the request that bought it:
a hash of everything that shapes the answer (the model and every parameter, with
the betas and the options plugins declared) and of nothing that does not (key
order, whitespace, the custom_id, ``cache_control`` marks). A later request with
the same key is answered from the store instead of being sent (``find_answers``),
and identical requests inside one job are sent once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, Iterable, List, Mapping, Optional, Tuple

import attrs

from . import _json
from .models import MessageBatch, RequestCounts

#: Bumped if the canonical form ever changes, so old keys never match new requests.
KEY_VERSION = "claudebatch-answer-key-1"

#: Where ``cache_control`` marks may sit: they change what is cached, not the answer.
_BLOCK_LISTS = ("system", "tools")


def _strip_cache_marks(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """``params`` without ``cache_control`` on the request, its system and tool
    entries and its message content blocks (nested tool results too): a copy only
    where one is found."""
    def block(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        content = value.get("content")
        if "cache_control" not in value and not isinstance(content, list):
            return value
        out = {k: v for k, v in value.items() if k != "cache_control"}
        if isinstance(content, list):
            out["content"] = [block(item) for item in content]
        return out

    out = dict(params)
    out.pop("cache_control", None)
    for name in _BLOCK_LISTS:
        if isinstance(out.get(name), list):
            out[name] = [block(item) for item in out[name]]
    if isinstance(out.get("messages"), list):
        out["messages"] = [block(message) for message in out["messages"]]
    return out


def _marked(params: Mapping[str, Any]) -> bool:
    """Whether ``params`` may hold a ``cache_control`` mark (a cheap look, without the
    copy :func:`_strip_cache_marks` makes): strings hold none."""
    if "cache_control" in params:
        return True
    for name in _BLOCK_LISTS:
        if isinstance(params.get(name), list):
            return True
    messages = params.get("messages")
    if not isinstance(messages, list):
        return False
    for message in messages:
        if not isinstance(message, dict) or "cache_control" in message \
                or not isinstance(message.get("content"), str):
            return True
    return False


def _answer_digest(params: Mapping[str, Any], *, betas: Iterable[str] = (),
                   declared: Optional[Mapping[str, Any]] = None,
                   service: Optional[str] = None, clean: bool = False) -> bytes:
    """:func:`answer_key` as the 32 bytes of the digest. ``clean``: ``params`` were read
    from a line orjson read as the strict reader would (no NaN, no float it writes
    otherwise; the planner knows): with no ``declared`` options, orjson's sorted text
    is then the canonical form without a check."""
    # a mapping other than a dict is copied (as _strip_cache_marks does): JSON writes dicts
    stripped = params if type(params) is dict and not _marked(params) \
        else _strip_cache_marks(params)
    parts: List[Any] = [KEY_VERSION, stripped, sorted(set(betas)), declared or {}]
    if service is not None:
        parts.append({"service": service})
    if clean and not declared and _json.fast_dumps_sorted is not None:
        return hashlib.sha256(_json.fast_dumps_sorted(parts)).digest()
    canonical = _json.dumps_sorted(parts)
    if b"null" in canonical:  # orjson writes NaN as null: json says whether one is there
        canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False, allow_nan=False).encode("utf-8")
    return hashlib.sha256(canonical).digest()


class _KeyHasher:
    """The answer keys of one job's requests: what is the same in every key (the version,
    the betas, the options, the service) is written and hashed once, not per request.

    The bytes hashed are :func:`_answer_digest`'s: a JSON list is its items' JSON
    between commas, so the request's sorted JSON goes between a hashed head and a tail.
    """

    def __init__(self, betas: Iterable[str] = (), declared: Optional[Mapping[str, Any]] = None,
                 service: Optional[str] = None) -> None:
        self.betas = sorted(set(betas))
        self.declared = dict(declared or {})
        self.service = service
        self._fast: Optional[Tuple[Any, Any, bytes]] = None
        dumps = _json.fast_dumps_sorted
        if dumps is None or self.declared:  # options may hold floats: checked per key
            return
        tail: List[Any] = [self.betas, {}]
        if service is not None:
            tail.append({"service": service})
        try:
            head = hashlib.sha256(b"[" + dumps(KEY_VERSION) + b",")
            ending = b"," + b",".join(dumps(part) for part in tail) + b"]"
        except Exception:  # a beta orjson cannot write: every key takes the checked way
            return
        self._fast = (dumps, head, ending)

    def digest(self, params: Mapping[str, Any], clean: bool = False) -> bytes:
        """:func:`_answer_digest` of ``params`` with this job's betas, options and service."""
        fast = self._fast
        if fast is not None and clean and type(params) is dict and not _marked(params):
            dumps, head, ending = fast
            hashed = head.copy()
            hashed.update(dumps(params))
            hashed.update(ending)
            found: bytes = hashed.digest()
            return found
        return _answer_digest(params, betas=self.betas, declared=self.declared,
                              service=self.service, clean=clean)


def answer_key(params: Mapping[str, Any], *, betas: Iterable[str] = (),
               declared: Optional[Mapping[str, Any]] = None,
               service: Optional[str] = None) -> str:
    """The hex sha256 an answer to ``params`` is stored and looked up under.

    :param params: the request's params as planned (before plugins' rewrites).
    :param betas: the betas the request goes out with (they enable what it asks).
    :param declared: the options plugins declared for the job
        (``context.declare_option``: a structured-output schema changes the answer).
    :param service: the base URL of a server other than the API (an emulator, a
        gateway), whose answers must never answer a request to another; None for the API.
    """
    return _answer_digest(params, betas=betas, declared=declared, service=service).hex()


@attrs.frozen
class StoredAnswer:
    """A succeeded answer a store kept (``find_answers``), with where it was bought.

    ``line``: the result line as the service served it (JSON, no newline).
    ``job`` / ``custom_id``: the job and request that paid for it.
    ``batch_id`` / ``batch_created_at`` (epoch seconds): the batch that served it; its
    date prices what the answer cost (a reused answer's ``on_result`` gets that batch).
    ``stored_at``: when the store kept it (epoch seconds).
    """

    line: bytes
    job: str
    custom_id: str
    batch_id: str
    batch_created_at: Optional[float]
    stored_at: float

    @property
    def source(self) -> str:
        """``"<job>/<custom_id>"``: what the output line's ``reused_from`` says."""
        return f"{self.job}/{self.custom_id}"

    def batch(self) -> MessageBatch:
        """The batch that served the answer, as far as the store knows it."""
        created = dt.datetime.fromtimestamp(
            self.batch_created_at if self.batch_created_at is not None else self.stored_at,
            dt.timezone.utc)
        return MessageBatch(id=self.batch_id, processing_status="ended",
                            request_counts=RequestCounts(), created_at=created,
                            expires_at=created + dt.timedelta(days=1))
