"""Jobs that lose nothing, pay nothing twice and never mix two jobs' answers (issue: Trust).

Real HTTP to the emulator on loopback; a manual clock wherever the job would wait.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest
import requests

from claudebatch import (
    BatchClient,
    OutputPathError,
    ResumeState,
    hookimpl,
)
from claudebatch.emulator import Emulator
from claudebatch.emulator.clock import ManualClock
from claudebatch.limits import RESULT_STREAM_ATTEMPTS

from .test_jobs import read_output, request, write_jsonl


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emulator(clock: ManualClock) -> Iterator[Emulator]:
    with Emulator(rate=float("inf"), seed=5, clock=clock) as emu:
        yield emu


def client_for(emu: Emulator, clock: ManualClock, **kwargs: Any) -> BatchClient:
    return BatchClient(api_key="k", base_url=emu.url, poll_interval=0.01, clock=clock,
                       load_entry_points=False, **kwargs)


class LosesTheCreate(requests.Session):
    """A session whose first create's answer is lost, with ``meanwhile`` run in the gap.

    ``send_it`` False: the create never reaches the service (the connection broke first).
    """

    def __init__(self, meanwhile: Callable[[], None], *, send_it: bool) -> None:
        super().__init__()
        self.meanwhile = meanwhile
        self.send_it = send_it
        self.lost = False

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        if method == "POST" and str(url).endswith("/v1/messages/batches") and not self.lost:
            self.lost = True
            if self.send_it:
                super().request(method, url, *args, **kwargs).close()
            self.meanwhile()
            raise requests.ConnectionError("connection reset by peer")
        return super().request(method, url, *args, **kwargs)


def other_job(emu: Emulator, clock: ManualClock, count: int) -> Callable[[], None]:
    """Job B: a batch of the same size, with custom_ids of its own."""
    def create() -> None:
        rows = [{**request(i), "custom_id": f"b-{i}"} for i in range(count)]
        client_for(emu, clock).create(rows)
    return create


@pytest.mark.parametrize("send_it", [True, False], ids=["create-made", "create-never-made"])
def test_a_lost_create_never_adopts_another_jobs_batch(emulator: Emulator, clock: ManualClock,
                                                       tmp_path: Path, send_it: bool) -> None:
    session = LosesTheCreate(other_job(emulator, clock, 50), send_it=send_it)
    client = client_for(emulator, clock, session=session, max_retries=0)
    report = client.run([request(i) for i in range(50)], output=str(tmp_path / "a.jsonl"))

    ids = sorted(line["custom_id"] for line in read_output(report.output))
    assert ids == sorted(f"r-{i}" for i in range(50))  # A's own answers, never B's
    assert report.complete
    # B's batch, and A's exactly once: found again if the lost create made it, else sent now
    assert emulator.batches_created == 2
    assert report.batch_ids[0] in emulator.batch_ids and len(set(report.batch_ids)) == 1


def test_an_adoption_handed_over_on_resume_is_proven_before_anything_is_written(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    other_job(emulator, clock, 20)()
    foreign = emulator.batch_ids[0]

    class Store:
        @hookimpl
        def resume_state(self) -> ResumeState:
            return ResumeState(submitted={(1, 0): foreign}, adopted={foreign: clock.time()})

    client = client_for(emulator, clock, plugins=[Store()])
    report = client.run([request(i) for i in range(20)], output=str(tmp_path / "a.jsonl"))
    assert sorted(x["custom_id"] for x in read_output(report.output)) == \
        sorted(f"r-{i}" for i in range(20))
    assert emulator.batches_created == 2 and report.batch_ids != [foreign]


def test_result_lines_for_requests_the_batch_never_sent_are_not_written(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    other_job(emulator, clock, 10)()
    foreign = emulator.batch_ids[0]

    class Store:  # a resume that (wrongly) says pass 1 batch 0 is that batch
        @hookimpl
        def resume_state(self) -> ResumeState:
            return ResumeState(submitted={(1, 0): foreign})

    client = client_for(emulator, clock, plugins=[Store()])
    report = client.run([request(i) for i in range(10)], output=str(tmp_path / "a.jsonl"))
    assert read_output(report.output) == []  # none of b-0..b-9 is written
    assert sorted(report.missing) == sorted(f"r-{i}" for i in range(10))


class Ends:
    """Records each on_batch_end's ``complete``."""

    def __init__(self) -> None:
        self.complete: List[bool] = []

    @hookimpl
    def on_batch_end(self, complete: bool) -> None:
        self.complete.append(complete)


def test_a_batch_is_complete_only_when_every_result_is_written(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    ends = Ends()
    emulator.inject("drop_results", times=RESULT_STREAM_ATTEMPTS, after=0.5)
    client = client_for(emulator, clock, plugins=[ends], max_retries=0)
    report = client.run([request(i) for i in range(100)], output=str(tmp_path / "o.jsonl"))
    assert ends.complete == [False] and report.missing

    ends = Ends()
    client = client_for(emulator, clock, plugins=[ends])
    client.run([request(i) for i in range(100)], output=str(tmp_path / "o2.jsonl"))
    assert ends.complete == [True]


def test_a_resumed_job_downloads_nothing_it_already_has(emulator: Emulator, clock: ManualClock,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    first = client_for(emulator, clock).run([request(i) for i in range(30)], output=str(out),
                                             max_batch_requests=10)
    downloads = len(emulator.requests_to("results"))

    class Remembered:  # every batch made, none marked finished, but all lines are there
        @hookimpl
        def resume_state(self) -> ResumeState:
            return ResumeState(submitted={(1, i): b for i, b in enumerate(first.batch_ids)})

    report = client_for(emulator, clock, plugins=[Remembered()]).run(
        [request(i) for i in range(30)], output=str(out), max_batch_requests=10)
    assert report.complete and len(read_output(str(out))) == 30
    assert len(emulator.requests_to("results")) == downloads  # nothing fetched again


class FailsFirstThenRetries:
    """Pass 1: every request fails (the emulator's errored fault); pass 2 resends them."""

    @hookimpl
    def resubmit_requests(self, pass_number: int, context: Any) -> Any:
        if pass_number == 1:
            return list(context.find_requests(f"r-{i}" for i in range(10)))
        return None


def test_a_later_pass_whose_result_never_came_is_missing_not_the_earlier_attempt(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    emulator.faults = emulator.faults.__class__(errored=1.0)

    class BreakPassTwo:
        @hookimpl
        def on_batch_end(self, context: Any) -> None:
            if context.pass_number == 1:
                emulator.faults = emulator.faults.__class__()
                emulator.inject("drop_results", times=RESULT_STREAM_ATTEMPTS, after=0.0)

    client = client_for(emulator, clock, plugins=[FailsFirstThenRetries(), BreakPassTwo()],
                        max_retries=0)
    report = client.run([request(i) for i in range(10)], output=str(tmp_path / "o.jsonl"))
    assert report.passes == 2
    assert sorted(report.missing) == sorted(f"r-{i}" for i in range(10))
    assert read_output(report.output) == []  # no stale pass-1 error passes for an answer
    assert report.counts.get("errored", 0) == 0


# --- the output file ------------------------------------------------------------------

def test_the_input_as_output_is_refused_before_anything_is_sent(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", (request(i) for i in range(5)))
    before = source.read_bytes()
    link = tmp_path / "link.jsonl"
    link.symlink_to(source)
    for output in (source, link):
        with pytest.raises(OutputPathError, match="is the input file"):
            client_for(emulator, clock).run(str(source), output=str(output))
    assert source.read_bytes() == before and emulator.batches_created == 0


@pytest.mark.parametrize("case", ["missing folder", "a folder"])
def test_an_output_that_cannot_be_written_is_refused_first(
        emulator: Emulator, clock: ManualClock, tmp_path: Path, case: str) -> None:
    output = tmp_path / "nope" / "o.jsonl" if case == "missing folder" else tmp_path
    with pytest.raises(OutputPathError):
        client_for(emulator, clock).run([request(0)], output=str(output))
    assert emulator.batches_created == 0


def test_a_new_output_is_private_and_a_rewritten_one_keeps_its_mode(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    new = tmp_path / "new.jsonl"
    client_for(emulator, clock).run([request(i) for i in range(3)], output=str(new))
    assert stat.S_IMODE(new.stat().st_mode) == 0o600

    kept = tmp_path / "kept.jsonl"
    kept.write_text("")
    os.chmod(kept, 0o640)
    emulator.faults = emulator.faults.__class__(errored=1.0)
    client = client_for(emulator, clock, plugins=[FailsFirstThenRetries()])
    report = client.run([request(i) for i in range(10)], output=str(kept))
    assert report.passes == 2  # the output was rewritten to keep the last attempts
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640


def test_the_spool_of_prompts_has_no_name_on_disk(emulator: Emulator, clock: ManualClock,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    spool_dir = tmp_path / "tmp"
    spool_dir.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool_dir))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    seen: List[List[str]] = []

    class Look:
        @hookimpl
        def on_poll(self) -> None:
            seen.append(os.listdir(spool_dir))

    client_for(emulator, clock, plugins=[Look()]).run(
        [request(i) for i in range(20)], output=str(tmp_path / "o.jsonl"))
    assert seen and all(names == [] for names in seen)  # a SIGKILL here leaves nothing


# --- a full disk ----------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 200 kB file system (tmpfs), for a real ENOSPC; root only (CI runs as root)."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)],
                          capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_leaves_no_partial_line_and_the_job_resumes_once_there_is_space(
        emulator: Emulator, clock: ManualClock, tmp_path: Path, small_disk: Path) -> None:
    import subprocess

    from claudebatch_sqlite import SQLiteStore

    from claudebatch import OutputError

    rows = [request(i, "x" * 200) for i in range(1000)]
    output, store = small_disk / "o.jsonl", tmp_path / "jobs.db"

    def run() -> Any:
        with SQLiteStore(store) as jobs:
            return client_for(emulator, clock, plugins=[jobs]).run(rows, name="full",
                                                                     output=str(output))

    with pytest.raises(OutputError, match="No space left on device") as info:
        run()
    assert "the same --name resumes" in str(info.value)
    data = output.read_bytes()
    assert 0 < len(data) <= 200 * 1024 and data.endswith(b"\n")  # whole lines only
    for line in data.splitlines():
        json.loads(line)

    subprocess.run(["mount", "-o", "remount,size=4m", str(small_disk)], check=True)
    report = run()
    assert report.complete and emulator.batches_created == 1  # resumed: nothing sent twice
    ids = sorted(json.loads(line)["custom_id"] for line in output.read_bytes().splitlines())
    assert ids == sorted(f"r-{i}" for i in range(1000))


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_a_bad_poll_interval_is_refused_before_anything_is_sent(
        emulator: Emulator, clock: ManualClock, tmp_path: Path, bad: float) -> None:
    with pytest.raises(ValueError, match="poll_interval must be a finite number"):
        client_for(emulator, clock).run([request(0)], output=str(tmp_path / "o.jsonl"),
                                        poll_interval=bad)
    assert emulator.batches_created == 0


def test_a_lost_create_never_adopts_a_same_id_batch_of_another_model(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    def other_model() -> None:  # job B: the same custom_ids, another model
        rows = [request(i) for i in range(20)]
        for row in rows:
            row["params"] = {**row["params"], "model": "claude-sonnet-4-5"}
        client_for(emulator, clock).create(rows)

    session = LosesTheCreate(other_model, send_it=False)
    client = client_for(emulator, clock, session=session, max_retries=0)
    report = client.run([request(i) for i in range(20)], output=str(tmp_path / "a.jsonl"))
    models = {line["result"]["message"]["model"] for line in read_output(report.output)}
    assert all(m.startswith("claude-haiku-4-5") for m in models)
    assert emulator.batches_created == 2


def test_the_output_deleted_while_the_job_writes_is_an_error_not_a_success(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    from claudebatch import OutputError

    out = tmp_path / "o.jsonl"

    class DeleteIt:
        @hookimpl
        def on_result(self) -> None:
            if out.exists():
                out.unlink()

    with pytest.raises(OutputError, match="deleted or replaced"):
        client_for(emulator, clock, plugins=[DeleteIt()]).run(
            [request(i) for i in range(10)], output=str(out))


@pytest.mark.parametrize("where", ["/dev/null", "dangling link"])
def test_an_output_that_is_not_a_regular_file_is_refused(
        emulator: Emulator, clock: ManualClock, tmp_path: Path, where: str) -> None:
    output = where
    if where == "dangling link":
        link = tmp_path / "o.jsonl"
        link.symlink_to(tmp_path / "nowhere" / "o.jsonl")
        output = str(link)
    with pytest.raises(OutputPathError):
        client_for(emulator, clock).run([request(0)], output=output)
    assert emulator.batches_created == 0


def test_a_run_that_fails_before_writing_leaves_the_output_as_it_was(
        emulator: Emulator, clock: ManualClock, tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    out.write_text('{"custom_id": "r-0", "result": {"type": "succeeded"}}\n')
    before = out.read_bytes()

    class Veto:
        @hookimpl
        def before_submit(self) -> None:
            raise RuntimeError("over budget")

    with pytest.raises(RuntimeError):
        client_for(emulator, clock, plugins=[Veto()]).run([request(i) for i in range(5)],
                                                          output=str(out))
    assert out.read_bytes() == before and emulator.batches_created == 0


def test_a_resume_with_the_service_down_leaves_the_output_as_it_was(tmp_path: Path) -> None:
    from claudebatch_sqlite import SQLiteStore

    from claudebatch import APIConnectionError

    out, db = tmp_path / "o.jsonl", tmp_path / "s.db"
    rows = [request(i) for i in range(20)]
    with Emulator(rate=float("inf"), seed=3) as emu:
        with SQLiteStore(db) as store:
            BatchClient(api_key="k", base_url=emu.url, poll_interval=0.01, max_retries=0,
                        load_entry_points=False, plugins=[store]).run(rows, name="j",
                                                                      output=str(out))
        url = emu.url
    before = out.read_bytes()
    with SQLiteStore(db) as store, pytest.raises(APIConnectionError):
        BatchClient(api_key="k", base_url=url, poll_interval=0.01, max_retries=0,
                    load_entry_points=False, plugins=[store]).run(rows, name="j",
                                                                  output=str(out))
    assert out.read_bytes() == before and len(before.splitlines()) == 20
