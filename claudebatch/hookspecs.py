"""Every hook claudebatch calls, one docstring each.

Plugins implement these with ``@claudebatch.hookimpl`` (pluggy, project name
``"claudebatch"``); an implementation may take any subset of the arguments.

``context`` is the object driving the call: the :class:`~claudebatch.BatchClient`
for a single endpoint call, or the :class:`~claudebatch._job.Job` inside ``run()``
(which has ``.client``). Plugins read state from it rather than from a growing
list of arguments.

Order, when several plugins implement the same hook (pluggy calls ``tryfirst``
implementations first and ``trylast`` ones last; within a group, do not rely on
registration order):

1. ``tryfirst``: rewrite the requests (prompt-cache injection);
2. plain: look at the rewritten requests (cost estimates, budget vetoes);
3. ``trylast``: record what is about to happen (persistence), so a veto from
   step 2 leaves nothing recorded.

Built-in defaults for the ``firstresult`` policies are registered as an
ordinary plugin (:mod:`claudebatch.policies`) marked ``trylast``, so any plugin
that answers replaces them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional

import pluggy
import requests

if TYPE_CHECKING:
    from ._pending import PendingBatch
    from .models import BatchResult, MessageBatch

hookspec = pluggy.HookspecMarker("claudebatch")

#: Returned from :func:`retry_delay` to stop retrying and raise the error now.
GIVE_UP: float = -1.0


@hookspec
def before_submit(requests: PendingBatch, context: Any) -> None:
    """Called before a batch is created, with the requests about to be sent.

    ``requests`` is re-iterable and knows its ``len()``; it may be far larger
    than memory, so rewrite requests with ``requests.transform(fn)`` (``fn``
    maps a :class:`~claudebatch.Request` to a new one and is applied lazily as
    the body is written), never by collecting them. Raise to veto the
    submission: nothing is sent and the exception reaches the caller.
    """


@hookspec
def before_pass(batches: List[PendingBatch], context: Any) -> None:
    """A job has validated and split a pass: every batch it is about to send, before the first.

    The same PendingBatch objects then go through ``before_submit`` one by one.
    Look, don't send: a budget can weigh the whole pass here and raise to veto it
    (nothing of the pass is sent). ``context.pass_number`` says which pass.
    """


@hookspec
def estimate(requests: PendingBatch, context: Any) -> None:
    """A dry run (``claudebatch run --dry-run``): look at a batch that would be sent.

    Called for each planned batch instead of ``before_submit``; nothing is
    sent. Rewriting plugins transform here too (``tryfirst``), so estimates
    see the requests as they would go out. Report through ``job_summary``.
    """


@hookspec
def on_submit_error(requests: PendingBatch, error: BaseException, made_nothing: bool,
                    context: Any) -> None:
    """Called when a create failed after ``before_submit``, before the error reaches the caller.

    ``made_nothing`` is True when the service certainly made no batch: nothing was
    sent (the body was refused before sending), or the service answered with an
    error (other than a 504 gateway timeout). False when the outcome is unknown (the
    connection broke, a timeout, an answer that is not a batch): a batch may exist,
    and a store keeps its intent so a resumed job looks for it.
    """


@hookspec
def after_submit(batch: MessageBatch, requests: PendingBatch, context: Any) -> None:
    """Called once the service has accepted a batch (``batch.id`` is known)."""


@hookspec
def on_poll(batch: MessageBatch, context: Any) -> None:
    """Called after every status check while waiting, with the fresh batch."""


@hookspec
def on_result(result: BatchResult, context: Any) -> None:
    """Called for every result as it streams in, before the caller sees it.

    Inside a job, once per result the job keeps: a download resumed after a
    broken stream does not call it again for results already written.
    """


@hookspec
def on_batch_end(batch: MessageBatch, context: Any, complete: bool) -> None:
    """Called once a batch has ended and its results have been streamed to the output.

    ``complete`` is True when every request of the batch has its result line
    written; False when some never came (a download that kept breaking, results
    already deleted): a store must not count that batch as collected, so a rerun
    fetches what is missing.
    """


@hookspec
def on_job_end(report: Any, context: Any) -> None:
    """Called when a whole job (``client.run``) has finished, with its JobReport."""


@hookspec(firstresult=True)
def retry_delay(attempt: int, response: Optional[requests.Response],
                error: Optional[BaseException], context: Any) -> Optional[float]:
    """How long to wait before retrying a failed HTTP request, in seconds.

    ``attempt`` counts from 0 (the first retry). Exactly one of ``response``
    (an error status) and ``error`` (a connection error or timeout) is set.
    Return ``None`` for no opinion, a number >= 0 to retry after that many
    seconds, or :data:`GIVE_UP` to raise the error now. ``max_retries`` still
    bounds the number of attempts.
    """


@hookspec(firstresult=True)
def poll_delay(batch: MessageBatch, attempt: int, first_interval: float,
               context: Any) -> Optional[float]:
    """Seconds to wait before the next status check of ``batch``.

    ``attempt`` counts the polls so far (0 before the second check);
    ``first_interval`` is the caller's ``poll_interval`` (or the default).
    """


@hookspec(firstresult=True)
def resubmit_requests(pass_number: int, context: Any) -> Optional[Iterable[Any]]:
    """After pass ``pass_number`` of a job has ended: requests to send again, or None.

    ``context`` is the Job (``context.find_requests(ids)`` gives back the
    original requests). The job runs another pass with what is returned; the
    final output keeps one line per custom_id, the last attempt's.
    """


@hookspec(firstresult=True)
def resume_state(context: Any) -> Optional[Any]:
    """Before a job submits anything: what an earlier run of it already did, or None.

    Return a :class:`~claudebatch._job.ResumeState` (batches already created per
    pass and batch index, batches whose results are already in the output);
    the job then neither creates those batches again nor writes their results
    twice. ``context`` is the Job after validation and splitting.
    """


@hookspec
def job_summary(report: Any, context: Any) -> Optional[Dict[str, Any]]:
    """A plugin's figures for ``report.plugins``: ``{"name": summary}``.

    ``report`` is the JobReport after a run, or the JobPlan of a dry run.
    """


@hookspec
def add_cli_options(parser: argparse.ArgumentParser) -> None:
    """Add a plugin's options to the ``claudebatch`` commands that run jobs (run, demo)."""


@hookspec
def plugins_from_cli(args: argparse.Namespace) -> Optional[Iterable[Any]]:
    """Return plugin instances configured from the parsed command-line ``args``.

    ``args.demo`` is True under ``claudebatch demo``, which runs with every
    installed plugin active: return an instance with defaults then.
    """


@hookspec
def register_commands(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add whole subcommands (``claudebatch export ...``), as llm plugins do.

    ``subparsers.add_parser(name, parents=[common], ...)`` gives the command
    the shared options (``--base-url``, ``--max-retries``); set
    ``set_defaults(command=func)`` where ``func(args) -> int`` is the exit code.
    """


@hookspec(firstresult=True)
def show_status(name: str, args: argparse.Namespace) -> Optional[int]:
    """``claudebatch status NAME`` for a NAME that is not a batch id (``msgbatch_...``).

    A plugin that knows jobs by name (the persistence store) prints the job and
    returns the exit code; None lets the core treat NAME as a batch id.
    """


def hook_names() -> List[str]:
    """Every hook this module declares (used by docs and tests)."""
    return sorted(
        name for name, value in globals().items()
        if callable(value) and hasattr(value, "claudebatch_spec")
    )
