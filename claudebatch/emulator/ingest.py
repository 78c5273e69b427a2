"""Turn a spooled ``POST /v1/messages/batches`` body into a stored batch.

The body is read twice from disk with ijson and never held whole: a first pass checks
its outline (an object whose only key is ``requests``, a list of at most
``max_requests`` items) without building anything; a second builds one request at a
time, checks it, and appends it to the batch's own spool file, one line per request
(``custom_id``, a tab, the params as JSON). What stays in memory per request is a
file offset, an outcome byte and a place in the processing order.
"""

from __future__ import annotations

import math
import os
import random
import re
import tempfile
from array import array
from typing import Any, List, NamedTuple, Optional

import ijson

from .cache import Candidate, PromptCache
from .catalog import Catalog
from .errors import ApiError, invalid
from .fastjson import encode
from .ids import unit
from .prompt import analyse
from .store import FAULT_API_ERROR, FAULT_OVERLOADED, INVALID, BatchRecord
from .validation import Dialect, validate

CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_ITEM_STARTS = frozenset({"start_map", "start_array", "string", "number", "boolean", "null"})


class IngestSettings(NamedTuple):
    catalog: Catalog
    cache: PromptCache
    seed: object
    max_requests: int
    rate: float
    expiry: float
    cancel_delay: float
    retention: float
    progressive: bool
    spool_dir: str
    cache_latency: float = 0.0


def count_requests(path: str, max_requests: int) -> int:
    """Check the body's outline; return the number of requests."""
    count = 0
    seen_requests = False
    if os.path.getsize(path) == 0:
        raise invalid("Request body is empty; expected a JSON object with 'requests'.")
    with open(path, "rb") as f:
        events = ijson.parse(f)
        try:
            first = next(events, None)
            if first is None or first[1] != "start_map":
                raise invalid("Request body must be a JSON object with 'requests'.")
            for prefix, event, value in events:
                if prefix == "requests.item":
                    if event in _ITEM_STARTS:
                        count += 1
                        if count > max_requests:
                            raise invalid(
                                f"requests: List should have at most {max_requests} items "
                                f"after validation, not {count} or more"
                            )
                elif prefix == "":
                    if event == "map_key":
                        if value != "requests":
                            raise invalid(f"{value}: Extra inputs are not permitted")
                        seen_requests = True
                elif prefix == "requests" and event not in ("start_array", "end_array"):
                    raise invalid("requests: Input should be a valid list")
        except ijson.JSONError as exc:
            raise _not_json(exc) from None
    if not seen_requests:
        raise invalid("requests: Field required")
    if count == 0:
        raise invalid("requests: List should have at least 1 item after validation, not 0")
    return count


def _not_json(exc: Exception) -> ApiError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return invalid(f"Request body is not valid JSON ({detail}).")


def _order(size: int, rng: random.Random) -> array[int]:
    """A seeded processing order that is not the input order (for two or more)."""
    order = list(range(size))
    rng.shuffle(order)
    if size > 1 and all(i == v for i, v in enumerate(order)):
        order = order[1:] + order[:1]
    return array("l", order)


def _check_item(i: int, item: Any, seen: set[str]) -> str:
    where = f"requests.{i}"
    if not isinstance(item, dict):
        raise invalid(f"{where}: Input should be a valid dictionary")
    for key in item:
        if key not in ("custom_id", "params"):
            raise invalid(f"{where}.{key}: Extra inputs are not permitted")
    if "custom_id" not in item:
        raise invalid(f"{where}.custom_id: Field required")
    custom_id = item["custom_id"]
    if not isinstance(custom_id, str):
        raise invalid(f"{where}.custom_id: Input should be a valid string")
    if not CUSTOM_ID.fullmatch(custom_id):
        raise invalid(
            f"{where}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
        )
    if custom_id in seen:
        raise invalid(
            f"{where}.custom_id: Duplicate custom_id '{custom_id}'; each request in a "
            "batch must have a unique custom_id"
        )
    seen.add(custom_id)
    if "params" not in item:
        raise invalid(f"{where}.params: Field required")
    if not isinstance(item["params"], dict):
        raise invalid(f"{where}.params: Input should be a valid dictionary")
    return custom_id


def ingest(
    body_path: str,
    *,
    batch_id: str,
    seq: int,
    created_at: float,
    dialect: Dialect,
    errored_rate: float,
    settings: IngestSettings,
    size: Optional[int] = None,
) -> BatchRecord:
    """The batch a body makes (``size``: its requests, when its outline was checked)."""
    if size is None:
        size = count_requests(body_path, settings.max_requests)
    order = _order(size, random.Random(f"order:{settings.seed}:{batch_id}"))
    position = array("l", [0]) * size
    for pos, index in enumerate(order):
        position[index] = pos
    rate = settings.rate
    step = 0.0 if math.isinf(rate) else 1.0 / rate

    fd, spool_path = tempfile.mkstemp(prefix=f"{batch_id}-", suffix=".jsonl",
                                      dir=settings.spool_dir)
    os.close(fd)
    offsets = array("q")
    codes = bytearray(size)
    seen: set[str] = set()
    candidates: List[Candidate] = []
    offset = 0
    try:
        with open(body_path, "rb") as body, open(spool_path, "wb") as spool:
            try:
                items = ijson.items(body, "requests.item", use_float=True)
                for i, item in enumerate(items):
                    custom_id = _check_item(i, item, seen)
                    params = item["params"]
                    params_json = encode(params)
                    line = f"{custom_id}\t{params_json}\n".encode()
                    offsets.append(offset)
                    offset += len(line)
                    spool.write(line)
                    code = _outcome(i, params, params_json, dialect, errored_rate, batch_id,
                                    settings)
                    codes[i] = code
                    if code == 0 and '"cache_control"' in params_json:
                        info = settings.catalog.lookup(params["model"])
                        assert info is not None
                        prompt = analyse(params, info.resolved, keys=True)
                        if prompt.breakpoints:
                            t = created_at + (position[i] + 1) * step
                            start = max(created_at, t - settings.cache_latency)
                            candidates.append(Candidate(t, i, prompt.breakpoints,
                                                        info.min_cache_tokens, start))
            except ijson.JSONError as exc:
                raise _not_json(exc) from None
    except BaseException:
        _unlink(spool_path)
        raise
    del seen, position

    errored_positions = array("l", (pos for pos, index in enumerate(order) if codes[index]))

    def coin(index: int) -> float:
        return unit(settings.seed, batch_id, index, "hit")

    cache = settings.cache.settle(size, candidates, coin)
    return BatchRecord(
        id=batch_id,
        seq=seq,
        created_at=created_at,
        size=size,
        expires_at=created_at + settings.expiry,
        rate=rate,
        cancel_delay=settings.cancel_delay,
        retention=settings.retention,
        progressive=settings.progressive,
        dialect=dialect,
        spool_path=spool_path,
        offsets=offsets,
        order=order,
        codes=codes,
        errored_positions=errored_positions,
        cache=cache,
    )


def _outcome(
    i: int,
    params: Any,
    params_json: str,
    dialect: Dialect,
    errored_rate: float,
    batch_id: str,
    settings: IngestSettings,
) -> int:
    if validate(params, settings.catalog, dialect=dialect, params_json=params_json) is not None:
        return INVALID
    if errored_rate and unit(settings.seed, batch_id, i, "fault") < errored_rate:
        overloaded = unit(settings.seed, batch_id, i, "kind") < 0.5
        return FAULT_OVERLOADED if overloaded else FAULT_API_ERROR
    return 0


def _unlink(path: Optional[str]) -> None:
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass
