"""BatchClient: every Message Batches endpoint, plus ``wait`` (and ``run`` for whole jobs).

Blocking calls on a ``requests`` session; plugins act through the hooks in
:mod:`claudebatch.hookspecs`, called around the endpoint calls.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    Callable,
    Collection,
    Dict,
    FrozenSet,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
    cast,
)

import pluggy
import requests

from ._clock import Clock, SystemClock
from ._hookcall import direct_caller
from ._inputs import RequestValidator, validate_batch
from ._origin import OriginPolicy, describe
from ._output import result_line
from ._pending import PendingBatch
from ._plugins import make_plugin_manager, plugin_names
from ._polling import Watch, poll_until_ended
from ._results import PieceReader, annotate, iter_lines, result_hooks, to_result
from ._serde import structure
from ._transport import DEFAULT_BASE_URL, Timeout, Transport
from .apirules import DEFAULT_API_VERSION, beta_header, check_api_version, check_betas
from .argtypes import BATCH_ID
from .context import CallContext
from .errors import (
    APIStatusError,
    BatchNotEndedError,
    ClaudeBatchError,
    ConfigurationError,
    InvalidBatchIdError,
    UnexpectedResponseError,
    UnsafeResultsURLError,
    UnsafeURLError,
    ValidationError,
)
from .limits import (
    ADOPTION_WINDOW_SECONDS,
    AMBIGUOUS_CREATE_SKEW_SECONDS,
    MAX_BATCH_BYTES,
    json_bytes,
)
from .models import BatchResult, DeletedMessageBatch, MessageBatch, Request
from .policies import DEFAULT_POLL_INTERVAL

logger = logging.getLogger("claudebatch")

BATCHES = "/v1/messages/batches"
COUNT_TOKENS = "/v1/messages/count_tokens"
#: What the token-counting endpoint takes of a request's params.
COUNT_TOKENS_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")
DEFAULT_TIMEOUT: Timeout = (10.0, 600.0)
DEFAULT_MAX_RETRIES = 4

if TYPE_CHECKING:
    from ._job import Job
    from ._report import JobReport

_HEADER_SAFE = re.compile(r"^[\x21-\x7e]+$")

RequestLike = Union[Request, Dict[str, Any]]
T = TypeVar("T")


class BatchClient:
    """A client for the Message Batches API.

    ``api_key`` and ``base_url`` default to ``ANTHROPIC_API_KEY`` and
    ``ANTHROPIC_BASE_URL`` (else ``https://api.anthropic.com``). A caller's own
    ``requests.Session`` is used as given. ``plugins`` are registered on this
    client only, beside any installed through the ``claudebatch`` entry points.
    """

    def __init__(self, api_key: Optional[str] = None, base_url: Optional[str] = None, *,
                 session: Optional[requests.Session] = None,
                 timeout: Timeout = DEFAULT_TIMEOUT,
                 max_retries: int = DEFAULT_MAX_RETRIES,
                 plugins: Iterable[Any] = (),
                 betas: Sequence[str] = (),
                 poll_interval: float = DEFAULT_POLL_INTERVAL,
                 clock: Optional[Clock] = None,
                 load_entry_points: bool = True,
                 allowed_origins: Sequence[str] = (),
                 allow_http: bool = False,
                 auth_token: Optional[str] = None,
                 api_version: str = DEFAULT_API_VERSION,
                 reuse: Optional[bool] = None,
                 reuse_max_age: Optional[float] = None):
        key = _credential(api_key, "ANTHROPIC_API_KEY", "API key", "api_key")
        token = _credential(auth_token, "ANTHROPIC_AUTH_TOKEN", "auth token", "auth_token")
        if not key and not token:
            raise ConfigurationError(
                "no API key: pass BatchClient(api_key=...) or set ANTHROPIC_API_KEY (or a "
                "bearer token: auth_token=... / ANTHROPIC_AUTH_TOKEN); set ANTHROPIC_BASE_URL "
                "too to use another server, such as the emulator")
        base = base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL
        if not base.lower().startswith(("http://", "https://")) or "?" in base or "#" in base:
            raise ConfigurationError(
                f"base_url must be an http:// or https:// URL without a query or fragment, "
                f"got {base!r} (from the base_url argument or ANTHROPIC_BASE_URL)")
        if max_retries < 0:
            raise ConfigurationError(f"max_retries must be >= 0, got {max_retries}")
        try:
            origins = OriginPolicy(base.rstrip("/"), allowed_origins, allow_http=allow_http)
        except UnsafeURLError as exc:
            raise ConfigurationError(f"base_url or allowed_origins refused: {exc}") from None
        check_interval(poll_interval, "poll_interval")
        if reuse_max_age is not None:
            check_interval(reuse_max_age, "reuse_max_age", allow_zero=True)
        #: Jobs answer requests from kept answers and send identical ones once: None (the
        #: default) when a store offers answers, True also without one, False never.
        self.reuse = reuse
        #: Seconds: older kept answers are not reused (None: any age).
        self.reuse_max_age = reuse_max_age
        #: The ``anthropic-version`` sent, and checked against before sending.
        self.api_version = check_api_version(api_version)
        self.betas: Tuple[str, ...] = check_betas(betas)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.poll_interval = poll_interval
        self.plugin_manager: pluggy.PluginManager = make_plugin_manager(
            plugins, load_entry_points=load_entry_points)
        self.hook = self.plugin_manager.hook
        self.transport = Transport(
            api_key=key, auth_token=token, base_url=base, session=session, timeout=timeout,
            max_retries=max_retries, clock=self.clock, delay_policy=self._retry_delay,
            betas=self.betas, origins=origins, api_version=self.api_version)
        self._created_ids: set[str] = set()
        #: Batches taken for a create whose answer was lost: (since, count) of that create.
        self._adopted: Dict[str, Tuple[float, int]] = {}
        self._rejected: set[str] = set()
        #: The context of endpoint calls made outside a job (a stash per client).
        self.context = CallContext(self)

    def __repr__(self) -> str:
        return (f"<BatchClient base_url={self.base_url!r} "
                f"plugins={plugin_names(self.plugin_manager)!r}>")

    @property
    def base_url(self) -> str:
        return self.transport.base_url

    @property
    def max_retries(self) -> int:
        """HTTP retries per call (a retry policy may allow fewer, never more)."""
        return self.transport.max_retries

    @property
    def plugins(self) -> List[Any]:
        """The plugin objects registered on this client (entry points included)."""
        return [p for name, p in self.plugin_manager.list_name_plugin()
                if name != "claudebatch.policies"]

    def _retry_delay(self, attempt: int, response: Optional[requests.Response],
                     error: Optional[BaseException]) -> Optional[float]:
        result: Optional[float] = self.hook.retry_delay(
            attempt=attempt, response=response, error=error, context=self.context)
        return result

    # --- the six endpoints ----------------------------------------------------

    def create(self, requests: Union[Iterable[RequestLike], str, os.PathLike[str], PendingBatch],
               *, context: Optional[CallContext] = None) -> MessageBatch:
        """Validate, run ``before_submit``, send one batch, run ``after_submit``.

        ``requests`` is a list of Requests or dicts, or the path of a JSONL file.
        All validation problems are raised together in one
        :class:`~claudebatch.errors.ValidationError` and nothing is sent. If
        the connection breaks after the body was sent, the client looks for the
        batch the service may have made before retrying, so one call never
        makes two batches.
        """
        return self._create(requests, context=context)

    def _create(self, requests: Union[Iterable[RequestLike], str, os.PathLike[str],
                                      PendingBatch],
                *, context: Optional[CallContext] = None,
                final_statuses: Collection[int] = ()) -> MessageBatch:
        """``create``, raising at once an answer whose status is in ``final_statuses``
        (a job waits out a 429 on create itself, polling its other batches meanwhile).

        A caller's PendingBatch keeps its written body when the create fails, so it can
        be sent again as it is; the caller discards it.
        """
        owned = not isinstance(requests, PendingBatch)
        if isinstance(requests, PendingBatch):
            pending = requests
        else:
            validator = self.validator()
            pending = PendingBatch.from_requests(validate_batch(requests, validator))
            pending.betas = self.note_added_betas(validator.added_betas)
        ctx = context if context is not None else self.context
        self.hook.before_submit(requests=pending, context=ctx)
        try:
            body = pending.write_body()
            size = body.seek(0, os.SEEK_END)
            if size > MAX_BATCH_BYTES:
                raise ValidationError(
                    f"the batch was not sent: its body is {size:,} bytes, over the "
                    f"{MAX_BATCH_BYTES:,}-byte limit (client.run() splits large inputs)")
            watchers = getattr(ctx, "upload_watchers", ())
            sent: IO[bytes] = body
            if watchers:
                def report(done: int) -> None:
                    for fn in watchers:
                        fn(pending.index, done, size)

                sent = cast(IO[bytes], WatchedBody(body, size, report))
            batch = self._post_batch(sent, len(pending), pending.betas, final_statuses)
        except Exception as exc:
            if owned:
                pending.discard_body()
            self.hook.on_submit_error(requests=pending, error=exc,
                                      made_nothing=made_nothing(exc), context=ctx)
            raise
        pending.discard_body()
        self._created_ids.add(batch.id)
        self.hook.after_submit(batch=batch, requests=pending, context=ctx)
        return batch

    def validator(self) -> RequestValidator:
        """A validator of requests for this client's API version and betas."""
        return RequestValidator(api_version=self.api_version, betas=self.betas)

    def note_added_betas(self, added: Iterable[str]) -> FrozenSet[str]:
        """Say which betas the requests needed that ``betas=`` lacked; return them."""
        names = frozenset(added)
        if names:
            logger.warning("claudebatch: sending the anthropic-beta header %s, which these "
                           "requests need (name it yourself with betas=[...] or --beta to "
                           "silence this note)", ", ".join(sorted(names)))
        return names

    def _post_batch(self, body: IO[bytes], count: int, betas: FrozenSet[str] = frozenset(),
                    final_statuses: Collection[int] = ()) -> MessageBatch:
        started = self.clock.time()

        def rewound() -> IO[bytes]:
            body.seek(0)
            return body

        def find_made_batch(_error: BaseException) -> Optional[requests.Response]:
            made = self.find_batch_created_since(started, count)
            if made is None:
                return None
            self._adopted[made.id] = (started, count)
            return self.transport.request("GET", f"{BATCHES}/{made.id}")

        call = f"POST {BATCHES}"
        extra = beta_header((*self.betas, *betas)) if betas else None
        response = self.transport.request("POST", BATCHES, body=rewound, headers=extra,
                                          recover=find_made_batch,
                                          final_statuses=final_statuses)
        try:
            return _answer(response.json(), MessageBatch, call)
        except (ValueError, RecursionError, UnexpectedResponseError) as exc:
            # a success that is no batch: whether one was made is unknown, so look
            why = str(exc) if isinstance(exc, UnexpectedResponseError) else \
                f"{call} answered {response.status_code} with a body that is not a batch"
        try:
            made = self.find_batch_created_since(started, count)
        except ClaudeBatchError as lookup:
            raise UnexpectedResponseError(
                f"{why}; looking for the batch it may have made failed too: {lookup}") from None
        if made is None:
            raise UnexpectedResponseError(
                f"{why}; no batch of {count:,} requests made since appears in the list, so "
                "none was made") from None
        self._adopted[made.id] = (started, count)
        return made

    def remember_batches(self, batch_ids: Iterable[str]) -> None:
        """Batches known to be spoken for (a resumed job's): never adopted as a lost create's."""
        self._created_ids.update(batch_ids)

    # --- adoption: a create whose answer was lost ---------------------------------

    def is_adopted(self, batch_id: str) -> bool:
        """True when ``batch_id`` was taken for a lost create's and is not proven ours yet.

        A job proves it from the results: every custom_id must be one it sent
        in that batch (:meth:`confirm_adoption`), else :meth:`reject_adoption`.
        """
        return batch_id in self._adopted

    def adopt(self, batch_id: str, since: float, request_count: int) -> None:
        """Mark ``batch_id`` as taken for a create of ``request_count`` sent at ``since``."""
        self._adopted[batch_id] = (since, request_count)

    def confirm_adoption(self, batch_id: str) -> None:
        """Its results proved ``batch_id`` ours."""
        self._adopted.pop(batch_id, None)
        self._created_ids.add(batch_id)

    def reject_adoption(self, batch_id: str) -> Optional[MessageBatch]:
        """``batch_id`` was not ours: never take it again; look for the real one.

        Returns another candidate for the same lost create (itself unproven), or
        None when the service made no batch for it (the requests were never sent).
        """
        since, count = self._adopted.pop(batch_id)
        self._rejected.add(batch_id)
        made = self.find_batch_created_since(since, count,
                                             until=since + ADOPTION_WINDOW_SECONDS)
        if made is not None:
            self._adopted[made.id] = (since, count)
        return made

    def find_batch_created_since(self, since: float, request_count: int, *,
                                 exclude: Iterable[str] = (),
                                 until: Optional[float] = None) -> Optional[MessageBatch]:
        """The newest unknown batch made since ``since`` (epoch seconds) with this many requests.

        How a ``create`` whose answer was lost is resolved (and how a persistence
        plugin resolves a crash during ``create``). Batches this client made or
        was told of (``remember_batches``), those it has taken or rejected for
        another lost create, and those in ``exclude`` never match; with ``until``,
        neither do batches created after it.
        """
        known = self._created_ids.union(exclude, self._adopted, self._rejected)
        cutoff = dt.datetime.fromtimestamp(since - AMBIGUOUS_CREATE_SKEW_SECONDS, dt.timezone.utc)
        for batch in self.list(limit=100):
            if batch.created_at < cutoff:
                return None
            if until is not None and batch.created_at.timestamp() > until:
                continue
            if batch.id not in known and batch.request_counts.total == request_count:
                return batch
        return None

    def retrieve(self, batch_id: str) -> MessageBatch:
        path = f"{BATCHES}/{_id(batch_id)}"
        return _answer(self.transport.json("GET", path), MessageBatch, f"GET {path}")

    def list(self, limit: Optional[int] = None, before_id: Optional[str] = None,
             after_id: Optional[str] = None) -> Iterator[MessageBatch]:
        """Every batch, newest first, fetching pages as the iterator advances.

        ``limit`` is the page size (1-1000). With ``before_id`` the pages go
        toward newer batches; otherwise from ``after_id`` (or the newest) on.
        """
        if before_id is not None and after_id is not None:
            raise ValueError("pass before_id or after_id, not both")
        cursor_before, cursor_after = before_id, after_id
        while True:
            params: Dict[str, Any] = {}
            if limit is not None:
                params["limit"] = limit
            if cursor_before is not None:
                params["before_id"] = cursor_before
            elif cursor_after is not None:
                params["after_id"] = cursor_after
            page = self.transport.json("GET", BATCHES, params=params)
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list):
                raise UnexpectedResponseError(
                    f"GET {BATCHES} answered with a body that is not a page of batches "
                    "(no 'data' list)")
            for item in data:
                yield _answer(item, MessageBatch, f"GET {BATCHES}")
            if not page.get("has_more"):
                return
            cursor = page.get("first_id" if cursor_before is not None else "last_id")
            if not data or cursor is None or cursor in (cursor_before, cursor_after):
                raise UnexpectedResponseError(
                    f"GET {BATCHES} answered has_more with an empty page or a cursor that "
                    f"does not move ({cursor!r}); stopped paging")
            if cursor_before is not None:
                cursor_before = cursor
            else:
                cursor_after = cursor

    def cancel(self, batch_id: str) -> MessageBatch:
        path = f"{BATCHES}/{_id(batch_id)}/cancel"
        return _answer(self.transport.json("POST", path), MessageBatch, f"POST {path}")

    def delete(self, batch_id: str) -> DeletedMessageBatch:
        path = f"{BATCHES}/{_id(batch_id)}"
        return _answer(self.transport.json("DELETE", path), DeletedMessageBatch,
                       f"DELETE {path}")

    def results(self, batch_id: Union[str, MessageBatch], *, raw: bool = False,
                context: Optional[CallContext] = None, call_hooks: bool = True
                ) -> Iterator[Any]:
        """Stream the results of an ended batch, one at a time (constant memory).

        Yields :class:`~claudebatch.BatchResult` objects, or plain dicts with
        ``raw=True``. ``on_result`` runs for each unless ``call_hooks=False``
        (a job calls it itself, once per result it keeps). The HTTP response is
        closed when the iteration ends, breaks or fails.
        """
        batch = batch_id if isinstance(batch_id, MessageBatch) else self.retrieve(batch_id)
        url = self._results_url(batch)
        has_hooks, typed_hooks = result_hooks(self.hook.on_result) if call_hooks else (False, False)
        has_notes = call_hooks and bool(self.hook.annotate_result.get_hookimpls())
        if not has_hooks and not has_notes:  # nothing but the caller sees them
            values: Iterator[Any] = self._result_lines(url, f"results of {batch.id}",
                                                       lines=False)
            return values if raw else _typed(values, f"results of {batch.id}")
        return self._stream_results(batch, url, raw=raw, has_hooks=has_hooks,
                                    has_notes=has_notes, typed=not raw or has_notes or typed_hooks,
                                    context=context if context is not None else self.context)

    def _results_url(self, batch: MessageBatch) -> str:
        """The batch's results_url, once it is sure the results exist there and that the
        API key may go there."""
        if not batch.ended:
            raise BatchNotEndedError(
                f"batch {batch.id} is {batch.processing_status}: results exist once it has "
                f"ended; call client.wait({batch.id!r}) first")
        if not batch.results_url:
            raise BatchNotEndedError(
                f"batch {batch.id} has no results_url (archived at {batch.archived_at}); "
                "its results are no longer available")
        url = batch.results_url
        try:
            trusted = self.transport.origins.trusts(url)
            why = f"is not on the API's origin {describe(self.transport.origins.base)}"
        except UnsafeURLError as exc:
            trusted, why = False, f"is refused: {exc}"
        if not trusted:
            raise UnsafeResultsURLError(
                f"results_url {url!r} of batch {batch.id} {why}; the API key is only sent "
                "there. If your results are served by a gateway you trust, allow its origin "
                "explicitly: BatchClient(allowed_origins=['https://gateway.example']) or "
                "--allow-origin https://gateway.example")
        return url

    def _stream_results(self, batch: MessageBatch, url: str, *, raw: bool, has_hooks: bool,
                        has_notes: bool, typed: bool, context: CallContext) -> Iterator[Any]:
        """``typed``: build each BatchResult (to yield, to annotate, or for an
        ``on_result`` that takes it); else the hooks get ``raw`` alone."""
        source = f"results of {batch.id}"
        on_result = direct_caller(self.hook.on_result)
        for value, line in self._result_lines(url, source):
            result = to_result(value, source=source) if typed else None
            if has_notes:
                assert result is not None
                value, annotated, _ = annotate(self.hook, value, result, context)
                if annotated is not result:
                    result, line = annotated, None
            if has_hooks:
                on_result(result=result, raw=value, line=line or result_line(value),
                          context=context, batch=batch)
            yield value if raw else result

    def _result_lines(self, url: str, source: str, *, lines: bool = True
                      ) -> Iterator[Tuple[Dict[str, Any], Optional[bytes]]]:
        """``(value, line as served)`` for each result at ``url`` (checked by ``results``);
        ``lines=False``: each value alone."""
        response = self.transport.request("GET", url, stream=True,
                                          headers={"accept": "application/x-jsonl"})
        try:
            yield from iter_lines(PieceReader(response.raw), source=source, lines=lines)
        finally:
            response.close()

    def _lines_of(self, batch: MessageBatch
                  ) -> Iterator[Tuple[Dict[str, Any], Optional[bytes]]]:
        """An ended batch's results as ``(value, line)``, each line as the service sent it
        (None for a line too long to hold), no hooks called: for a job, which writes the
        lines and calls the hooks itself."""
        return self._result_lines(self._results_url(batch), f"results of {batch.id}")

    # --- beside the batches ---------------------------------------------------

    def count_tokens(self, params: Dict[str, Any]) -> int:
        """Exact input tokens of one request's params (``POST /v1/messages/count_tokens``).

        Free and rate limited; used by cost estimates. Only the fields the endpoint
        takes are sent.
        """
        body = {k: params[k] for k in COUNT_TOKENS_FIELDS if k in params}
        data = json_bytes(body)
        answer = self.transport.json("POST", COUNT_TOKENS, body=lambda: data)
        tokens = answer.get("input_tokens") if isinstance(answer, dict) else None
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            raise UnexpectedResponseError(
                f"POST {COUNT_TOKENS} answered with a body that has no input_tokens count")
        return tokens

    # --- whole jobs -----------------------------------------------------------

    def job(self, source: Any, *, name: Optional[str] = None, output: Optional[str] = None,
            poll_interval: Optional[float] = None, **options: Any) -> Job:
        """A :class:`~claudebatch._job.Job` for ``source``, not yet started (see ``run``)."""
        from ._job import Job

        return Job(self, source, name=name, output=output, poll_interval=poll_interval,
                   **options)

    def enqueue(self, source: Any, *, name: str, store: Any = None,
                max_in_flight: Optional[int] = None, poll_interval: Optional[float] = None,
                **options: Any) -> int:
        """Put a job in a store for ``claudebatch worker`` processes to run; nothing is sent.

        Validates and splits ``source`` as :meth:`run` would. ``store``: a job store
        (:class:`~claudebatch.store.JobStore`, e.g. ``PostgresStore(dsn)``); default: the
        one among this client's plugins. Returns the number of batches queued; the
        results come out with ``store.export(name, path)`` from any host (docs/scale.md).
        """
        from .store import JobStore
        from .store._worker import enqueue

        if store is None:
            stores = [p for p in self.plugins if isinstance(p, JobStore)]
            if not stores:
                raise ConfigurationError("enqueue needs a job store: pass store=PostgresStore("
                                         "dsn) (or SQLiteStore(path)), or register one as a "
                                         "plugin")
            store = stores[0]
        return enqueue(store, self, source, name=name, max_in_flight=max_in_flight,
                       poll_interval=poll_interval, **options)

    def run(self, source: Any, *, name: Optional[str] = None, output: Optional[str] = None,
            poll_interval: Optional[float] = None, **options: Any) -> JobReport:
        """Run a whole dataset: validate, split, submit, poll, stream results to ``output``.

        ``source`` is a JSONL path or an iterable of Requests or dicts. Returns
        the JobReport; ``report.results()`` joins each request to its result.
        """
        return self.job(source, name=name, output=output, poll_interval=poll_interval,
                        **options).run()

    # --- waiting --------------------------------------------------------------

    def wait(self, batch_id: str, *, timeout: Optional[float] = None,
             poll_interval: Optional[float] = None,
             context: Optional[CallContext] = None) -> MessageBatch:
        """Poll until the batch has ended, calling ``on_poll`` after each check.

        Waits grow from ``poll_interval`` (default 30 s) with backoff. Without
        a ``timeout`` it gives up an hour past the batch's ``expires_at``.
        Raises :class:`~claudebatch.errors.WaitTimeoutError` with the last state.
        """
        first = self.poll_interval if poll_interval is None else poll_interval
        check_interval(first, "poll_interval")
        if timeout is not None:
            check_interval(timeout, "timeout", allow_zero=True)
        watch = Watch(_id(batch_id))
        poll_until_ended(self, [watch], context=context if context is not None else self.context,
                         first_interval=first, on_ended=lambda _: True, timeout=timeout)
        assert watch.batch is not None
        return watch.batch


def _id(batch_id: str) -> str:
    if not isinstance(batch_id, str) or not BATCH_ID.fullmatch(batch_id):
        raise InvalidBatchIdError(
            f"not a batch id: {batch_id!r} (expected letters, digits, '_' or '-', such as "
            "'msgbatch_013Zva2CMHLNnXjNJJKqJ2EF')")
    return batch_id


def _credential(given: Optional[str], env: str, what: str, argument: str) -> Optional[str]:
    """A credential from its argument, else its environment variable; checked, never shown."""
    value = given if given is not None else os.environ.get(env)
    value = value.strip() if isinstance(value, str) else value
    if value and not _HEADER_SAFE.match(value):
        raise ConfigurationError(
            f"the {what} holds whitespace or control characters inside it; check {env} or "
            f"the {argument} argument (it is not shown)")
    return value or None


class WatchedBody:
    """A batch's body as it is read to be sent, telling ``report(bytes read)`` every MiB
    and at its end (an upload's progress). Rewinding starts the count again."""

    STEP = 1 << 20

    def __init__(self, body: IO[bytes], size: int, report: Callable[[int], Any]) -> None:
        self._body = body
        self._size = size
        self._report = report
        self._sent = 0
        self._told = 0

    def read(self, n: int = -1) -> bytes:
        chunk = self._body.read(n)
        self._sent += len(chunk)
        if self._sent - self._told >= self.STEP or (self._sent >= self._size > self._told):
            self._told = self._sent
            self._report(self._sent)
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self._body.seek(offset, whence)
        self._sent = self._told = position
        return position

    def tell(self) -> int:
        return self._body.tell()

    def __getattr__(self, name: str) -> Any:  # fileno and the rest, as the file has them
        return getattr(self._body, name)


def made_nothing(error: BaseException) -> bool:
    """True when a failed create certainly made no batch (see ``on_submit_error``)."""
    if isinstance(error, (ValidationError, UnsafeURLError)):
        return True  # refused before sending, or a redirect not followed
    return isinstance(error, APIStatusError) and error.status_code != 504


def check_interval(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as seconds, refused unless a finite number > 0 (or >= 0 with allow_zero)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigurationError(f"{name} must be a finite number of seconds {bound}, "
                                 f"got {value!r}")
    return float(value)


def _answer(data: Any, cls: Type[T], call: str) -> T:
    """A 2xx body as ``cls``, or an error naming the call when it is something else."""
    try:
        value = structure(data, cls)
    except Exception as exc:
        raise UnexpectedResponseError(
            f"{call} answered with a body that is not a {cls.__name__} ({_why(exc)})"
        ) from None
    batch_id = getattr(value, "id", None)
    if not isinstance(batch_id, str) or not BATCH_ID.fullmatch(batch_id):
        raise UnexpectedResponseError(
            f"{call} answered with a {cls.__name__} whose id is not a batch id: {batch_id!r}")
    return value


def _why(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no field {exc.args[0]!r}" if exc.args else "a field is missing"
    return f"{type(exc).__name__}: {exc}"[:200]


def _typed(values: Iterator[Dict[str, Any]], source: str) -> Iterator[BatchResult]:
    """Each result line as a BatchResult (built lazily: see ``_lazy``), nothing else."""
    for value in values:
        yield to_result(value, source=source)
