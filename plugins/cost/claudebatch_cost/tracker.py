"""CostTracker: the plugin object. Prices results as they stream, estimates before
anything is sent, and keeps spending within a budget.

Inside a job the whole pass is weighed in ``before_pass``, before its first batch is
created: every batch as it will go out, and the pass is vetoed if it would pass the
budget (a dry run, ``context.dry_run``, only estimates). ``before_submit`` reuses
that batch's estimate; for a plain ``client.create`` (no job, no ``before_pass``) it
estimates the batch itself.

Hook order (see ``claudebatch/hookspecs.py``): ``before_pass`` and ``before_submit``
are plain implementations, so they see requests after prompt-cache injection
(``tryfirst``) rewrote them, and a budget veto leaves nothing for persistence
(``trylast``) to record.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, Dict, Generator, Iterable, List, Mapping, Optional, Set, Tuple, Union

from claudebatch import (
    BatchResult,
    CallContext,
    Column,
    JobContext,
    JobPlan,
    JobReport,
    MessageBatch,
    PendingBatch,
    hookimpl,
)

from .costing import ResultCost, When, _dict_numbers, _get, price_result, usage_numbers
from .errors import BudgetExceededError
from .estimate import EstimateCost, Estimation, Estimator
from .ledger import Ledger, Rates, totals_of
from .pricing import PricingSource, PricingTable, load_pricing, to_decimal
from .summary import job_section, plan_section, usd
from .tokens import TokenCountingEndpoint
from .totals import Totals

logger = logging.getLogger("claudebatch.cost")


class CostTracker:
    """Exact batch cost from usage, estimates before submitting, and a budget.

    ``budget_usd``: refuse work whose worst-case estimate, added to what this
    tracker has already spent or has in flight, would pass it.
    ``pricing``: a JSON/CSV file or a mapping of models to add to (or replace
    in) the packaged table; or a ready :class:`PricingTable`.
    ``expected_output_fraction``: the share of ``max_tokens`` the "expected"
    estimate assumes (the worst case always assumes all of it).
    ``chars_per_token``: the approximation's ratio (lower it for dense text:
    code, non-Latin scripts). ``count_tokens``: ask the free token-counting
    endpoint for exact input counts instead (one call per request).
    ``keep_results``: keep every :class:`ResultCost` in ``result_costs``.

    After a job: ``total_usd`` and ``standard_usd`` (Decimal), ``by_model``,
    ``by_batch``, ``job`` (the last job's totals) and ``job_estimate``.
    """

    def __init__(self, budget_usd: Union[Decimal, int, float, str, None] = None, *,
                 pricing: Union[PricingSource, PricingTable, None] = None,
                 expected_output_fraction: float = 0.5,
                 chars_per_token: float = 4.0,
                 count_tokens: bool = False,
                 keep_results: bool = False):
        self.budget_usd: Optional[Decimal] = (
            None if budget_usd is None else to_decimal(budget_usd, "budget_usd"))
        self.table: PricingTable = (pricing if isinstance(pricing, PricingTable)
                                    else load_pricing(pricing))
        self.estimator = Estimator(self.table, expected_output_fraction=expected_output_fraction,
                                   chars_per_token=chars_per_token)
        self.count_tokens = count_tokens
        self.keep_results = keep_results
        #: Each ended batch's totals, by batch id.
        self.by_batch: Dict[str, Totals] = {}
        self.result_costs: List[ResultCost] = []
        self.unknown_models: Set[str] = set()
        #: The current (or last) job's estimate and notes.
        self.job_estimate: Optional[EstimateCost] = None
        self.notes: List[str] = []
        # Results are counted (ledger.py), not priced, as they stream: the batch's own
        # ledger until it ends, then folded into the job's and the tracker's.
        self._rates = Rates(self.table)
        self._batch = Ledger()
        self._job = Ledger()  # the current job's ended batches
        self._all = Ledger()  # every ended batch, across jobs
        self._reused = Ledger()  # the job's reused answers, as priced when bought
        self._prefixes: Set[bytes] = set()  # cache prefixes estimated in this job
        #: Estimates of the pass's batches (before_pass), until each is submitted.
        self._planned: Dict[PendingBatch, Estimation] = {}
        self._weighed = False
        self._pending: Dict[PendingBatch, EstimateCost] = {}  # checked, not yet created
        self._in_flight: Dict[str, Decimal] = {}
        self._counter: Optional[TokenCountingEndpoint] = None

    def __repr__(self) -> str:
        budget = "none" if self.budget_usd is None else usd(self.budget_usd)
        return (f"<CostTracker total={usd(self.total_usd)} standard={usd(self.standard_usd)} "
                f"budget={budget}>")

    # --- figures ------------------------------------------------------------------------
    # Each Totals is made when asked, from the ledgers: a snapshot, not a running object.

    @property
    def totals(self) -> Totals:
        """Everything this tracker has priced, across jobs."""
        return totals_of((self._all, self._batch), self.table)

    @property
    def job(self) -> Totals:
        """The current (or last) job's totals."""
        return totals_of((self._job, self._batch), self.table)

    @property
    def job_reused(self) -> Totals:
        """What the job's reused answers (kept from earlier jobs, or an identical
        request's) cost when they were bought: money this job did not spend."""
        return totals_of((self._reused,), self.table)

    @property
    def by_model(self) -> Dict[str, Totals]:
        """Totals per model (as the results name it), across jobs."""
        return self._by_model((self._all, self._batch))

    @property
    def job_by_model(self) -> Dict[str, Totals]:
        """The current (or last) job's totals per model."""
        return self._by_model((self._job, self._batch))

    def _by_model(self, ledgers: Tuple[Ledger, ...]) -> Dict[str, Totals]:
        models = sorted({model for ledger in ledgers for model in ledger.models()})
        return {model: totals_of(ledgers, self.table, model) for model in models}

    @property
    def total_usd(self) -> Decimal:
        """What the priced results cost through the batch API (see ``complete``)."""
        return self._all.batch_usd(self.table) + self._batch.batch_usd(self.table)

    @property
    def standard_usd(self) -> Decimal:
        """What the same results would have cost through the standard Messages API."""
        return self.totals.standard_usd

    @property
    def saved_usd(self) -> Decimal:
        return self.totals.saved_usd

    @property
    def complete(self) -> bool:
        """False when some succeeded result's model had no price: its cost is unknown."""
        return self.totals.complete

    @property
    def in_flight_usd(self) -> Decimal:
        """Worst-case estimates of batches submitted whose results have not all come."""
        return sum(self._in_flight.values(), Decimal(0))

    @property
    def committed_usd(self) -> Decimal:
        """Spent plus in flight (worst case): what the budget is checked against."""
        return self.total_usd + self.in_flight_usd

    def price(self, result: Union[BatchResult, Mapping[str, Any]],
              at: Optional[When] = None) -> ResultCost:
        """The cost of one result (a BatchResult or a raw results-file line), at the price
        in force at ``at`` (its batch's ``created_at``; None: today's)."""
        return price_result(result, self.table, at)

    # --- job hooks ----------------------------------------------------------------------

    @hookimpl
    def on_job_start(self, context: JobContext) -> None:
        """A new job: its figures start afresh (the tracker's totals go on)."""
        self._all.merge(self._batch)  # results outside a job (client.results) stay counted
        self._batch, self._job, self._reused = Ledger(), Ledger(), Ledger()
        self.job_estimate = None
        self.notes = []
        self._prefixes = set()
        self._planned = {}

    @hookimpl
    def before_pass(self, batches: List[PendingBatch], context: JobContext) -> None:
        """Estimate every batch of the pass as it is written (observing, not reading it
        again); the whole pass is weighed before its first batch is created."""
        counter = self._token_counter(context)
        self._planned = {}
        self._weighed = False
        for pending in batches:
            estimation = self.estimator.start(counter, self._prefixes)
            pending.observe(estimation.add_raw, restart=estimation.reset, raw=True)
            self._planned[pending] = estimation

    def _weigh_pass(self, context: JobContext) -> None:
        """The whole pass, once its bodies are written: the job's estimate, the budget."""
        if self._weighed or not self._planned:
            return
        self._weighed = True
        found = [estimation.result()[0] for estimation in self._planned.values()]
        whole = found[0]
        for more in found[1:]:
            whole += more
        self._warn_unknown(whole.unknown_models)
        what = _describe_pass(whole, context)
        logger.info("%s: worst case %s, expected %s", what, usd(whole.worst_batch_usd),
                    usd(whole.expected_batch_usd))
        if context.pass_number == 1:
            self.job_estimate = whole
        if not context.dry_run and self.budget_usd is not None:
            self._check(whole, what)

    @hookimpl
    def before_submit(self, requests: PendingBatch, context: CallContext) -> None:
        """Check the batch against what is left of the budget as it is sent.

        Inside a job, the first batch of a pass weighs the whole pass first (every
        body of the pass is written by then), so an over-budget pass sends nothing;
        each batch is then checked against what is left (a cache primer batch may
        have been sent since). A plain ``client.create`` has no pass: the batch is
        estimated here. A create refused for a full queue comes again: checked again,
        not estimated again.
        """
        found = self._pending.get(requests)  # estimated already: refused, the queue full
        if found is None and requests in self._planned and isinstance(context, JobContext):
            self._weigh_pass(context)
            found = self._planned.pop(requests).result()[0]
        elif found is None:
            found, _ = self.estimator.estimate(requests, self._token_counter(context),
                                               self._prefixes)
            self._warn_unknown(found.unknown_models)
            logger.info("%s: worst case %s, expected %s", _describe(requests, context),
                        usd(found.worst_batch_usd), usd(found.expected_batch_usd))
        if self.budget_usd is not None:
            self._check(found, _describe(requests, context))
        self._pending[requests] = found  # a primer batch may be created in between

    @hookimpl
    def after_submit(self, batch: MessageBatch, requests: PendingBatch) -> None:
        found = self._pending.pop(requests, None)
        if found is not None:
            self._in_flight[batch.id] = found.worst_batch_usd

    @hookimpl
    def on_result(self, raw: Dict[str, Any], batch: MessageBatch, context: CallContext
                  ) -> None:
        """Count the result's usage at its price (the price in force when its batch was
        created); money is worked out when a figure is read. Reads the raw result, a few
        fields, rather than having a typed result built for each."""
        reusing = isinstance(context, JobContext) and context.reusing
        # not bought now: priced as when it was, apart from what this job spent
        ledger = self._reused if reusing else self._batch
        body = raw.get("result") or {}
        message = body.get("message") or {}
        model = message.get("model")
        if body.get("type") != "succeeded":
            ledger.add_not_billed(model)
        else:
            usage = message.get("usage")
            if type(usage) is dict:  # as the service writes it
                counts = _dict_numbers(usage)
                geo = usage.get("inference_geo")
            else:
                counts = usage_numbers(usage)
                geo = _get(usage, "inference_geo") if usage is not None else None
            rate = self._rates.rate(model, geo if isinstance(geo, str) else None,
                                    counts[0] + counts[1] + counts[2] + counts[3],
                                    batch.created_at)
            ledger.add(rate, counts)
            if rate.price is None:
                self._warn_unknown((model or "(no model)",))
        if self.keep_results and not reusing:
            self.result_costs.append(self.price(raw, at=batch.created_at))

    @hookimpl
    def job_cost(self, context: JobContext) -> float:
        """The job's batch price so far (priced results only), for progress and telemetry."""
        return float(self._job.batch_usd(self.table) + self._batch.batch_usd(self.table))

    @hookimpl
    def table_columns(self) -> List[Column]:
        return [Column("cost_usd", "float")]

    @hookimpl
    def table_values(self, value: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
        """What the row cost in this job, at today's price: nothing for an answer reused
        or shared with an identical request (``reused_from``), None when unknown."""
        if value is None:
            return None
        if value.get("reused_from"):
            return {"cost_usd": 0.0}
        usd = self.price(value).batch_usd
        return {"cost_usd": None if usd is None else float(usd)}

    @hookimpl
    def on_batch_end(self, batch: MessageBatch) -> None:
        ended = self._batch
        self.by_batch[batch.id] = totals_of((ended,), self.table)
        self._job.merge(ended)
        self._all.merge(ended)
        self._batch = Ledger()
        self._in_flight.pop(batch.id, None)

    @hookimpl
    def on_job_end(self, report: JobReport) -> None:
        self._in_flight.clear()  # the job is over: nothing more will come
        self._planned = {}
        job = self.job
        logger.info("job %s: cost %s (standard API %s)", report.name, usd(job.batch_usd),
                    usd(job.standard_usd))

    @hookimpl(wrapper=True)
    def resubmit_requests(self, pass_number: int, context: JobContext
                          ) -> Generator[None, Optional[Iterable[Any]], Optional[Iterable[Any]]]:
        """Let another plugin choose what to resubmit; drop the pass if it would pass the budget.

        Dropped here, the job ends normally with its report and a note. The requests
        are estimated as they are in the source: rewrites (cache breakpoints) only come
        with the pass, whose ``before_pass`` checks them again and vetoes if need be.
        """
        chosen = yield
        if chosen is None or self.budget_usd is None:
            return chosen
        retry = list(chosen)
        if not retry:
            return retry
        found, _ = self.estimator.estimate(retry)
        projected = self.committed_usd + found.worst_batch_usd
        if found.unknown_requests or projected > self.budget_usd:
            note = (f"resubmission pass {pass_number + 1} ({len(retry):,} requests, worst case "
                    f"{usd(found.worst_batch_usd)}) not sent: with {usd(self.committed_usd)} "
                    f"spent it would pass the budget of {usd(self.budget_usd)}")
            if found.unknown_requests:
                note = (f"resubmission pass {pass_number + 1} not sent: models "
                        f"{', '.join(sorted(found.unknown_models))} are not priced")
            logger.warning("job %s: %s", context.name, note)
            self.notes.append(note)
            return []
        return retry

    @hookimpl
    def job_summary(self, report: Union[JobReport, JobPlan], context: JobContext
                    ) -> Dict[str, Any]:
        if isinstance(report, JobPlan):
            self._weigh_pass(context)
            return {"cost": plan_section(
                self.job_estimate or EstimateCost(),
                expected_fraction=self.estimator.expected_output_fraction,
                budget_usd=self.budget_usd, committed_usd=self.committed_usd)}
        return {"cost": job_section(self.job, self.job_by_model, budget_usd=self.budget_usd,
                                    committed_usd=self.committed_usd, notes=self.notes,
                                    reused=self.job_reused)}

    # --- helpers ------------------------------------------------------------------------

    def _token_counter(self, context: CallContext) -> Optional[TokenCountingEndpoint]:
        if not self.count_tokens:
            return None
        client = context.client
        if self._counter is None or self._counter.client is not client:
            self._counter = TokenCountingEndpoint(client)
        return self._counter

    def _check(self, found: EstimateCost, what: str) -> None:
        assert self.budget_usd is not None
        committed = self.committed_usd
        spent = f" on top of {usd(committed)} already spent or in flight" if committed else ""
        if found.unknown_requests:
            raise BudgetExceededError(
                f"{what} not sent: {found.unknown_requests:,} request(s) use models not in the "
                f"pricing table ({', '.join(sorted(found.unknown_models))}), so the budget of "
                f"{usd(self.budget_usd)} cannot be checked. Add them with --pricing FILE "
                "(or CostTracker(pricing=...)).",
                budget_usd=self.budget_usd, estimate_usd=found.worst_batch_usd,
                committed_usd=committed)
        if committed + found.worst_batch_usd > self.budget_usd:
            raise BudgetExceededError(
                f"{what} not sent: its worst-case estimate is {usd(found.worst_batch_usd)} "
                f"(batch price, every request using its max_tokens; expected "
                f"{usd(found.expected_batch_usd)}){spent}, over the budget of "
                f"{usd(self.budget_usd)}. Raise --budget, lower max_tokens, or send less.",
                budget_usd=self.budget_usd, estimate_usd=found.worst_batch_usd,
                committed_usd=committed)

    def _warn_unknown(self, models: Iterable[str]) -> None:
        for model in models:
            if model not in self.unknown_models:
                self.unknown_models.add(model)
                logger.warning("model %r is not in the pricing table (as of %s): its cost is "
                               "unknown, not zero; add it with --pricing FILE", model,
                               self.table.as_of)


def _describe(requests: PendingBatch, context: CallContext) -> str:
    if isinstance(context, JobContext):
        return (f"job {context.name} pass {context.pass_number} batch {requests.index} "
                f"({len(requests):,} requests)")
    return f"batch of {len(requests):,} requests"


def _describe_pass(whole: EstimateCost, context: JobContext) -> str:
    name, number = context.name, context.pass_number
    where = f"job {name}" if number == 1 else f"job {name} pass {number}"
    return f"{where} ({whole.requests:,} requests)"
