"""``PromptCache``: the plugin object a user passes in ``BatchClient(plugins=[...])``.

Inside a job, ``before_pass`` (``tryfirst``) places the breakpoints of every batch of a
pass before the first is sent, so the cost plugin's whole-pass budget check (a plain
``before_pass``) sees the requests as they will go out:

1. one pass over all the pass's batches counts how many requests share each cacheable
   prefix (only counts are kept, never the requests), so a prefix shared across the
   batches of a pass is found too;
2. a second pass over each batch decides each request's breakpoints from those counts
   (the plan, with its predicted figures), and a ``requests.transform`` applies the same
   decision to each request as the body is written.

The counting also notes, in one byte per request, whether the request's fate is settled
whatever the others share (too short to cache: found by the cheapest test first; or
marked by the caller). A batch holding only such requests gets its figures from those
bytes and no transform, so the job sends its body as planned, reading nothing again.

In a dry run (``context.dry_run``) the same placement is made and only counted.
``before_submit`` does the same for one batch when nothing planned it (a plain
``client.create``: no job, no ``before_pass``). A batch planned in ``before_pass``
gets no second transform.

With ``prime=True`` a second ``before_submit`` implementation, ``trylast`` so that a
budget veto comes first, sends one request per shared prefix as its own small batch
and waits for it, so the batch that follows reads the cache instead of racing to
write it. ``on_result`` sums the cache usage; ``job_summary`` reports it.
"""

from __future__ import annotations

import heapq
import logging
from decimal import Decimal
from typing import Any, Dict, Iterator, List, Mapping, Optional, Set, Union

from claudebatch import (
    CallContext,
    JobContext,
    JobPlan,
    JobReport,
    MessageBatch,
    PendingBatch,
    Request,
    hookimpl,
)
from claudebatch.catalog import packaged_table
from claudebatch.limits import MAX_BATCH_BYTES, MIN_MAX_TOKENS
from claudebatch.limits import json_bytes as dumps

from .figures import Observed, Predicted, summary
from .minimums import min_cacheable_tokens
from .placement import (
    TTLS,
    Choice,
    PrefixCounts,
    Rules,
    added_bytes,
    apply,
    break_even_group,
    plan_request,
    triage,
)
from .prompt import Boundary, Prompt, analyse
from .savings import cache_saving

logger = logging.getLogger("claudebatch.cache")

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
#: Prefixes remembered as already cached by an earlier batch, at most.
MAX_WARM_PREFIXES = 100_000
PRIMER_ID = "cache-primer-{}"
_EMPTY_BODY = len(b'{"requests":[]}')
#: A pass's requests as counted, one byte each, in the order of its batches: 0 when the
#: request's breakpoints depend on what the others share, else the index + 1 of the reason
#: it gets none whatever they share. A batch holding no 0 needs no transform at all.
FIXED_REASONS = ("too-short", "user-marked", "full", "invalid-ttls")
_UNDECIDED = 0
_CODES = {reason: code for code, reason in enumerate(FIXED_REASONS, 1)}


class _BatchPlan:
    """One batch's decisions: what the transform needs, and the figures it predicts."""

    def __init__(self, pending: PendingBatch, counts: PrefixCounts, warm: Dict[int, float],
                 rules: Rules) -> None:
        self.pending = pending
        self.counts = counts
        self.warm = warm  # a snapshot: the transform must decide as the plan did
        self.rules = rules
        self.predicted = Predicted()
        self.groups: Dict[int, List[int]] = {}  # deepest prefix key -> [requests, tokens]
        self.primed: Set[int] = set()
        self.primers_sent = False

    def transform(self, request: Request) -> Request:
        prompt, choice = plan_request(request.params, self.counts, self.warm, self.rules)
        if not choice.marks:
            return request
        assert prompt is not None  # marks come from an analysed prompt
        return Request(request.custom_id, apply(request.params, prompt, choice.marks))

    def marked_requests(self) -> Iterator[Request]:
        """The batch's requests as marked (read again: a plain create's plan)."""
        return iter(self.pending)

    def count_marked(self, prompt: Prompt, choice: Choice) -> Boundary:
        """Add a marked request to the figures; the deepest boundary it marks."""
        deepest = prompt.boundaries[choice.marks[0].at]
        predicted = self.predicted
        predicted.requests_marked += 1
        predicted.breakpoints_added += len(choice.marks)
        predicted.cacheable_tokens += deepest.tokens
        group = self.groups.setdefault(deepest.key, [0, deepest.tokens])
        group[0] += 1
        return deepest

    def read_tokens(self) -> int:
        """Tokens that can be read: all but each group's first request, unless the
        prefix was written before the batch (a primer, or an earlier batch)."""
        total = 0
        for key, (size, tokens) in self.groups.items():
            written_before = key in self.warm or key in self.primed
            total += tokens * (size if written_before else size - 1)
        return total


class _PassPlan(_BatchPlan):
    """One batch of a job's pass, decided request by request as its body is written.

    The job writes the pass's bodies in order, reading each request once: this plan
    decides each request's marks then and counts the figures as it goes. When its
    last request is written, its groups count as cached for the batches after it.
    """

    def __init__(self, pending: PendingBatch, counts: PrefixCounts, warm: Dict[int, float],
                 rules: Rules, *, grow_budget: int, now: float) -> None:
        super().__init__(pending, counts, warm, rules)
        self.shared_warm = warm  # the pass's: this batch's groups go in once it is written
        self.grow_budget = grow_budget
        self.now = now
        self.size = len(pending)
        self.seen = 0
        self.grown = 0
        self.first_marked: Dict[int, Request] = {}  # a marked request per group: primers
        self._snapshot: Optional[Dict[int, float]] = None

    def transform(self, request: Request) -> Request:
        if self._snapshot is None:  # decided as the pass stood when this batch began
            self._snapshot = dict(self.shared_warm)
        if self.seen == self.size:  # written again: count afresh
            self.seen, self.grown, self.groups, self.first_marked = 0, 0, {}, {}
            self.predicted = Predicted()
        self.warm = self._snapshot
        self.seen += 1
        predicted = self.predicted
        predicted.requests += 1
        prompt, choice = plan_request(request.params, self.counts, self.warm, self.rules)
        out = request
        if not choice.marks:
            predicted.unmarked[choice.reason] += 1
        else:
            assert prompt is not None  # marks come from an analysed prompt
            grows = added_bytes(prompt, choice, request.params)
            if self.grown + grows > self.grow_budget:
                predicted.unmarked["batch-too-large"] += 1  # the body would pass the limit
                predicted.batches_too_large = 1
            else:
                self.grown += grows
                deepest = self.count_marked(prompt, choice)
                out = Request(request.custom_id, apply(request.params, prompt, choice.marks))
                self.first_marked.setdefault(deepest.key, out)
        if self.seen == self.size:
            predicted.groups = len(self.groups)
            for key in self.groups:  # the batches after it find these cached
                self.shared_warm[key] = self.now
        return out

    def marked_requests(self) -> Iterator[Request]:
        return iter(self.first_marked.values())

    def settle(self, codes: bytearray) -> None:
        """The figures of a batch none of whose requests can be marked (``codes`` as the
        pass counted them, none undecided): what its transform would have counted, with
        no transform, so the job writes the body as planned, reading nothing again."""
        predicted = self.predicted
        predicted.requests = self.seen = len(codes)
        for code, reason in enumerate(FIXED_REASONS, 1):
            found = codes.count(code)
            if found:
                predicted.unmarked[reason] += found


class PromptCache:
    """Find the prefix each group of requests shares, mark it for caching, report the hits.

    ``ttl`` is the breakpoints' lifetime, ``"1h"`` (default: batches often take
    longer than five minutes) or ``"5m"``. ``prime=True`` sends one request per shared
    prefix ahead of each batch and waits for it. ``override=True`` also adds
    breakpoints to requests that already carry ``cache_control`` (theirs are kept and
    counted against the limit of four); by default those are left as they are.
    ``min_group`` is the fewest requests that must share a prefix for it to be marked
    (default: the break-even for the TTL, 3 for 1h, 2 for 5m). ``min_tokens`` maps
    model id prefixes to minimum cacheable lengths, ahead of the built-in table.
    ``prime_limit`` caps the primers per batch (largest groups first);
    ``prime_timeout`` bounds the wait for them in seconds.

    After a job: :attr:`hit_rate`, :attr:`predicted`, :attr:`observed`,
    :attr:`saved_usd` (with the cost plugin), and the same in ``report.plugins["cache"]``.
    """

    def __init__(self, ttl: str = "1h", prime: bool = False, *, override: bool = False,
                 min_group: Optional[int] = None, min_tokens: Optional[Mapping[str, int]] = None,
                 prime_limit: int = 100, prime_timeout: float = 3600.0) -> None:
        if ttl not in TTLS:
            raise ValueError(f"ttl must be one of {', '.join(TTLS)}, got {ttl!r}")
        if min_group is not None and min_group < 2:
            raise ValueError(f"min_group must be at least 2 (a prefix read by no other "
                             f"request only costs a write), got {min_group}")
        if prime_limit < 1:
            raise ValueError(f"prime_limit must be at least 1, got {prime_limit}")
        self.ttl = ttl
        self.prime = prime
        self.override = override
        self.min_group = min_group if min_group is not None else break_even_group(ttl)
        self.min_tokens = dict(min_tokens or {})
        self.prime_limit = prime_limit
        self.prime_timeout = prime_timeout
        self.predicted = Predicted()
        self.observed = Observed()
        #: Usage of the primer requests (their own batches, not in the job's output).
        self.primer_usage = Observed()
        self.primer_batch_ids: List[str] = []
        self.saved_usd: Optional[Decimal] = None
        #: What was decided for the batch planned last (sent or not).
        self.last_batch: Optional[Predicted] = None
        self._minimums: Dict[str, int] = {}
        self._warm: Dict[int, float] = {}  # prefix key -> when a batch marking it was sent
        self._plan: Optional[_BatchPlan] = None  # the batch being submitted
        self._planned: Dict[PendingBatch, _BatchPlan] = {}  # by before_pass, not yet sent
        self._dry_plans: List[_PassPlan] = []
        self._pass_counts = PrefixCounts()
        self._pass_codes = bytearray()  # FIXED_REASONS codes of the pass being counted
        self._count_rules = self._rules()
        self._priming = False

    def __repr__(self) -> str:
        return f"PromptCache(ttl={self.ttl!r}, prime={self.prime!r})"

    # --- figures --------------------------------------------------------------

    @property
    def hit_rate(self) -> Optional[float]:
        """Cache reads / (reads + writes), in tokens, over the job's results; None
        before any result went through the cache."""
        return self.observed.hit_rate

    @property
    def cache_read_tokens(self) -> int:
        return self.observed.cache_read_tokens

    @property
    def cache_write_tokens(self) -> int:
        return self.observed.cache_write_tokens

    @property
    def cacheable_tokens_predicted(self) -> int:
        return self.predicted.cacheable_tokens

    def summary(self) -> Dict[str, Any]:
        """The figures ``job_summary`` reports, as a dict."""
        return summary(self.predicted, self.observed, self.saved_usd, self.primer_usage)

    def reset(self) -> None:
        """Forget the figures (a new job does this by itself)."""
        self.predicted = Predicted()
        self.observed = Observed()
        self.primer_usage = Observed()
        self.primer_batch_ids = []
        self.saved_usd = None

    # --- hooks ----------------------------------------------------------------

    @hookimpl
    def on_job_start(self, context: JobContext) -> None:
        """A new job starts with fresh figures (what is warm in the cache stays); its
        prefixes are counted as the job plans each pass (no second read of it)."""
        self._planned = {}
        self._pass_counts = PrefixCounts()
        self._pass_codes = bytearray()
        self._count_rules = self._rules()
        self.reset()
        context.on_planned(self._count_request)

    def _count_request(self, request: Request) -> None:
        """Count the request's prefixes, and note whether its marks are already settled."""
        prompt, reason = triage(request.params, self._count_rules)  # the cheap test first
        self._pass_codes.append(_CODES[reason] if reason is not None else _UNDECIDED)
        if prompt is not None and reason != "too-short":  # a too-short one counts nothing
            self._pass_counts.add(prompt, self._min_tokens(prompt.model))

    @hookimpl(tryfirst=True)
    def before_pass(self, batches: List[PendingBatch], context: JobContext) -> None:
        """Mark every batch of a job's pass, from prefixes counted across all of them.

        Each request is decided as its body is written (the job reads it once). In a
        dry run the same placement is only counted: nothing is sent or warmed."""
        counts, self._pass_counts = self._pass_counts, PrefixCounts()
        codes, self._pass_codes = self._pass_codes, bytearray()
        if len(codes) != sum(len(pending) for pending in batches):
            codes = bytearray()  # not counted as this pass: every batch decides as written
        now = self._now(context)
        warm = self._live_warm(now)
        rules = self._rules()
        grow_budget = max(0, MAX_BATCH_BYTES - context.limits.max_bytes)
        self._planned = {}
        self._dry_plans = []
        start = 0
        for pending in batches:
            plan = _PassPlan(pending, counts, warm, rules, grow_budget=grow_budget, now=now)
            mine = codes[start:start + len(pending)]
            start += len(pending)
            if mine and _UNDECIDED not in mine:
                plan.settle(mine)  # nothing to mark: the body goes out as planned
            else:
                pending.transform(plan.transform)
            if context.dry_run:
                self._dry_plans.append(plan)
            else:
                self._planned[pending] = plan

    @hookimpl(tryfirst=True)
    def before_submit(self, requests: PendingBatch, context: CallContext) -> None:
        if self._priming:
            return  # the primer batch: already marked
        if self._plan is not None and self._plan.pending is requests:
            return  # refused for a full queue and tried again: marked (and primed) already
        plan = self._planned.pop(requests, None)  # marked in before_pass already
        if plan is None:
            plan = self._make_plan(requests, context)
        self._plan = plan

    @hookimpl(trylast=True, specname="before_submit")
    def prime_before_submit(self, requests: PendingBatch, context: CallContext) -> None:
        """Runs after every other before_submit: a budget veto stops the primer too."""
        plan = self._plan
        if self._priming or not self.prime or plan is None or plan.pending is not requests \
                or plan.primers_sent:
            return
        plan.primers_sent = True  # once: a create refused for a full queue comes again
        self._send_primers(plan, context)

    @hookimpl
    def after_submit(self, batch: MessageBatch, requests: PendingBatch,
                     context: CallContext) -> None:
        plan = self._plan
        if self._priming or plan is None or plan.pending is not requests:
            return
        self._plan = None
        now = self._now(context)
        for key in plan.groups:
            self._warm[key] = now
        if len(self._warm) > MAX_WARM_PREFIXES:
            self._drop_cold(now)
        if isinstance(context, JobContext):
            self._add_figures(plan)

    @hookimpl
    def on_result(self, raw: Dict[str, Any], context: CallContext) -> None:
        """Sum the usage as the result line holds it (no typed result is built for it)."""
        body = raw.get("result")
        if type(body) is not dict or body.get("type") != "succeeded":
            return  # errored, canceled and expired results carry no usage
        message = body.get("message")
        model = message.get("model") if type(message) is dict else None
        if type(model) is not str:
            return  # not a message (a typed result would refuse the line): nothing to count
        usage = message.get("usage") or {}  # type: ignore[union-attr]
        if self._priming:
            self.primer_usage.add_raw(model, usage)
        elif isinstance(context, JobContext):  # results fetched by hand are not the job's
            self.observed.add_raw(model, usage)

    @hookimpl
    def job_summary(self, report: Union[JobReport, JobPlan], context: JobContext
                    ) -> Optional[Dict[str, Any]]:
        if isinstance(report, JobPlan):  # the bodies are written: every plan has its figures
            for plan in self._dry_plans:
                if self.prime:
                    primed = self._primer_keys(plan)
                    plan.primed.update(primed)
                    self.predicted.primers += len(primed)
                self._add_figures(plan)
            self._dry_plans = []
            return {"cache": summary(self.predicted, None, None, None)}
        self.saved_usd = cache_saving(packaged_table(), self.observed.by_model,
                                      self.primer_usage.all_by_model)
        return {"cache": self.summary()}

    # --- planning -------------------------------------------------------------

    def _rules(self) -> Rules:
        return Rules(self.ttl, self.override, self.min_group, self._min_tokens)

    def _min_tokens(self, model: str) -> int:
        found = self._minimums.get(model)
        if found is None:
            found = self._minimums[model] = min_cacheable_tokens(model, self.min_tokens)
        return found

    def _make_plan(self, requests: PendingBatch, context: CallContext) -> _BatchPlan:
        """One batch on its own: count its prefixes, then decide."""
        counts = PrefixCounts()
        self._count(requests, counts)
        warm = self._live_warm(self._now(context))
        return self._decide(requests, counts, warm, context)

    def _count(self, requests: PendingBatch, counts: PrefixCounts) -> None:
        rules = self._rules()
        for request in requests:  # counts only
            prompt, reason = triage(request.params, rules)
            if prompt is not None and reason != "too-short":  # a too-short one adds nothing
                counts.add(prompt, self._min_tokens(prompt.model))

    def _live_warm(self, now: float) -> Dict[int, float]:
        lifetime = TTL_SECONDS[self.ttl]
        return {k: t for k, t in self._warm.items() if now - t < lifetime}

    def _decide(self, requests: PendingBatch, counts: PrefixCounts, warm: Dict[int, float],
                context: CallContext) -> _BatchPlan:
        """Each request's decision and the figures; registers the batch's transform."""
        rules = self._rules()
        plan = _BatchPlan(requests, counts, warm, rules)
        predicted = plan.predicted
        grows = 0
        for request in requests:
            prompt, choice = plan_request(request.params, counts, warm, rules)
            predicted.requests += 1
            if not choice.marks:
                predicted.unmarked[choice.reason] += 1
                continue
            assert prompt is not None  # marks come from an analysed prompt
            plan.count_marked(prompt, choice)
            grows += added_bytes(prompt, choice, request.params)
        if plan.groups and self._too_large(requests, context, grows):
            logger.warning(
                "cache: batch %d left unmarked: its breakpoints would add %d bytes and "
                "push the body past %d bytes; give the job a larger safety_margin",
                requests.index, grows, MAX_BATCH_BYTES)
            plan = _BatchPlan(requests, counts, warm, rules)
            plan.predicted.requests = predicted.requests
            plan.predicted.unmarked = predicted.unmarked
            plan.predicted.unmarked["batch-too-large"] += predicted.requests_marked
            plan.predicted.batches_too_large = 1
            self.last_batch = plan.predicted
            return plan
        predicted.groups = len(plan.groups)
        if plan.groups:
            requests.transform(plan.transform)
        self.last_batch = predicted
        return plan

    @staticmethod
    def _too_large(requests: PendingBatch, context: CallContext, grows: int) -> bool:
        """Would the added breakpoints push this batch's body past the API's limit?

        A job plans bodies up to ``max_batch_bytes`` (the limit less a safety margin),
        so growth within that margin is safe without measuring anything.
        """
        if isinstance(context, JobContext) \
                and grows <= MAX_BATCH_BYTES - context.limits.max_bytes:
            return False
        size = _EMPTY_BODY + max(len(requests) - 1, 0)
        for request in requests:
            size += len(dumps(request.to_dict()))
            if size + grows > MAX_BATCH_BYTES:
                return True
        return False

    def _add_figures(self, plan: _BatchPlan) -> None:
        total, batch = self.predicted, plan.predicted
        total.requests += batch.requests
        total.requests_marked += batch.requests_marked
        total.breakpoints_added += batch.breakpoints_added
        total.groups += batch.groups
        total.cacheable_tokens += batch.cacheable_tokens
        total.read_tokens += plan.read_tokens()
        total.unmarked.update(batch.unmarked)
        total.batches_too_large += batch.batches_too_large

    # --- priming --------------------------------------------------------------

    def _primer_keys(self, plan: _BatchPlan) -> List[int]:
        """The groups worth a primer: not already cached, largest saving first."""
        cold = [(size * tokens, key) for key, (size, tokens) in plan.groups.items()
                if key not in plan.warm]
        return [key for _, key in heapq.nlargest(self.prime_limit, cold)]

    def _send_primers(self, plan: _BatchPlan, context: CallContext) -> None:
        wanted = set(self._primer_keys(plan))
        if not wanted:
            return
        primers: List[Request] = []
        writes: Dict[str, List[int]] = {}  # primer custom_id -> prefix keys it writes
        for request in plan.marked_requests():  # already marked by our transform
            marked = [b.key for b in analyse(request.params).boundaries if b.ttl is not None]
            if wanted.isdisjoint(marked):
                continue
            primer = Request(PRIMER_ID.format(len(primers)), _primer_params(request))
            primers.append(primer)
            writes[primer.custom_id] = marked
            wanted.difference_update(marked)
            if not wanted:
                break
        client = context.client
        self._priming = True
        try:
            batch = client.create(primers)
            self.primer_batch_ids.append(batch.id)
            self.predicted.primers += len(primers)
            logger.info("cache: primer batch %s with %d request(s); waiting for it", batch.id,
                        len(primers))
            ended = client.wait(batch.id, timeout=self.prime_timeout,
                                poll_interval=context.poll_interval
                                if isinstance(context, JobContext) else None)
            for result in client.results(ended):  # on_result counts their usage apart
                if result.type == "succeeded":
                    plan.primed.update(writes.get(result.custom_id, ()))
        except Exception as exc:  # priming only saves money: never fail the job for it
            logger.warning("cache: priming incomplete (%s: %s); the batch is sent as it is",
                           type(exc).__name__, exc)
        finally:
            self._priming = False

    # --- helpers --------------------------------------------------------------

    def _now(self, context: CallContext) -> float:
        return float(context.clock.time())

    def _drop_cold(self, now: float) -> None:
        self._warm = self._live_warm(now)
        if len(self._warm) > MAX_WARM_PREFIXES:  # still too many: keep the newest
            newest = heapq.nlargest(MAX_WARM_PREFIXES, self._warm.items(), key=lambda kv: kv[1])
            self._warm = dict(newest)


def _primer_params(request: Request) -> Dict[str, Any]:
    """The request's params with ``max_tokens: 1``: one token of answer, the least a batch
    accepts (it refuses the spec's ``max_tokens: 0`` pre-warm); the prompt (and its cache
    key) is unchanged. With extended thinking max_tokens must exceed the budget: left as
    is."""
    params = dict(request.params)
    if "thinking" not in params:
        params["max_tokens"] = MIN_MAX_TOKENS
    return params

