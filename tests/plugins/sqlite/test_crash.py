"""Kill a job with SIGKILL at many points, resume it, and check nothing was paid twice or lost.

Each case runs a job in a fresh process (forked from a server that has imported
claudebatch already, so a case costs milliseconds, not an interpreter start)
against an emulator in this process, which outlives the child. The job: 24
requests in batches of 8 (3 batches), then a second pass resending the 12 even
requests (2 batches): 5 batches in all. The child dies at the chosen point with
SIGKILL; a second fresh process runs the same job again. Then:

* the emulator made exactly the 5 batches the job needed;
* the output holds every custom_id exactly once, each line the latest attempt
  as the emulator serves it (the second pass's for even ids);
* every result in the store is identical to what the emulator serves for that
  batch, and every batch's results are all there.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from claudebatch_sqlite import SQLiteStore

from claudebatch import BatchClient
from claudebatch.emulator import Emulator

from .crash_child import run_child
from .helpers import fork_context

REQUESTS = 24
MAX_BATCH = 8
PASS_TWO = [f"q-{i:03d}" for i in range(0, REQUESTS, 2)]
NEEDED_BATCHES = 3 + 2

class CreateWatcher:
    """Emulator log hook: kill the child at its n-th create, or drop the n-th create's answer.

    The emulator logs a request once its answer's headers are out and before its
    body is: a kill there lands while the child waits for the create's answer,
    after the service made the batch.
    """

    def __init__(self, emulator: Emulator, kill_at: Optional[int] = None,
                 drop_at: Optional[int] = None) -> None:
        self.emulator = emulator
        self.kill_at = kill_at
        self.drop_at = drop_at
        self.creates = 0
        self.pid: Optional[int] = None
        self.killed = threading.Event()
        if drop_at == 1:
            emulator.inject("drop_create")

    def __call__(self, line: str) -> None:
        if not line.startswith("POST /v1/messages/batches ->"):
            return
        self.creates += 1
        if self.drop_at is not None and self.creates == self.drop_at - 1:
            self.emulator.inject("drop_create")
        if self.kill_at is not None and self.creates == self.kill_at and self.pid:
            os.kill(self.pid, signal.SIGKILL)
            self.killed.set()


def run_job(emulator: Emulator, tmp_path: Path, kill: Optional[Dict[str, Any]],
            watcher: Optional[CreateWatcher] = None, tag: str = "run") -> int:
    config = {"url": emulator.url, "store": str(tmp_path / "store.db"),
              "output": str(tmp_path / "out.jsonl"), "name": "crashy",
              "requests": REQUESTS, "max_batch": MAX_BATCH, "kill": kill,
              "report": str(tmp_path / f"{tag}-report.json"), "commit_every": 3}
    process = fork_context().Process(target=run_child, args=(config,))
    process.start()
    if watcher is not None:
        watcher.pid = process.pid
    process.join(60)
    assert process.exitcode is not None, "the child hung"
    return int(process.exitcode)


def emulator_results(emulator: Emulator, batch_id: str) -> Dict[str, Dict[str, Any]]:
    client = BatchClient(api_key="emulator", base_url=emulator.url, load_entry_points=False)
    return {value["custom_id"]: value for value in client.results(batch_id, raw=True)}


def check_everything(emulator: Emulator, tmp_path: Path) -> None:
    report = json.loads((tmp_path / "resume-report.json").read_text())
    assert report["complete"] and report["missing"] == []
    assert report["counts"] == {"succeeded": REQUESTS}
    assert report["passes"] == 2

    # no batch paid twice
    assert emulator.batches_created == NEEDED_BATCHES, emulator.batch_ids
    with SQLiteStore(tmp_path / "store.db", warn=False) as store:
        job = store.job("crashy")
        stored = list(store.results("crashy"))
    slots = {(b.pass_number, b.index): b.batch_id for b in job.batches}
    assert sorted(slots) == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1)]
    assert sorted(slots.values()) == sorted(emulator.batch_ids)
    assert all(b.results_done for b in job.batches)
    assert job.state == "done" and job.missing == 0

    # what the emulator serves, per pass
    served: Dict[int, Dict[str, Dict[str, Any]]] = {1: {}, 2: {}}
    for (pass_number, _), batch_id in slots.items():
        served[pass_number].update(emulator_results(emulator, batch_id))
    assert len(served[1]) == REQUESTS and sorted(served[2]) == PASS_TWO

    # every custom_id exactly once in the output, each its latest attempt
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    ids = [line["custom_id"] for line in lines]
    assert len(ids) == len(set(ids)) == REQUESTS
    for line in lines:
        latest = served[2].get(line["custom_id"]) or served[1][line["custom_id"]]
        assert line == latest

    # every stored result identical to the emulator's, none missing
    assert len(stored) == REQUESTS + len(PASS_TWO)
    for pass_number, custom_id, raw in stored:
        assert json.loads(raw) == served[pass_number][custom_id]


def assert_dead_job_shows_interrupted(tmp_path: Path) -> None:
    """The killed process's lock is seen to be stale: the job reads as interrupted."""
    if not (tmp_path / "store.db").exists():
        return  # killed before the store was opened
    with SQLiteStore(tmp_path / "store.db", warn=False) as store:
        states = {job.name: job.state for job in store.jobs()}
    assert states.get("crashy", "interrupted") in ("interrupted", "done"), states


# (name, kill spec, emulator-side kill at the n-th create, drop the n-th create's answer)
Point = Tuple[str, Optional[Dict[str, Any]], Optional[int], Optional[int]]


def point(name: str, where: Optional[str] = None, hook: Optional[str] = None, n: int = 1, *,
          in_pass: Optional[int] = None, kill_create: Optional[int] = None,
          drop_create: Optional[int] = None) -> Point:
    kill = {"where": where, "hook": hook, "n": n, "pass": in_pass} if where else None
    return name, kill, kill_create, drop_create


POINTS: List[Point] = [
    # validating the input (nothing recorded yet)
    point("validating-first-row", "source", n=1),
    point("validating-mid-input", "source", n=12),
    point("validating-last-row", "source", n=24),
    point("after-validation-before-resume-state", "before", "resume_state"),
    # between building a batch and sending it
    point("before-intent-batch-0", "before", "before_submit", 1),
    point("after-intent-batch-0", "after", "before_submit", 1),
    point("after-intent-batch-1", "after", "before_submit", 2),
    point("after-intent-batch-2", "after", "before_submit", 3),
    point("writing-body-batch-0", "before", "transform", 1),
    point("writing-body-batch-2", "before", "transform", 3),
    # during the create call
    point("create-in-flight-batch-0", kill_create=1),
    point("create-in-flight-batch-1", kill_create=2),
    point("create-in-flight-batch-2", kill_create=3),
    point("created-not-recorded-batch-0", "before", "after_submit", 1),
    point("created-not-recorded-batch-2", "before", "after_submit", 3),
    point("dropped-create-not-recorded", "before", "after_submit", 2, drop_create=2),
    point("created-and-recorded-batch-1", "after", "after_submit", 2),
    # while polling (each batch is polled at least once: these calls always happen)
    point("first-poll", "before", "on_poll", 1),
    point("poll-2-recorded", "after", "on_poll", 2),
    point("poll-3", "before", "on_poll", 3, in_pass=1),
    point("poll-3-recorded", "after", "on_poll", 3, in_pass=1),
    # streaming results
    point("first-result", "before", "on_result", 1),
    point("result-3-at-a-commit", "after", "on_result", 3),
    point("mid-first-batch", "before", "on_result", 5),
    point("last-result-of-a-batch", "after", "on_result", 8),
    point("mid-second-batch", "before", "on_result", 12),
    point("mid-third-batch", "after", "on_result", 21),
    point("batch-end-not-recorded", "before", "on_batch_end", 1),
    point("batch-end-recorded", "after", "on_batch_end", 2),
    # between passes
    point("last-batch-of-pass-1-ended", "after", "on_batch_end", 3),
    point("before-resubmission-decision", "before", "resubmit_requests", 1),
    point("while-deciding-pass-2", "deciding"),
    point("pass-2-intent", "after", "before_submit", 1, in_pass=2),
    point("pass-2-create-in-flight", kill_create=4),
    point("pass-2-second-batch-not-recorded", "before", "after_submit", 2, in_pass=2),
    point("pass-2-poll", "after", "on_poll", 2, in_pass=2),
    point("pass-2-mid-results", "before", "on_result", 4, in_pass=2),
    point("pass-2-last-batch-end", "before", "on_batch_end", 2, in_pass=2),
    # the job's end
    point("job-end-before-store", "before", "on_job_end"),
    point("job-end-after-store", "after", "on_job_end"),
]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    # 300 requests/s: a batch of 8 takes ~27 ms, so a job polls a few times.
    with Emulator(rate=300.0, seed=11) as emu:
        yield emu


@pytest.mark.parametrize("name, kill, kill_create, drop_create", POINTS,
                         ids=[p[0] for p in POINTS])
def test_killed_job_resumes_with_nothing_paid_twice_or_lost(
        emulator: Emulator, tmp_path: Path, name: str, kill: Optional[Dict[str, Any]],
        kill_create: Optional[int], drop_create: Optional[int]) -> None:
    watcher = CreateWatcher(emulator, kill_at=kill_create, drop_at=drop_create)
    emulator.log = watcher
    code = run_job(emulator, tmp_path, kill, watcher, tag="killed")
    assert code == -signal.SIGKILL, f"the child was not killed at {name} (exit {code})"
    assert_dead_job_shows_interrupted(tmp_path)
    emulator.log = None
    emulator.clear_faults()
    assert run_job(emulator, tmp_path, None, tag="resume") == 0
    check_everything(emulator, tmp_path)


@pytest.mark.parametrize("first, second", [
    ({"where": "before", "hook": "on_result", "n": 5},
     {"where": "after", "hook": "on_result", "n": 4}),
    ({"where": "after", "hook": "before_submit", "n": 2},
     {"where": "before", "hook": "after_submit", "n": 1}),
    ({"where": "before", "hook": "on_batch_end", "n": 3},
     {"where": "after", "hook": "before_submit", "n": 1}),
], ids=["twice-while-streaming", "twice-around-a-create", "twice-across-the-passes"])
def test_killed_again_while_resuming(emulator: Emulator, tmp_path: Path,
                                     first: Dict[str, Any], second: Dict[str, Any]) -> None:
    assert run_job(emulator, tmp_path, first, tag="first") == -signal.SIGKILL
    assert run_job(emulator, tmp_path, second, tag="second") == -signal.SIGKILL
    assert run_job(emulator, tmp_path, None, tag="resume") == 0
    check_everything(emulator, tmp_path)


def test_the_suite_kills_at_30_distinct_points_or_more() -> None:
    assert len({p[0] for p in POINTS}) == len(POINTS) >= 30


def test_an_uninterrupted_run_passes_the_same_checks(emulator: Emulator,
                                                    tmp_path: Path) -> None:
    assert run_job(emulator, tmp_path, None, tag="resume") == 0
    check_everything(emulator, tmp_path)
