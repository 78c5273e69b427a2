"""``Emulator``: the server's lifecycle, its settings, and what tests read off it."""

from __future__ import annotations

import collections
import os
import secrets
import shutil
import tempfile
import threading
from typing import Any, Callable, Collection, Deque, Dict, List, NamedTuple, Optional, Tuple

from ..limits import MAX_BATCH_BYTES
from .clock import as_now
from .faults import FaultPlan, Faults
from .server import EmulatorHTTPServer
from .service import BatchService, Settings


class RequestRecord(NamedTuple):
    """One HTTP request the emulator received, as answered."""

    method: str
    path: str
    endpoint: Optional[str]  # create, list, retrieve, cancel, delete, results; None: no such
    status: Optional[int]  # None when the connection was dropped before an answer
    faults: Tuple[str, ...]  # faults injected into this request
    batch_id: Optional[str]


class Emulator:
    """A local Message Batches API server, serving in a background thread.

    >>> with Emulator(rate=float("inf")) as emu:       # doctest: +SKIP
    ...     client = anthropic.Anthropic(api_key="k", base_url=emu.url)
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: Optional[str] = None,
        seed: Optional[int] = None,
        clock: Any = None,
        rate: float = 500.0,
        expiry: float = 24 * 3600.0,
        cancel_delay: float = 1.0,
        retention: float = 29 * 24 * 3600.0,
        counts: str = "progressive",
        cache_hit_rate: float = 1.0,
        cache_latency: float = 0.0,
        cache_min_tokens: Optional[int] = None,
        answer_tokens: Tuple[int, int] = (16, 400),
        pause_rate: float = 0.0,
        refusal_rate: float = 0.0,
        models: Optional[Collection[str]] = None,
        faults: Optional[Faults] = None,
        max_body_bytes: int = MAX_BATCH_BYTES,
        max_requests: int = 100_000,
        queue_limit: Optional[int] = None,
        spool_dir: Optional[str] = None,
        drain_seconds: float = 30.0,
        log: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.api_key = api_key
        self.seed = seed if seed is not None else secrets.randbelow(2**32)
        self.clock = clock
        self.settings = Settings(
            seed=self.seed,
            rate=float(rate),
            expiry=float(expiry),
            cancel_delay=float(cancel_delay),
            retention=float(retention),
            counts=counts,
            cache_hit_rate=float(cache_hit_rate),
            cache_latency=float(cache_latency),
            cache_min_tokens=cache_min_tokens,
            answer_tokens=(int(answer_tokens[0]), int(answer_tokens[1])),
            pause_rate=float(pause_rate),
            refusal_rate=float(refusal_rate),
            models=tuple(models) if models is not None else None,
            max_body_bytes=int(max_body_bytes),
            max_requests=int(max_requests),
            queue_limit=None if queue_limit is None else int(queue_limit),
        )
        self.drain_seconds = float(drain_seconds)
        self.log = log
        self._own_spool = spool_dir is None
        self.spool_dir = spool_dir or tempfile.mkdtemp(prefix="claudebatch-emulator-")
        self.service = BatchService(self.settings, as_now(clock), self.spool_dir)
        self._faults = FaultPlan(faults, self.seed)
        #: every HTTP request received, oldest first (the last 100,000)
        self.requests: Deque[RequestRecord] = collections.deque(maxlen=100_000)
        self._server: Optional[EmulatorHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # --- lifecycle ------------------------------------------------------------------
    def start(self) -> Emulator:
        """Bind and serve in a background thread; returns self."""
        if self._server is not None:
            return self
        os.makedirs(self.spool_dir, exist_ok=True)
        try:
            self._server = EmulatorHTTPServer((self.host, self._requested_port), self)
        except BaseException:
            if self._own_spool:
                shutil.rmtree(self.spool_dir, ignore_errors=True)
            raise
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"claudebatch-emulator:{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections, and remove the spooled batches."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.service.close()
        if self._own_spool:
            shutil.rmtree(self.spool_dir, ignore_errors=True)

    close = stop

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to give a client (``ANTHROPIC_BASE_URL``)."""
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    # --- faults ---------------------------------------------------------------------
    @property
    def faults(self) -> Faults:
        """The seeded fault rates in force; assign a new :class:`Faults` to change them."""
        return self._faults.faults

    @faults.setter
    def faults(self, value: Optional[Faults]) -> None:
        self._faults.faults = value

    def inject(self, fault: str, times: int = 1, *, endpoint: Optional[str] = None,
               **params: Any) -> None:
        """Make the next ``times`` requests (to ``endpoint``, or any) suffer ``fault``:
        ``rate_limit`` (``retry_after=``), ``server_error``, ``overloaded``, ``slow``
        (``seconds=``), ``drop_results`` (``after=`` share sent), ``drop_create``."""
        self._faults.inject(fault, times, endpoint, **params)

    def clear_faults(self) -> None:
        """Forget queued one-off faults (the rates stay)."""
        self._faults.clear()

    @property
    def fault_plan(self) -> FaultPlan:
        return self._faults

    @property
    def faults_fired(self) -> Dict[str, int]:
        """How many times each fault was injected."""
        return dict(self._faults.fired)

    # --- what a test reads ------------------------------------------------------------
    @property
    def batches_created(self) -> int:
        return self.service.batches_created

    @property
    def batch_ids(self) -> List[str]:
        """Ids of every batch made, in creation order (deleted ones included)."""
        return list(self.service.batch_ids)

    def requests_to(self, endpoint: str) -> List[RequestRecord]:
        return [r for r in self.requests if r.endpoint == endpoint]

    def batch(self, batch_id: str) -> Dict[str, Any]:
        """The batch as ``GET /v1/messages/batches/{id}`` would return it now."""
        base = self.url if self._server is not None else "http://emulator"
        return self.service.retrieve(batch_id, base)

    @property
    def in_flight(self) -> int:
        """Batch requests in the processing queue now (not yet processed, batch not ended)."""
        return self.service.queue.queued()

    @property
    def peak_in_flight(self) -> int:
        """The most batch requests the processing queue ever held (with or without a limit)."""
        return self.service.queue.peak

    @property
    def queue_refusals(self) -> int:
        """Creates refused with 429 because the queue was full (``queue_limit``)."""
        return self.service.queue.refused

    @property
    def cache_stats(self) -> Dict[str, int]:
        return {"reads": self.service.cache.reads, "writes": self.service.cache.writes}

    def _record(self, method: str, path: str, endpoint: Optional[str], status: Optional[int],
                faults: Tuple[str, ...], batch_id: Optional[str]) -> None:
        self.requests.append(RequestRecord(method, path, endpoint, status, faults, batch_id))
        if self.log is not None:
            extra = f" faults={','.join(faults)}" if faults else ""
            shown = status if status is not None else "dropped"
            self.log(f"{method} {path} -> {shown}{extra}")
