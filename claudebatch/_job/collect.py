"""The output side of a job: results streamed, checked and written, each exactly once.

The core alone writes the output: results downloaded, results an earlier run
stored (replayed), and the final rewrite keeping one line per custom_id.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Set

import attrs

from .. import _json
from .._hookcall import direct_caller
from .._output import OutputFile, replace_lines, result_line
from .._report import BatchSummary
from .._results import annotate, result_hooks, to_result
from .._spool import Spool
from ..errors import APIConnectionError, BatchNotEndedError
from ..limits import RESULT_STREAM_ATTEMPTS
from ..logcontext import about
from ..models import BatchResult, MessageBatch
from ..policies import backoff_delay
from .plan import PlannedBatch
from .reuse import ReusePlan

if TYPE_CHECKING:
    from .run import Job, ResumeState

logger = logging.getLogger("claudebatch.job")


@attrs.define
class SubmittedBatch:
    plan: PlannedBatch
    spool: Spool
    summary: BatchSummary
    batch: Any = None  # the latest MessageBatch
    done: bool = False
    #: custom_ids whose result line is in the output already (replayed from a store).
    written: Set[str] = attrs.field(factory=set)

    @property
    def id(self) -> str:
        """The batch's id (a wrong adoption's replacement changes it)."""
        return self.summary.id

    def custom_ids(self) -> Iterator[str]:
        return (custom_id for custom_id, _, _ in
                self.spool.custom_ids(self.plan.start, self.plan.end))


class Collector:
    """Writes one job's results: what it counted, what never came."""

    def __init__(self, job: Job, out: OutputFile) -> None:
        self.job = job
        self.out = out
        self.client = job.client
        self.hook = job.client.hook
        self.context = job.context
        self.name = job.name
        self.output = job.output
        self.clock = job.clock

        self.counts: Counter[str] = Counter()
        #: Why each succeeded result stopped (``end_turn``, ``max_tokens``, ``refusal``...).
        self.stop_reasons: Counter[str] = Counter()
        #: custom_ids whose latest attempt got no result (insertion-ordered).
        self.missing: Dict[str, None] = {}
        self.results_written = 0
        #: The current pass's reuse decisions (keys, duplicates), or None.
        self.reuse: Optional[ReusePlan] = None
        self._wants_notes = self._wants_results = self._wants_keep = False  # _see_hooks
        self._wants_typed = False  # an on_result takes ``result`` (not only ``raw``)
        self._keep_typed = False  # a keep_answer does
        self._on_result: Callable[..., None] = self.hook.on_result  # _see_hooks
        self._keep_answer: Callable[..., None] = self.hook.keep_answer

    @property
    def pass_number(self) -> int:
        return self.job.pass_number

    def replay(self, submitted: List[SubmittedBatch], state: ResumeState) -> None:
        """Write what an earlier run stored for these batches, showing it to every plugin.

        A batch whose results were all stored is done; one partly stored is still
        downloaded, and only the results not written here are added.
        """
        assert state.stored is not None
        self._see_hooks()
        self.context.replaying = True
        try:
            for item in submitted:
                ids = list(item.custom_ids())
                expected = set(ids)
                where = self._positions(item, ids)
                counts: Counter[str] = Counter()
                for line in state.stored(item.summary.id):
                    value = _json.loads(line)
                    custom_id = value.get("custom_id")
                    if custom_id not in expected or custom_id in item.written:
                        continue
                    item.written.add(custom_id)
                    self.write(value, item, counts, source="the store", line=line,
                               at=where.get(custom_id) if where else None)
                item.summary.counts = dict(counts)
                self.counts.update(counts)
                if item.done and item.written != expected:
                    item.done = False  # said finished, but not all stored: fetch the rest
        finally:
            self.context.replaying = False

    def proves_ours(self, item: SubmittedBatch) -> bool:
        """True when every result of the adopted batch fits a request sent in it.

        Read through once before anything is written: a batch of the same size
        made by someone else in the same minute must not put its answers here. A
        result fits when its custom_id is one this batch sent and, for an answer,
        its model is the one asked for (the service may add a date to an alias).
        """
        models = {request.custom_id: str(request.params.get("model", ""))
                  for request in item.spool.requests(item.plan.start, item.plan.end)}
        for attempt in range(1, RESULT_STREAM_ATTEMPTS + 1):
            try:
                for value in self.client.results(item.batch, raw=True, call_hooks=False):
                    why = misfit(value, models)
                    if why:
                        logger.warning("job %s: batch %s, taken for the lost create of pass %d "
                                       "batch %d, is not ours: %s", self.name, item.summary.id,
                                       self.pass_number, item.plan.index, why)
                        return False
                break
            except APIConnectionError as exc:
                if attempt == RESULT_STREAM_ATTEMPTS:
                    raise
                self.pause_after_broken_stream(item, attempt, exc)
        self.client.confirm_adoption(item.summary.id)
        logger.info("job %s: batch %s proved to be the lost create's (its results are ours)",
                    self.name, item.summary.id)
        return True

    def _see_hooks(self) -> None:
        """Which result hooks have plugins: looked up once per batch, not per result."""
        self._wants_notes = bool(self.hook.annotate_result.get_hookimpls())
        self._wants_results, self._wants_typed = result_hooks(self.hook.on_result)
        self._wants_keep, self._keep_typed = result_hooks(self.hook.keep_answer)
        self._on_result = direct_caller(self.hook.on_result)
        self._keep_answer = direct_caller(self.hook.keep_answer)

    def _positions(self, item: SubmittedBatch, ids: List[str]) -> Optional[Dict[str, int]]:
        """custom_id -> its index among the requests the pass sent, when reuse needs it."""
        if self.reuse is None or not (self.reuse.followers or self._wants_keep):
            return None
        return {custom_id: item.plan.first + i for i, custom_id in enumerate(ids)}

    def write(self, value: Dict[str, Any], item: SubmittedBatch, counts: Counter[str], *,
              source: str, line: Optional[bytes] = None, at: Optional[int] = None) -> None:
        """One result into the output: annotated by the plugins that do, shown to
        ``on_result``, written, counted. ``line``: ``value`` as served, if at hand.
        ``at``: the request's index in the pass, to keep its answer and answer its
        duplicates."""
        keep = None
        if at is not None and self.reuse is not None and self._wants_keep \
                and not self.context.replaying:
            keep = self.reuse.key_of(at)
        self._emit(value, item.batch, counts, source=source, line=line, keep=keep)
        if at is not None and self.reuse is not None and at in self.reuse.followers:
            self._fan_out(value, item, at, source=source)

    def _fan_out(self, value: Dict[str, Any], item: SubmittedBatch, at: int, *, source: str,
                 only: Optional[Set[str]] = None) -> None:
        """The duplicates of request ``at`` get its answer (``only``: just these)."""
        assert self.reuse is not None
        followers = [f for f in self.reuse.followers.get(at, ()) if only is None or f in only]
        if not followers:
            return
        # made now, even from a replayed answer: a store may not hold them yet
        leader = f"{self.name}/{value['custom_id']}"
        replaying, self.context.replaying = self.context.replaying, False
        self.context.reusing = True
        try:
            for custom_id in followers:
                self._emit({**value, "custom_id": custom_id, "reused_from": leader},
                           item.batch, self.counts, source=source)
        finally:
            self.context.reusing = False
            self.context.replaying = replaying

    def _emit(self, value: Dict[str, Any], batch: MessageBatch, counts: Counter[str], *,
              source: str, line: Optional[bytes] = None, keep: Optional[str] = None) -> None:
        """Annotate, keep for reuse (``keep``: its key; before ``on_result``, so a store
        commits the answer with its result), show to ``on_result``, write, count."""
        served, served_line = value, line
        result: Optional[BatchResult] = None
        usable = True
        if self._wants_notes:
            noted, result, usable = annotate(self.hook, value, to_result(value, source=source),
                                             self.context)
            if noted is not value:
                value, line = noted, None  # the plugins' fields go in
        if line is None:
            line = result_line(value)
        if keep is not None and usable and served["result"].get("type") == "succeeded":
            if result is None and self._keep_typed:
                result = to_result(value, source=source)
            self._keep_answer(key=keep, result=result, raw=served,
                              line=served_line or result_line(served), context=self.context,
                              batch=batch)
        if self._wants_results:
            if result is None and self._wants_typed:
                result = to_result(value, source=source)
            self._on_result(result=result, raw=value, line=line, context=self.context,
                            batch=batch)
        self.out.write_line(line)
        tally(value, counts, self.stop_reasons)

    def write_reused(self, plan: ReusePlan, skip: Set[str]) -> None:
        """The answers a store gave for this pass's reused requests, into the output
        (``on_result`` sees each with the batch that bought it, ``context.reusing``)."""
        self._see_hooks()
        batches: Dict[str, MessageBatch] = {}  # few: the batches that bought the answers
        self.context.reusing = True
        try:
            for value, bought in plan.iter_answers():
                if value["custom_id"] not in skip:
                    batch = batches.get(bought.batch_id)
                    if batch is None:
                        batch = batches[bought.batch_id] = bought.batch()
                    self._emit(value, batch, self.counts, source="the store")
        finally:
            self.context.reusing = False
        self.out.flush()

    def collect(self, item: SubmittedBatch, *, resuming: bool) -> None:
        """Stream one ended batch's results into the output; note any that never came.

        Only results for requests sent in this batch are written, each once; a
        broken download is tried again with backoff, skipping what is written.
        """
        with about(batch=item.summary.id):
            self._collect(item, resuming=resuming)

    def _collect(self, item: SubmittedBatch, *, resuming: bool) -> None:
        ids = list(item.custom_ids())  # in the batch's order: the missing are listed so
        expected = set(ids)
        seen: Set[str] = self.ids_in_output(expected) if resuming else set(item.written)
        counts: Counter[str] = Counter()  # of what this download writes
        foreign = 0
        self._see_hooks()
        where = self._positions(item, ids)
        unwritten: Set[str] = set()  # duplicates a resumed output lacks, of leaders it has
        if resuming and where and self.reuse is not None and self.reuse.followers:
            dups = {f for cid in seen for f in self.reuse.followers.get(where[cid], ())}
            unwritten = dups - self.ids_in_output(dups)
        attempt = 1
        while seen != expected:
            try:
                for value, line in self.client._lines_of(item.batch):
                    custom_id = value["custom_id"]
                    if custom_id in seen:  # written already (a resumed download): not again
                        if unwritten and where and custom_id in where:
                            self._fan_out(value, item, where[custom_id], source=item.summary.id,
                                          only=unwritten)
                        continue
                    if custom_id not in expected:
                        foreign += 1
                        continue
                    seen.add(custom_id)
                    self.write(value, item, counts, source=item.summary.id, line=line,
                               at=where[custom_id] if where else None)
                    self.results_written += 1
                break
            except APIConnectionError as exc:
                if attempt == RESULT_STREAM_ATTEMPTS:
                    logger.error("job %s: results of %s broke %d times; %d result(s) not "
                                 "downloaded (a rerun with a job store fetches them): %s",
                                 self.name, item.summary.id, attempt,
                                 len(expected) - len(seen), exc)
                    break
                self.pause_after_broken_stream(item, attempt, exc)
                attempt += 1
            except BatchNotEndedError as exc:  # archived: the results are gone
                logger.error("job %s: %s", self.name, exc)
                break
        self.out.flush()
        if foreign:
            logger.warning("job %s: batch %s answered %d custom_id(s) it was never sent; "
                           "not written", self.name, item.summary.id, foreign)
        missing = 0
        followers = self.reuse.followers if self.reuse is not None else {}
        for i, custom_id in enumerate(ids):
            group = [custom_id, *followers.get(item.plan.first + i, ())]
            if custom_id in seen:
                for one in group:
                    self.missing.pop(one, None)
            else:
                for one in group:
                    self.missing[one] = None
                missing += 1
        item.summary.counts = dict(Counter(item.summary.counts) + counts)
        item.summary.missing = missing
        self.counts.update(counts)
        item.done = True
        self.hook.on_batch_end(batch=item.batch, context=self.context, complete=missing == 0)

    def pause_after_broken_stream(self, item: SubmittedBatch, attempt: int,
                                   exc: BaseException) -> None:
        delay = backoff_delay(attempt - 1)
        logger.warning("job %s: results of %s broke (attempt %d of %d), again in %.1f s: %s",
                       self.name, item.summary.id, attempt, RESULT_STREAM_ATTEMPTS, delay, exc)
        self.clock.sleep(delay)

    def ids_in_output(self, wanted: Set[str]) -> Set[str]:
        """On resume: which of ``wanted`` already have a line in the output."""
        found: Set[str] = set()
        try:
            handle = open(self.output, "rb")
        except FileNotFoundError:
            return found
        with handle:
            for line in handle:
                if line.strip():
                    custom_id = _json.loads(line).get("custom_id")
                    if custom_id in wanted:
                        found.add(custom_id)
        return found

    def keep_last_attempts(self, resubmitted: Set[str]) -> None:
        """Rewrite the output so each resubmitted custom_id keeps only its last line.

        A custom_id whose latest attempt got no result keeps none (it is
        missing; an earlier attempt's line would pass for its answer). Also
        recounts the result types from the output, which after a resume holds
        lines written by the earlier run too.
        """
        lines_left: Counter[str] = Counter()
        with open(self.output, "rb") as handle:
            for line in handle:
                custom_id = _json.loads(line)["custom_id"]
                if custom_id in resubmitted:
                    lines_left[custom_id] += 1
        counts: Counter[str] = Counter()
        stops: Counter[str] = Counter()
        still_missing = set(self.missing)

        def kept() -> Iterator[bytes]:
            with open(self.output, "rb") as src:
                for line in src:
                    value = _json.loads(line)
                    custom_id = value["custom_id"]
                    if custom_id in resubmitted:
                        lines_left[custom_id] -= 1
                        if lines_left[custom_id] > 0 or custom_id in self.missing:
                            continue
                    still_missing.discard(custom_id)
                    tally(value, counts, stops)
                    yield line.rstrip(b"\n")

        replace_lines(self.output, kept())
        self.counts = counts
        self.stop_reasons = stops
        self.missing = {m: None for m in self.missing if m in still_missing}


_STOP_REASON = re.compile(r"[a-z_]{1,64}")
#: Stop reasons seen to be names already (a few: bounded, whatever a server sends).
_NAMED_STOPS: Set[str] = set()


def tally(value: Dict[str, Any], counts: Counter[str], stops: Counter[str]) -> None:
    """Count one result line: its type, and why a succeeded one stopped."""
    result = value["result"]
    kind = result.get("type", "unknown")
    counts[kind] += 1
    if kind == "succeeded":
        message = result.get("message")
        reason = message.get("stop_reason") if isinstance(message, dict) else None
        if type(reason) is str and reason in _NAMED_STOPS:  # the usual few, checked once
            stops[reason] += 1
        # a name, as the API's are: anything else (a hostile gateway) is not shown as given
        elif isinstance(reason, str) and _STOP_REASON.fullmatch(reason):
            if len(_NAMED_STOPS) < 64:
                _NAMED_STOPS.add(reason)
            stops[reason] += 1
        else:
            stops["unknown"] += 1


def misfit(value: Dict[str, Any], models: Dict[str, str]) -> Optional[str]:
    """Why a result line cannot be the answer to one of these requests, or None."""
    custom_id = value["custom_id"]
    asked = models.get(custom_id)
    if asked is None:
        return f"it holds custom_id {custom_id!r}, which that batch never sent"
    message = value["result"].get("message")
    answered = message.get("model") if isinstance(message, dict) else None
    if isinstance(answered, str) and asked and answered != asked \
            and not answered.startswith(asked + "-"):
        return f"{custom_id!r} was answered by {answered}, but {asked} was asked"
    return None
