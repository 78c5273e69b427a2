"""RetryPolicy: resubmit what can succeed after each pass of a job, never what cannot.

How it rides the job (see ``claudebatch/job.py``):

* ``on_result`` classifies every streamed result (:mod:`claudebatch_retry.classify`)
  and remembers each request's latest failure; a later success forgets it;
* ``resubmit_requests`` (after every pass) hands back, from the job's own
  requests (``context.find_requests``), those whose failure in that pass is
  retryable, after a pause, while extra passes are left;
* with ``continue_paused``, a success that stopped with ``pause_turn`` (a server
  tool's long turn, paused by the service) is sent again in the next pass with the
  paused assistant content appended, as the server-tools guide shows, so the
  model continues its turn;
* ``on_job_end`` / ``job_summary`` turn what is left into the list of requests
  that failed for good, each with its last error (the output file holds the
  same last attempt: the job keeps one line per custom_id).

It can also answer ``retry_delay`` (HTTP retries), when given ``http=HttpRetry(...)``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple, Union

from claudebatch import (
    CallContext,
    JobContext,
    JobPlan,
    JobReport,
    Request,
    hookimpl,
)
from claudebatch.limits import MAX_PASSES

from .classify import Classification, classify
from .failures import NOT_RETRYABLE, RETRIES_EXHAUSTED, FailedForGood, Failure
from .http_policy import HttpRetry, HttpRetrySchedule

if TYPE_CHECKING:
    import requests

logger = logging.getLogger("claudebatch.retry")

DEFAULT_PASSES = 2
#: Seconds between a pass and its resubmission: transient overload often lasts minutes.
DEFAULT_PAUSE = 60.0
#: The most extra passes a job runs (the core stops asking after MAX_PASSES in all).
MAX_EXTRA_PASSES = MAX_PASSES - 1


@dataclass(frozen=True)
class _Seen:
    """A request's latest failure, and the pass it came back in."""

    pass_number: int
    classification: Classification


def original_requests(context: JobContext, pass_number: int, custom_ids: List[str]
                      ) -> List[Request]:
    """The job's own requests with these custom_ids, as the latest pass sent them."""
    return list(context.find_requests(custom_ids))


def continued(request: Request, content: List[Any]) -> Request:
    """``request`` again, its paused assistant content appended so the turn goes on (to
    the last message when that is the assistant's, as a paused turn continued once is)."""
    params = dict(request.params)
    messages = list(params.get("messages") or [])
    last = messages[-1] if messages else None
    if isinstance(last, dict) and last.get("role") == "assistant":
        before = last.get("content")
        blocks = [{"type": "text", "text": before}] if isinstance(before, str) and before \
            else list(before) if isinstance(before, list) else []
        messages[-1] = {**last, "content": blocks + list(content)}
    else:
        messages.append({"role": "assistant", "content": list(content)})
    params["messages"] = messages
    return Request(request.custom_id, params)


class RetryPolicy:
    """Resubmits retryable failures for up to ``passes`` extra passes of a job.

    ``passes``: extra passes after the first (0: never resubmit; at most 9).
    ``retry_canceled``: resubmit ``canceled`` requests too (off: a batch is
    canceled on purpose). ``pause``: seconds to wait before each extra pass.
    ``continue_paused``: continue ``pause_turn`` results in the next pass (they
    share the ``passes``); the output then holds the continuation's response, and
    the request sent (a store keeps it) holds the paused content it continued.
    ``http``: an :class:`HttpRetry` to replace the client's HTTP retry schedule;
    None leaves the built-in one in place.

    After a job, ``failed_for_good`` maps each custom_id whose last result is not
    a success to its :class:`Failure`; ``resubmitted`` counts requests sent again,
    ``recovered`` those of them that then succeeded. One instance follows one job
    at a time; the next job it sees starts it afresh.
    """

    def __init__(self, passes: int = DEFAULT_PASSES, *, retry_canceled: bool = False,
                 pause: float = DEFAULT_PAUSE, http: Optional[HttpRetry] = None,
                 continue_paused: bool = False) -> None:
        if isinstance(passes, bool) or not isinstance(passes, int) \
                or not 0 <= passes <= MAX_EXTRA_PASSES:
            raise ValueError(f"passes must be an integer from 0 to {MAX_EXTRA_PASSES} (extra "
                             f"passes after the first), got {passes!r}")
        if not pause >= 0:
            raise ValueError(f"pause must be >= 0 seconds, got {pause!r}")
        if http is not None and not isinstance(http, HttpRetry):
            raise TypeError(f"http must be an HttpRetry, got {type(http).__name__}")
        self.passes = passes
        self.retry_canceled = bool(retry_canceled)
        self.continue_paused = bool(continue_paused)
        self.pause = float(pause)
        self.http = http
        self._schedule = HttpRetrySchedule(http) if http is not None else None
        self._job: Optional[JobContext] = None
        self._reset()

    def __repr__(self) -> str:
        return (f"RetryPolicy(passes={self.passes}, retry_canceled={self.retry_canceled}, "
                f"pause={self.pause}, http={self.http!r}, "
                f"continue_paused={self.continue_paused})")

    def _reset(self) -> None:
        self._latest: Dict[str, _Seen] = {}  # custom_id -> latest failure (none once succeeded)
        self._sent_again: Counter[str] = Counter()
        self._recovered: Set[str] = set()
        #: custom_id -> (pass, the paused response's content, raw) to continue
        self._paused: Dict[str, Tuple[int, List[Any]]] = {}
        self.continued: Set[str] = set()
        self._continuing: Set[str] = set()  # paused turns of the next pass
        self.extra_passes = 0
        self.failed_for_good: Dict[str, Failure] = {}

    def _follow(self, context: CallContext) -> bool:
        """True inside a job; a job other than the one followed so far starts afresh
        (``on_job_start`` does that first; this covers a policy added mid-job)."""
        if not isinstance(context, JobContext):
            return False  # a single endpoint call: not a job
        if context is not self._job:
            self.on_job_start(context)
        return True

    @property
    def resubmitted(self) -> int:
        """Requests sent again (each counted once, however many extra passes it took)."""
        return len(self._sent_again)

    @property
    def recovered(self) -> int:
        """Resubmitted requests whose last result is a success."""
        return len(self._recovered)

    # --- job hooks ----------------------------------------------------------------

    @hookimpl
    def on_job_start(self, context: JobContext) -> None:
        self._job = context
        self._reset()
        # What is sent again is what the job plans in a later pass, whoever decided it
        # (this policy, or a store answering as an earlier run decided).
        context.on_planned(lambda request: self._planned(request, context))

    def _planned(self, request: Request, context: JobContext) -> None:
        if context.pass_number > 1:
            if request.custom_id in self._continuing:
                self._continuing.discard(request.custom_id)  # a paused turn going on
                self.extra_passes = max(self.extra_passes, context.pass_number - 1)
                return
            self._sent_again[request.custom_id] += 1
            self.extra_passes = max(self.extra_passes, context.pass_number - 1)

    @hookimpl
    def on_result(self, raw: Dict[str, Any], line: bytes, context: CallContext) -> None:
        """Read from ``raw``; a typed result is built only for a failure to classify."""
        if not self._follow(context):
            return
        custom_id = raw["custom_id"]
        outcome = raw["result"]
        if outcome.get("type") == "succeeded":  # the common case: nothing is built
            self._latest.pop(custom_id, None)
            self._paused.pop(custom_id, None)
            if custom_id in self._sent_again:
                self._recovered.add(custom_id)
            # the line first: the service writes the stop reason plainly (not with \u
            # escapes), and a line without it is not looked into
            message = outcome.get("message")
            if self.continue_paused and b'"pause_turn"' in line \
                    and isinstance(message, dict) and message.get("stop_reason") == "pause_turn":
                assert isinstance(context, JobContext)
                # the raw line: content blocks this version does not model go back as sent
                content = json.loads(line)["result"]["message"]["content"]
                self._paused[custom_id] = (context.pass_number, content)
            return
        from claudebatch import parse_result  # not at import: the CLI's start-up loads us

        verdict = classify(parse_result(raw), retry_canceled=self.retry_canceled)
        self._recovered.discard(custom_id)
        assert isinstance(context, JobContext)  # _follow: the job's own context
        self._latest[custom_id] = _Seen(context.pass_number, verdict)

    @hookimpl
    def resubmit_requests(self, pass_number: int, context: JobContext
                          ) -> Optional[List[Request]]:
        if not self._follow(context):
            return None
        retry = [custom_id for custom_id, seen in self._latest.items()
                 if seen.pass_number == pass_number and seen.classification.retryable]
        paused = {custom_id: content for custom_id, (seen, content) in self._paused.items()
                  if seen == pass_number}
        if not retry and not paused:
            return None
        if pass_number > self.passes:
            logger.info("job %s: %d retryable request(s) failed and %d paused in pass %d; no "
                        "extra passes left (passes=%d)", getattr(context, "name", "?"),
                        len(retry), len(paused), pass_number, self.passes)
            return None
        requests_again = original_requests(context, pass_number, retry)
        if retry:
            kinds = Counter(self._latest[r.custom_id].classification.error_type
                            or self._latest[r.custom_id].classification.result_type
                            for r in requests_again)
            logger.info("job %s: pass %d left %d retryable failure(s) (%s); resubmitting them "
                        "in %.3g s", context.name, pass_number, len(requests_again),
                        ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())), self.pause)
        if paused:
            self._continuing = set(paused)
            for request in original_requests(context, pass_number, list(paused)):
                requests_again.append(continued(request, paused[request.custom_id]))
                self.continued.add(request.custom_id)
            logger.info("job %s: continuing %d paused turn(s) (pause_turn) in the next pass",
                        context.name, len(paused))
        if self.pause > 0:
            context.clock.sleep(self.pause)
        return requests_again

    @hookimpl
    def on_job_end(self, report: JobReport, context: JobContext) -> None:
        if self._follow(context):
            self.failed_for_good = self._final_failures(report)

    @hookimpl
    def job_summary(self, report: Union[JobReport, JobPlan], context: JobContext
                    ) -> Optional[Dict[str, Any]]:
        if not isinstance(report, JobReport) or not self._follow(context):
            return None  # a dry run sends nothing: nothing to say
        self.failed_for_good = self._final_failures(report)
        failed = FailedForGood(
            (custom_id, failure.to_dict()) for custom_id, failure in self.failed_for_good.items())
        return {"retry": {
            "extra_passes": self.extra_passes,
            "resubmitted": self.resubmitted,
            "recovered": self.recovered,
            **({"continued_paused": len(self.continued)} if self.continue_paused else {}),
            "failed_for_good": failed,
        }}

    def _final_failures(self, report: JobReport) -> Dict[str, Failure]:
        # A request whose latest attempt got no result is the report's "missing", not a
        # failure: an earlier attempt's error is not its answer.
        missing = set(report.missing)
        failures = {}
        for custom_id, seen in self._latest.items():
            if custom_id in missing:
                continue
            c = seen.classification
            failures[custom_id] = Failure(
                custom_id=custom_id, type=c.result_type, error_type=c.error_type,
                message=c.message, attempts=1 + self._sent_again[custom_id],
                reason=RETRIES_EXHAUSTED if c.retryable else NOT_RETRYABLE)
        return failures

    # --- HTTP ---------------------------------------------------------------------

    @hookimpl
    def retry_delay(self, attempt: int, response: Optional[requests.Response],
                    error: Optional[BaseException], context: CallContext) -> Optional[float]:
        if self._schedule is None:
            return None  # not configured: the client's built-in schedule applies
        return self._schedule.delay(attempt, response, error, context)
