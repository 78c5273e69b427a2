"""What a hook may read: the typed ``context`` every hook receives.

Two kinds, as pytest has a session and items: a :class:`CallContext` for an
endpoint call made on its own (``client.create``, ``client.results``...), and a
:class:`JobContext` inside ``client.run`` (a CallContext too). Each carries a
:class:`Stash` where plugins keep per-client or per-job state under keys of
their own, so no plugin guesses when a new job starts.
"""

from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Generic,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    TypeVar,
    Union,
    cast,
)

import attrs

if TYPE_CHECKING:
    from ._client import BatchClient
    from ._clock import Clock
    from ._job import Job
    from ._report import BatchSummary
    from .models import MessageBatch, Request

T = TypeVar("T")
D = TypeVar("D")


class StashKey(Generic[T]):
    """A plugin's own key into a :class:`Stash`; its type parameter types the value."""

    __slots__ = ()


class Stash:
    """Per-run state for plugins, each under its own :class:`StashKey` (pytest's Stash)."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: Dict[StashKey[Any], object] = {}

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._data[key] = value

    def __getitem__(self, key: StashKey[T]) -> T:
        return cast(T, self._data[key])

    def get(self, key: StashKey[T], default: D) -> Union[T, D]:
        try:
            return self[key]
        except KeyError:
            return default

    def setdefault(self, key: StashKey[T], factory: Callable[[], T]) -> T:
        """The value under ``key``, made by ``factory()`` the first time."""
        if key not in self._data:
            self._data[key] = factory()
        return self[key]

    def __delitem__(self, key: StashKey[T]) -> None:
        del self._data[key]

    def __contains__(self, key: StashKey[T]) -> bool:
        return key in self._data


@attrs.frozen
class BatchLimits:
    """How a job cuts its batches: at most ``max_requests`` requests and ``max_bytes`` of body."""

    max_requests: int
    max_bytes: int


@attrs.define(eq=False)
class CallContext:
    """An endpoint call: the client making it, and the client's stash."""

    client: BatchClient
    stash: Stash = attrs.field(factory=Stash)

    @property
    def clock(self) -> Clock:
        """The client's clock: sleep and read the time through it (tests use a fake one)."""
        return self.client.clock


class JobContext(CallContext):
    """A whole job (``client.run``): what a plugin may read about it, and a stash per job.

    Read-only views of the job's state; the core alone changes them.
    """

    def __init__(self, job: Job) -> None:
        super().__init__(job.client)
        self._job = job
        #: True while the core replays results stored by an earlier run (see ``on_result``).
        self.replaying = False
        #: True while the core writes answers not bought now: reused from a store, or an
        #: identical request's (see ``on_result``).
        self.reusing = False
        self._watchers: List[Callable[[Request], None]] = []
        self._uploads: List[Callable[[int, int, int], None]] = []

    def __repr__(self) -> str:
        return f"<JobContext {self.name!r} pass={self.pass_number} dry_run={self.dry_run}>"

    @property
    def name(self) -> str:
        return self._job.name

    @property
    def output(self) -> str:
        """The job's result lines file (absolute); the core alone writes it."""
        return self._job.output

    @property
    def table(self) -> Optional[str]:
        """Where the job writes its table when it ends (a path or URL), or None."""
        return self._job.table.destination if self._job.table is not None else None

    @property
    def source(self) -> object:
        """What the job reads: a JSONL path, the caller's iterable of requests, or a
        :class:`~claudebatch.rows.Rows` (a table and a template)."""
        source: object = self._job.source
        return source

    @property
    def input_digest(self) -> Optional[str]:
        """sha256 (hex) of every valid request of the input, in order, as the job planned
        them (answered by reuse or not); None until the input is planned. A store compares
        it on resume when the input cannot be read again (rows in memory, an object
        store)."""
        return self._job.input_digest

    @property
    def dry_run(self) -> bool:
        """True in ``--dry-run``: plugins estimate in ``before_pass``; nothing is sent."""
        return self._job.dry_running

    @property
    def pass_number(self) -> int:
        """The pass under way: 1, then one more per resubmission."""
        return self._job.pass_number

    @property
    def limits(self) -> BatchLimits:
        return BatchLimits(self._job.max_batch_requests, self._job.max_batch_bytes)

    @property
    def poll_interval(self) -> float:
        return self._job.poll_interval

    @property
    def total_requests(self) -> int:
        """Requests in the first pass (the input)."""
        return self._job.total_requests

    @property
    def resumed(self) -> bool:
        """True when a ``resume_state`` answer made this run continue an earlier one."""
        return self._job.resumed

    @property
    def batches(self) -> Sequence[BatchSummary]:
        """Every batch of the job so far, in the order they were submitted."""
        return [item.summary for item in self._job.batches]

    @property
    def batch_states(self) -> Sequence[MessageBatch]:
        """The latest known state of each batch of the job (as last retrieved)."""
        return [item.batch for item in self._job.batches if item.batch is not None]

    @property
    def results_written(self) -> int:
        return self._job.results_written

    @property
    def max_in_flight(self) -> Optional[int]:
        """At most this many of the job's requests wait in the service's processing queue
        at once (None: no limit of the job's own; the service's 429s still pace it)."""
        return self._job.max_in_flight

    @property
    def in_flight_requests(self) -> int:
        """The job's requests in batches not ended, as the service counts them waiting
        (each batch's latest ``request_counts.processing``)."""
        return self._job.in_flight_requests

    @property
    def queued_batches(self) -> int:
        """Batches of the pass not sent yet: they go as the service's queue has room."""
        queue = self._job.queue
        return queue.batches if queue is not None else 0

    @property
    def queued_requests(self) -> int:
        """Requests of the batches not sent yet."""
        queue = self._job.queue
        return queue.requests if queue is not None else 0

    @property
    def started_at(self) -> float:
        """When the job started, on ``clock.monotonic()``."""
        return self._job.started_at

    @property
    def options(self) -> Dict[str, Any]:
        """What decides how the input is cut and sent: the split options, the server, the
        API version and betas, what plugins declared, and which requests reuse answered (a store
        fingerprints them, and refuses to resume a job started with others)."""
        client = self._job.client
        return {"max_batch_requests": self._job.max_batch_requests,
                "max_batch_bytes": self._job.max_batch_bytes,
                "server": client.base_url.rstrip("/"),
                "api_version": client.api_version, "betas": sorted(client.betas),
                **self._job.declared, **self._job.reuse_option, **self._job.rows_option}

    def declare_option(self, name: str, value: Any) -> None:
        """Declare a value that shapes what this plugin sends (a schema's digest), in
        ``on_job_start``: it joins :attr:`options`, so a run of the same job with another
        value is refused instead of mixing the two. ``value`` must be JSON."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"an option's name must be a non-empty string, got {name!r}")
        self._job.declared[name] = value

    def reserve_bytes(self, per_request: int) -> None:
        """Say that this plugin grows every request by up to ``per_request`` bytes once it
        is planned (a parameter added to each, in ``before_pass``): the job cuts its
        batches with that room, so no body passes the service's limit. Call it in
        ``on_job_start``; the reservations of several plugins add up."""
        if isinstance(per_request, bool) or not isinstance(per_request, int) \
                or per_request < 0:
            raise ValueError(f"per_request must be a whole number of bytes >= 0, "
                             f"got {per_request!r}")
        self._job.grow_each += per_request

    @property
    def reused(self) -> int:
        """Requests answered, so far in the job, by answers kept from earlier jobs."""
        return self._job.reused

    @property
    def duplicates(self) -> int:
        """Requests answered, so far in the job, by an identical request sent once."""
        return self._job.duplicates

    def cost_usd(self) -> Optional[float]:
        """What the job's results have cost so far in US dollars, as a cost plugin counts
        them (the ``job_cost`` hook; claudebatch-cost answers it), or None without one.

        For displays and telemetry: progress bars and lines, ``--progress json``,
        OpenTelemetry. It asks the plugins each time, so read it when showing it.
        """
        answer = self.client.hook.job_cost(context=self)
        return None if answer is None else float(answer)

    def on_planned(self, fn: Callable[[Request], None]) -> None:
        """Show ``fn`` every valid request the job will send, in every pass, as it plans it
        (a request answered by reuse is not sent, so not shown), in the order the
        pass's batches then hold them: the first batch's first request first.

        Register it in ``on_job_start``. For a plugin that weighs a whole pass before
        its ``before_pass`` (prefixes shared across batches) without reading the pass
        again: the job reads each request once to plan it, and once to write it.
        """
        self._watchers.append(fn)

    @property
    def planning_watchers(self) -> Sequence[Callable[[Request], None]]:
        return tuple(self._watchers)

    def on_upload(self, fn: Callable[[int, int, int], None]) -> None:
        """Call ``fn(batch_index, bytes_sent, body_bytes)`` as each batch's body goes to
        the service (every MiB, and at its end): a body may be 256 MB, minutes on a slow
        link. For progress displays; register it in ``on_job_start``."""
        self._uploads.append(fn)

    @property
    def upload_watchers(self) -> Sequence[Callable[[int, int, int], None]]:
        return tuple(self._uploads)

    def find_requests(self, custom_ids: Iterable[str]) -> Iterator[Request]:
        """The job's requests with these custom_ids, as the latest pass that sent them."""
        return self._job.find_requests(custom_ids)
