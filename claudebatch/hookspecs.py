"""Every hook claudebatch calls, typed, one docstring each, parameter by parameter.

Plugins implement these with ``@claudebatch.hookimpl`` (pluggy, project name
``"claudebatch"``); an implementation may take any subset of the parameters.

``context`` is a :class:`~claudebatch.context.CallContext` for an endpoint call
made on its own (``client.create``, ``client.results``...) and a
:class:`~claudebatch.context.JobContext` inside ``client.run`` (a CallContext
too): ``isinstance(context, JobContext)`` tells them apart. Per-job state goes in
``context.stash`` under a key of the plugin's own.

The call sequence of a job::

    [find_job                         (firstresult; when the job is made without a name)]
    on_job_start                      (then the input is read and planned: on_planned,
                                       find_answers for the answers a store kept)
    resume_state                      (firstresult; a store answers on a rerun)
    [reused answers: on_result for each, context.reusing]
    per pass (1, then one more each time resubmit_requests answers):
        before_pass                   (also in a dry run, context.dry_run)
        every body of the pass written: transforms, observers   (a dry run stops here)
        [replay: on_result for each result stored by an earlier run, context.replaying]
        until every batch is sent and ended, in the one poll loop:
          per batch, as the queue has room (max_in_flight):
                    before_submit -> POST -> after_submit   (or on_submit_error;
                    a 429: on_queue_wait, and before_submit again when tried again)
          on_poll ... (poll_delay between rounds)
          per ended batch:  on_result ... (one per result written, after keep_answer
                            for a succeeded one; then its duplicates') -> on_batch_end
        resubmit_requests             (firstresult)
    [a table output: table_columns (also before anything is sent, to check it),
     table_values for each row as the table is written]
    job_summary                       (every plugin's figures, into report.plugins)
    on_job_end

and around every HTTP call: ``retry_delay`` (firstresult) after a failed attempt.
Whenever a display or telemetry reads ``context.cost_usd()`` (each poll, batch end,
pass end, job end, result): ``job_cost`` (firstresult).

Order, when several plugins implement the same hook (pluggy calls ``tryfirst``
implementations first and ``trylast`` ones last):

1. ``tryfirst``: rewrite the requests (prompt-cache injection);
2. plain: look at the rewritten requests (cost estimates, budget vetoes);
3. ``trylast``: record what is about to happen (persistence), so a veto from
   step 2 leaves nothing recorded.

A plugin that must see another hook's outcome (what a policy decided) wraps the
hook (``@hookimpl(wrapper=True)``) rather than calling other plugins. Built-in
defaults for the ``firstresult`` policies are an ordinary plugin
(:mod:`claudebatch.policies`) marked ``trylast``, so any plugin that answers
replaces them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import pluggy

if TYPE_CHECKING:
    import requests

    from ._job import ResumeState
    from ._pending import PendingBatch
    from ._report import JobPlan, JobReport
    from .context import CallContext, JobContext
    from .models import Annotation, BatchResult, MessageBatch, Request
    from .reuse import StoredAnswer
    from .store import JobStore, StoreOptions
    from .tables import Column

hookspec = pluggy.HookspecMarker("claudebatch")

#: Returned from :func:`retry_delay` to stop retrying and raise the error now.
GIVE_UP: float = -1.0


@hookspec
def on_job_start(context: JobContext) -> None:
    """A job starts, before its input is read: nothing is validated or sent yet.

    :param context: the job; ``context.stash`` is new for it, so per-job state
        set up here cannot leak from an earlier job on the same client. A plugin
        that weighs whole passes registers ``context.on_planned(fn)`` here: ``fn``
        sees each valid request as the job plans it, so the pass is not read again.
    """


@hookspec
def before_pass(batches: List[PendingBatch], context: JobContext) -> None:
    """A pass is planned: every batch it is about to send, before the first.

    :param batches: the pass's batches, each with a known ``len()``. Rewrite
        requests with ``batch.transform(fn)`` and see each final request with
        ``batch.observe(fn)`` (``raw=True``: its JSON as the body carries it, never
        parsed): the job then writes every body of the pass, reading,
        rewriting and showing each request once, before the first batch is created.
        Iterating a batch reads it again: observe instead.
    :param context: the job; ``context.pass_number`` says which pass, and
        ``context.dry_run`` is True in a dry run (estimate and report through
        ``job_summary``; nothing will be sent, so do not veto).

    Raise to veto the whole pass: nothing of it is sent.
    """


@hookspec
def before_submit(requests: PendingBatch, context: CallContext) -> None:
    """A batch is about to be created.

    :param requests: its requests (see ``before_pass``); ``requests.index`` is its
        place in the pass. A plain ``client.create`` has no pass: rewriting
        plugins transform here.
    :param context: the job, or the client's context for a plain ``create``.

    Raise to veto: nothing is sent and the exception reaches the caller.

    Inside a job it may run again for the same ``requests``: a create the service
    refused for a full processing queue (``on_submit_error`` with a 429, then
    ``on_queue_wait``) is tried again later, its body as written. Do one-time work
    (decisions, transforms, primers) once per batch; a store records its intent anew.
    """


@hookspec
def on_submit_error(requests: PendingBatch, error: BaseException, made_nothing: bool,
                    context: CallContext) -> None:
    """A create failed after ``before_submit``, before the error reaches the caller.

    :param requests: the batch that was not created.
    :param error: what was raised.
    :param made_nothing: True when the service certainly made no batch: nothing
        was sent (the body was refused before sending), or the service answered
        with an error (other than a 504 gateway timeout). False when the outcome
        is unknown (the connection broke, a timeout, an answer that is not a
        batch): a batch may exist, and a store keeps its intent so a resumed job
        looks for it.
    :param context: the job, or the client's context.
    """


@hookspec
def on_queue_wait(requests: PendingBatch, error: BaseException, delay: float,
                  context: JobContext) -> None:
    """Inside a job: the service refused a batch's create (429 ``rate_limit_error``: its
    processing queue is full, or a request rate limit), after ``on_submit_error``.

    The job tries it again in ``delay`` seconds (the service's ``retry-after`` when it gave
    one), polling and collecting its other batches meanwhile; ``before_submit`` then runs
    again for it. For progress displays and metrics.

    :param requests: the batch refused (nothing of it was made).
    :param error: the service's answer, a :class:`~claudebatch.errors.RateLimitError`
        (``error.retry_after``: the seconds it asked for, or None).
    :param delay: seconds until the job tries again.
    :param context: the job (``context.queued_batches``, ``context.in_flight_requests``).
    """


@hookspec
def after_submit(batch: MessageBatch, requests: PendingBatch, context: CallContext) -> None:
    """The service accepted a batch (``batch.id`` is known).

    :param batch: the new batch. Inside a job it may also be one found for a
        create whose answer was lost (``client.is_adopted(batch.id)``).
    :param requests: what was sent.
    :param context: the job, or the client's context.
    """


@hookspec
def on_poll(batch: MessageBatch, context: CallContext) -> None:
    """A status check of a batch came back (``wait``, or a job's poll loop).

    :param batch: its fresh state (``processing_status``, ``request_counts``).
    :param context: the job, or the client's context.
    """


@hookspec
def annotate_result(result: BatchResult, context: CallContext) -> Optional[Annotation]:
    """What this plugin adds to one result, before ``on_result`` sees it and before it is
    written: an :class:`~claudebatch.Annotation`, or None.

    :param result: the parsed result, as served.
    :param context: the job or the client's context (a job also calls it for results
        replayed from a store, and ``report.results()`` when reading the output back,
        so it must be a function of the result: keep counts in ``on_result``).

    Its ``fields`` are added to the output line (``"parsed"``, ``"structured_error"``);
    ``custom_id`` and ``result`` cannot be replaced, and where two plugins give the same
    field, the first to answer wins. Its ``parsed`` becomes ``result.parsed`` for the
    hooks after it and for the caller of ``client.results()``.
    """


@hookspec
def on_result(result: BatchResult, raw: Dict[str, Any], line: bytes, context: CallContext,
              batch: MessageBatch) -> None:
    """One result, as it streams in (or, inside a job, as it is written to the output).

    :param result: the parsed result (``result.result.type``, the message, usage).
        Built only when some implementation takes this parameter, and a succeeded
        message of the usual shape only when ``result.result`` is first read (in full,
        about 6 µs a line); one that takes ``raw`` instead spares the job a typed object
        per result.
    :param raw: the same result as a dict, as written to the output (the API's field
        names, unknown fields kept, any plugin's annotations in): read it, do not change
        it. The cheap way to read a few fields of every result.
    :param line: the same result as one line of JSON, as written to the output
        (no newline): what a store keeps, with fields this version does not model.
    :param batch: the batch the result comes from (its ``created_at`` dates the
        price in force), also for a result replayed from a store.
    :param context: the job or the client's context. Inside a job it is called
        once per result the job keeps (a download resumed after a broken stream
        does not call it again), and ``context.replaying`` is True while the core
        shows results stored by an earlier run (a store skips those).
        ``context.reusing`` is True for a result not bought now (an answer kept by an
        earlier job, or the answer of an identical request of this job): its line has
        ``"reused_from": "<job>/<custom_id>"`` and ``batch`` is the batch that bought it.
    """


@hookspec
def on_batch_end(batch: MessageBatch, context: JobContext, complete: bool) -> None:
    """A batch ended and its results have been written to the output.

    :param batch: the ended batch.
    :param context: the job.
    :param complete: True when every request of the batch has its result line
        written; False when some never came (a download that kept breaking,
        results already deleted): a store must not count the batch as collected,
        so a rerun fetches what is missing.
    """


@hookspec(firstresult=True)
def job_cost(context: JobContext) -> Optional[float]:
    """What the job's results have cost so far, in US dollars, or None (no opinion).

    :param context: the job. Asked whenever someone reads ``context.cost_usd()``: the
        progress displays at each poll, batch end, pass end and job end, and telemetry
        after each result. Keep it cheap: answer from a running total.

    A cost plugin answers from its first ``on_job_start`` on (0.0 before any result):
    the batch price of every result the job kept, those replayed from a store on a
    resume included, and none of the answers it did not buy now (``context.reusing``).
    A result whose price is unknown adds nothing. Read it through
    ``context.cost_usd()`` rather than calling the hook.
    """


@hookspec(firstresult=True)
def find_answers(keys: Sequence[str], max_age: Optional[float], context: JobContext
                 ) -> Optional[Mapping[str, StoredAnswer]]:
    """While a pass is planned: the answers kept for these keys, so they are not bought again.

    :param keys: :func:`~claudebatch.reuse.answer_key` values (hex), a few hundred at a time.
    :param max_age: seconds; an answer kept longer ago than that is not offered (None:
        any age).
    :param context: the job (``context.name``).

    Return ``{key: StoredAnswer}`` for the keys found (succeeded answers only), or None.
    A job resumed later must be answered the same: offer only answers kept before the
    job's first run planned (a store records that moment with the job), and count
    ``max_age`` back from it. Not called with ``--no-reuse`` (``reuse=False``).
    """


@hookspec
def keep_answer(key: str, result: BatchResult, raw: Dict[str, Any], line: bytes,
                context: JobContext, batch: MessageBatch) -> None:
    """A succeeded answer worth keeping for reuse: bought by this job, usable (no plugin
    marked it ``Annotation(usable=False)``), not itself reused.

    :param key: its request's :func:`~claudebatch.reuse.answer_key`.
    :param result: the parsed result, built only when some implementation takes this
        parameter (as for ``on_result``).
    :param raw: the same result as a dict, as served (no plugin fields): read it, do not
        change it. The cheap way to read its ``custom_id``.
    :param line: the result line as served (no plugin fields): what reuse writes again.
    :param context: the job (``context.name``, ``context.pass_number``).
    :param batch: the batch that served it (its ``created_at`` dates its price).

    Called right before ``on_result`` for the same result: keep it with that result
    (one transaction) so a killed run never holds one without the other.
    """


@hookspec(firstresult=True)
def resubmit_requests(pass_number: int, context: JobContext
                      ) -> Optional[Iterable[Union[Request, Dict[str, Any]]]]:
    """A pass has ended: the requests to send again in one more pass, or None.

    :param pass_number: the pass that ended.
    :param context: the job; ``context.find_requests(ids)`` gives back requests
        as the latest pass sent them.

    The first answer that is not None decides (``[]``: no more passes). The final
    output keeps one line per custom_id, the last attempt's. A job runs at most
    :data:`claudebatch.limits.MAX_PASSES` passes.
    """


@hookspec(firstresult=True)
def find_job(output: str, server: str) -> Optional[str]:
    """The name of the job a run given no name continues, if any.

    Asked when a job is made without a name: a store answers with an unfinished job
    that writes the same result lines through the same server, so running the same
    command again resumes it.

    :param output: the job's result lines file (absolute).
    :param server: the client's base URL (its batches live there and nowhere else).
    :return: a job name, or None (the job gets a new name).
    """


@hookspec(firstresult=True)
def resume_state(context: JobContext) -> Optional[ResumeState]:
    """Before anything is sent: what an earlier run of this job did, or None.

    :param context: the job (validated and split; ``context.name`` keys it).

    Return a :class:`~claudebatch.ResumeState`: the batches already created
    (per pass and index), those whose results were all collected, those taken for
    a lost create (still to be proven), and the result lines stored. The core then
    creates none of those batches again, rebuilds the output from the stored
    lines, replays them through ``on_result`` and completes the report itself.
    """


@hookspec
def job_summary(report: Union[JobReport, JobPlan], context: JobContext
                ) -> Optional[Dict[str, Any]]:
    """A plugin's figures for ``report.plugins``: ``{"name": summary}``.

    :param report: the JobReport after a run (before ``on_job_end``), or the
        JobPlan of a dry run.
    :param context: the job.
    """


@hookspec
def table_columns(context: JobContext) -> Optional[Sequence[Column]]:
    """The columns this plugin adds to a job's table (CSV, Parquet, a DataFrame), after
    the input's and the job's own (``answer``, ``stop_reason``, tokens...).

    Asked before anything is sent (a clash with an input column is refused then) and
    again when the table is written; answer the same each time.

    :param context: the job.
    :return: :class:`~claudebatch.tables.Column` s (name and kind), or None.
    """


@hookspec
def table_values(value: Optional[Mapping[str, Any]], context: JobContext
                 ) -> Optional[Mapping[str, Any]]:
    """This plugin's cells for one row of a job's table, by the names of its
    ``table_columns``; a column left out is empty.

    Called for every row, in the input's order, when the table is written (after the
    last pass) or made in memory (``report.to_pandas()``).

    :param value: the row's result line as written to the result lines (parsed: a
        dict with ``custom_id``, ``result``, and what plugins annotated, such as
        ``parsed``); None when the request got no result.
    :param context: the job.
    :return: ``{column name: value}``, or None.
    """


@hookspec
def on_job_end(report: JobReport, context: JobContext) -> None:
    """A job has finished; ``report.plugins`` holds every plugin's summary.

    :param report: the final JobReport (the core owns it: read, do not change).
    :param context: the job.
    """


@hookspec(firstresult=True)
def retry_delay(attempt: int, response: Optional[requests.Response],
                error: Optional[BaseException], context: CallContext) -> Optional[float]:
    """How long to wait before retrying a failed HTTP request, in seconds.

    :param attempt: counts from 0 (the first retry).
    :param response: the error response, or None for a connection error/timeout.
    :param error: the connection error or timeout, or None when there is a response.
    :param context: the client's context (``context.clock`` tells the time).

    Return ``None`` for no opinion, a number >= 0 to retry after that many
    seconds, or :data:`GIVE_UP` to raise the error now. ``max_retries`` still
    bounds the number of attempts.
    """


@hookspec(firstresult=True)
def poll_delay(batch: MessageBatch, attempt: int, first_interval: float,
               context: CallContext) -> Optional[float]:
    """Seconds to wait before the next status check.

    :param batch: the batch just checked (in a job: the first still waiting).
    :param attempt: the polls so far (0 before the second check).
    :param first_interval: the caller's ``poll_interval`` (or the default).
    :param context: the job, or the client's context.
    """


@hookspec
def add_cli_options(parser: argparse.ArgumentParser) -> None:
    """Add a plugin's options to the ``claudebatch`` commands that run jobs (run, demo).

    :param parser: the command's parser.
    """


@hookspec
def plugins_from_cli(args: argparse.Namespace) -> Optional[Iterable[object]]:
    """Plugin instances configured from the parsed command line.

    :param args: the parsed options; ``args.demo`` is True under ``claudebatch
        demo``, which runs with every installed plugin active (return an instance
        with defaults then).
    """


@hookspec
def register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
                      common: argparse.ArgumentParser) -> None:
    """Add whole subcommands (``claudebatch export ...``), as llm plugins do.

    :param subparsers: argparse's subparsers action: ``subparsers.add_parser(name,
        parents=[common], ...)``, then ``set_defaults(command=func)`` where
        ``func(args) -> int`` returns the exit code.
    :param common: the shared options (``--base-url``, ``--max-retries``...).
    """


@hookspec(firstresult=True)
def show_status(name: str, args: argparse.Namespace) -> Optional[int]:
    """``claudebatch status NAME`` for a NAME that is not a batch id (``msgbatch_...``).

    :param name: the name given.
    :param args: the parsed options.

    A plugin that knows jobs by name (a store) prints the job and returns the
    exit code; None lets the core treat NAME as a batch id.
    """


@hookspec(firstresult=True)
def open_store(location: str, options: StoreOptions) -> Optional[JobStore]:
    """Open the job store at ``location``, if this plugin's backend understands it.

    :param location: what the user gave (``--store``, ``$CLAUDEBATCH_STORE``) or the
        per-user store's path: a file path for SQLite, ``postgresql://...`` for
        PostgreSQL.
    :param options: how to open it (:class:`~claudebatch.store.StoreOptions`): may it
        be created, how long to wait for a job's lock, where to say what it does.

    A backend returns a :class:`~claudebatch.store.JobStore` over its
    :class:`~claudebatch.store.Database`, or None for a location it does not
    handle. It raises :class:`~claudebatch.store.NoStoreError` when the location is
    its kind but holds no store and ``options.create`` is False.
    """


def hook_names() -> List[str]:
    """Every hook this module declares (used by docs and tests)."""
    return sorted(
        name for name, value in globals().items()
        if callable(value) and hasattr(value, "claudebatch_spec")
    )
