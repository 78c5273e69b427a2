"""The result-level policy over a job's passes, with a stand-in job and a fake clock."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest
from claudebatch_retry import RetryPolicy

from claudebatch import BatchClient, JobContext, JobPlan, JobReport, Request
from claudebatch._results import to_result


class Clock:
    def __init__(self) -> None:
        self.sleeps: List[float] = []

    def time(self) -> float:
        return 1_700_000_000.0 + sum(self.sleeps)

    def monotonic(self) -> float:
        return sum(self.sleeps)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


class StandInJob(JobContext):
    """A real job's context, planned but never run: the test moves its passes on."""

    def __init__(self, count: int) -> None:
        self.requests = [Request(f"r{i}", {"model": "m", "max_tokens": 1, "messages": [
            {"role": "user", "content": str(i)}]}) for i in range(count)]
        self.fake_clock = Clock()
        client = BatchClient(api_key="k", base_url="http://127.0.0.1:9", clock=self.fake_clock,
                             load_entry_points=False)
        job = client.job(self.requests, name="job")
        job.plan(self.requests)  # spooled: find_requests works
        job.pass_number = 1
        super().__init__(job)

    @property
    def pass_number(self) -> int:
        return self._job.pass_number

    @pass_number.setter
    def pass_number(self, value: int) -> None:
        self._job.pass_number = value


def result(custom_id: str, kind: str, error_type: Optional[str] = None) -> Dict[str, Any]:
    """A result as the policy reads it (``raw``: the line's dict)."""
    body: Dict[str, Any] = {"type": kind}
    if kind == "errored":
        body["error"] = {"type": "error", "error": {"type": error_type, "message": "msg"}}
    if kind == "succeeded":
        body["message"] = {"id": "m", "type": "message", "role": "assistant", "model": "m",
                           "content": [], "stop_reason": "end_turn", "stop_sequence": None,
                           "usage": {"input_tokens": 1, "output_tokens": 1}}
    value = {"custom_id": custom_id, "result": body}
    to_result(value, source="test")  # a result the client would read
    return value


def run_pass(policy: RetryPolicy, job: StandInJob, outcomes: Dict[str, Any]) -> Optional[List[str]]:
    """Stream one pass's results through the policy; return the ids it resubmits."""
    for custom_id, outcome in outcomes.items():
        kind, _, error_type = outcome.partition(":")
        policy.on_result(raw=result(custom_id, kind, error_type or None), line=b"{}",
                         context=job)
    again = policy.resubmit_requests(pass_number=job.pass_number, context=job)
    if again is None:
        return None
    job.pass_number += 1  # the job plans the next pass: its watchers see each request
    for request in again:
        for watch in job.planning_watchers:
            watch(request)
    return [r.custom_id for r in again]


def report(job: StandInJob) -> JobReport:
    return JobReport(name=job.name, output="out.jsonl", total_requests=len(job.requests),
                     counts={}, batches=[], missing=[], passes=job.pass_number,
                     elapsed_seconds=0.0)


def finish(policy: RetryPolicy, job: StandInJob) -> Dict[str, Any]:
    rep = report(job)
    policy.on_job_end(report=rep, context=job)
    summary = policy.job_summary(report=rep, context=job)
    assert summary is not None
    return dict(summary["retry"])


def test_only_retryable_failures_go_to_the_next_pass_as_the_original_requests() -> None:
    job = StandInJob(6)
    policy = RetryPolicy(pause=30)
    again = run_pass(policy, job, {
        "r0": "succeeded", "r1": "expired", "r2": "errored:overloaded_error",
        "r3": "errored:invalid_request_error", "r4": "canceled", "r5": "errored:api_error"})
    assert again == ["r1", "r2", "r5"]
    assert job.fake_clock.sleeps == [30.0]  # the pause, through the client's clock


def test_the_requests_handed_back_are_the_jobs_own() -> None:
    job = StandInJob(2)
    policy = RetryPolicy(pause=0)
    policy.on_result(raw=result("r1", "expired"), line=b"{}", context=job)
    again = policy.resubmit_requests(pass_number=1, context=job)
    assert again == [job.requests[1]]
    assert job.fake_clock.sleeps == []  # pause=0: no sleep at all


def test_passes_bound_the_extra_passes_and_the_last_error_is_reported() -> None:
    job = StandInJob(3)
    policy = RetryPolicy(passes=2, pause=1)
    assert run_pass(policy, job, {"r0": "errored:api_error", "r1": "expired",
                                  "r2": "succeeded"}) == ["r0", "r1"]
    assert run_pass(policy, job, {"r0": "errored:overloaded_error",
                                  "r1": "succeeded"}) == ["r0"]
    assert run_pass(policy, job, {"r0": "errored:timeout_error"}) is None  # passes used up
    assert job.fake_clock.sleeps == [1.0, 1.0]
    summary = finish(policy, job)
    failure = policy.failed_for_good["r0"]
    assert (failure.type, failure.error_type, failure.attempts, failure.reason) == (
        "errored", "timeout_error", 3, "retries exhausted")
    assert failure.error == "timeout_error: msg"
    assert set(policy.failed_for_good) == {"r0"}
    assert summary["extra_passes"] == 2
    assert summary["resubmitted"] == 2 and summary["recovered"] == 1
    assert summary["failed_for_good"] == {"r0": {
        "custom_id": "r0", "type": "errored", "error_type": "timeout_error", "message": "msg",
        "attempts": 3, "reason": "retries exhausted"}}


def test_passes_zero_resubmits_nothing_but_still_reports() -> None:
    job = StandInJob(2)
    policy = RetryPolicy(passes=0)
    assert run_pass(policy, job, {"r0": "expired", "r1": "errored:billing_error"}) is None
    assert job.fake_clock.sleeps == []
    finish(policy, job)
    assert {k: (v.error, v.reason) for k, v in policy.failed_for_good.items()} == {
        "r0": ("expired", "retries exhausted"),
        "r1": ("billing_error: msg", "not retryable")}


def test_canceled_goes_again_only_with_retry_canceled() -> None:
    job = StandInJob(2)
    assert run_pass(RetryPolicy(pause=0), job, {"r0": "canceled", "r1": "expired"}) == ["r1"]
    job = StandInJob(2)
    assert run_pass(RetryPolicy(pause=0, retry_canceled=True), job,
                    {"r0": "canceled", "r1": "expired"}) == ["r0", "r1"]


def test_a_result_seen_twice_in_a_pass_counts_once() -> None:
    # the job re-reads a results stream that broke part-way: on_result sees lines again
    job = StandInJob(2)
    policy = RetryPolicy(pause=0)
    for _ in range(2):
        policy.on_result(raw=result("r0", "expired"), line=b"{}", context=job)
    assert [r.custom_id for r in policy.resubmit_requests(pass_number=1, context=job) or []] \
        == ["r0"]


def test_a_new_job_starts_afresh() -> None:
    policy = RetryPolicy(pause=0)
    first = StandInJob(1)
    run_pass(policy, first, {"r0": "errored:not_found_error"})
    finish(policy, first)
    assert set(policy.failed_for_good) == {"r0"}
    second = StandInJob(1)
    assert run_pass(policy, second, {"r0": "succeeded"}) is None
    finish(policy, second)
    assert policy.failed_for_good == {} and policy.resubmitted == 0


def test_results_outside_a_job_are_ignored() -> None:
    policy = RetryPolicy()
    outside = BatchClient(api_key="k", base_url="http://127.0.0.1:9").context
    policy.on_result(raw=result("r0", "expired"), line=b"{}", context=outside)
    assert policy.resubmit_requests(pass_number=1, context=StandInJob(1)) is None


def test_a_dry_run_gets_no_summary() -> None:
    plan = JobPlan(name="job", total_requests=1, batches=[(1, 100)])
    assert RetryPolicy().job_summary(report=plan, context=StandInJob(1)) is None


def test_the_printed_summary_stays_one_short_line() -> None:
    job = StandInJob(20)
    policy = RetryPolicy(passes=0)
    run_pass(policy, job, {f"r{i}": "errored:invalid_request_error" for i in range(20)})
    rep = report(job)
    rep.plugins.update(policy.job_summary(report=rep, context=job) or {})
    line = rep.summary().splitlines()[-1]
    assert line.startswith("  retry: extra_passes 0, resubmitted 0, recovered 0, "
                           "failed_for_good 20: r0 (invalid_request_error)")
    assert line.endswith("and 15 more")
    assert len(rep.plugins["retry"]["failed_for_good"]) == 20  # all of them, for code


@pytest.mark.parametrize("kwargs", [{"passes": -1}, {"passes": 10}, {"passes": 1.5},
                                    {"passes": True}, {"pause": -1.0}, {"http": {"attempts": 3}}])
def test_bad_settings_are_refused(kwargs: Dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        RetryPolicy(**kwargs)
