"""A job over rows with a table output, under the store: resumed, refused, killed.

The same job as the crash tests (24 requests in batches of 8, a second pass
resending the even ones), made from a CSV of rows and a template, writing a
Parquet table. Whatever point the first run is killed at (SIGKILL, in a forked
child), the rerun pays for no batch twice, and the table holds every row once,
in the CSV's order, each with its latest answer.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import pytest
from claudebatch_sqlite import SQLiteStore

from claudebatch import BatchClient, Rows
from claudebatch.emulator import Emulator
from claudebatch.store import InputChangedError

from .crash_child import run_child
from .helpers import fork_context

pq = pytest.importorskip("pyarrow.parquet")

REQUESTS = 24


def write_rows(path: Path) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "question"])
        writer.writerows([f"q-{i:03d}", f"question number {i}"] for i in range(REQUESTS))
    return path


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(rate=300.0, seed=4, answer_tokens=(20, 60)) as emu:
        yield emu


def run_child_job(emulator: Emulator, tmp_path: Path, kill: Optional[Dict[str, Any]],
                  tag: str) -> int:
    config = {"url": emulator.url, "store": str(tmp_path / "store.db"),
              "output": str(tmp_path / "table.parquet"), "name": "rowsy",
              "requests": REQUESTS, "max_batch": 8, "kill": kill,
              "rows": str(write_rows(tmp_path / "rows.csv")),
              "report": str(tmp_path / f"{tag}-report.json"), "commit_every": 3}
    process = fork_context().Process(target=run_child, args=(config,))
    process.start()
    process.join(60)
    assert process.exitcode is not None, "the child hung"
    return int(process.exitcode)


KILLS = {
    "after-intent-batch-1": {"where": "after", "hook": "before_submit", "n": 2},
    "mid-first-batch": {"where": "before", "hook": "on_result", "n": 5},
    "between-passes": {"where": "before", "hook": "resubmit_requests", "n": 1},
    "pass-2-mid-results": {"where": "before", "hook": "on_result", "n": 4, "pass": 2},
    "writing-the-table": {"where": "before", "hook": "table_values", "n": 10},
    "job-end-after-the-table": {"where": "before", "hook": "on_job_end", "n": 1},
}


@pytest.mark.parametrize("name", list(KILLS))
def test_a_killed_rows_job_resumes_to_the_whole_table_paying_nothing_twice(
        emulator: Emulator, tmp_path: Path, name: str) -> None:
    assert run_child_job(emulator, tmp_path, KILLS[name], "first") == -9
    assert run_child_job(emulator, tmp_path, None, "resume") == 0
    report = json.loads((tmp_path / "resume-report.json").read_text())
    assert report["complete"] and report["counts"] == {"succeeded": REQUESTS}
    assert emulator.batches_created == 3 + 2, emulator.batch_ids  # none paid twice
    lines = {v["custom_id"]: v for v in map(
        json.loads, (tmp_path / "table.parquet.results.jsonl").read_bytes().splitlines())}
    table = pq.read_table(tmp_path / "table.parquet").to_pylist()
    assert [r["id"] for r in table] == [f"q-{i:03d}" for i in range(REQUESTS)]
    for row in table:  # each row's answer is its latest result line's
        message = lines[row["id"]]["result"]["message"]
        assert row["answer"] == message["content"][0]["text"]
        assert row["output_tokens"] == message["usage"]["output_tokens"]
    assert not list(tmp_path.glob(".table.parquet.*"))  # a half-written table: swept away


def test_a_rerun_resumes_and_a_changed_template_is_refused(emulator: Emulator,
                                                           tmp_path: Path) -> None:
    source = write_rows(tmp_path / "rows.csv")

    def run(template: str) -> Any:
        client = BatchClient(api_key="emulator", base_url=emulator.url, load_entry_points=False,
                             plugins=[SQLiteStore(tmp_path / "s.db")])
        rows = Rows(source, template=template, model="claude-haiku-4-5", id_column="id")
        return client.run(rows, name="rows", output=str(tmp_path / "t.csv"),
                          poll_interval=0.005)

    first = run("{{ question }}")
    (tmp_path / "t.csv").unlink()
    again = run("{{ question }}")  # resumes: nothing sent, the table written again
    assert first.batch_ids == again.batch_ids and emulator.batches_created == 1
    with open(tmp_path / "t.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == REQUESTS
    with pytest.raises(InputChangedError, match="rows"):
        run("Answer: {{ question }}")
    assert emulator.batches_created == 1


def test_export_writes_tables_and_object_store_urls(emulator: Emulator, tmp_path: Path,
                                                    s3: Any, install_cli: Any,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import claudebatch_sqlite.plugin as sqlite_plugin

    from claudebatch.cli import main

    install_cli(sqlite_plugin)
    db = str(tmp_path / "s.db")
    client = BatchClient(api_key="emulator", base_url=emulator.url, load_entry_points=False,
                         plugins=[SQLiteStore(db)])
    rows = Rows(write_rows(tmp_path / "rows.csv"), template="{{ question }}",
                model="claude-haiku-4-5", id_column="id")
    client.run(rows, name="rows", output=str(tmp_path / "t.csv"), poll_interval=0.005)
    for target in (str(tmp_path / "e.parquet"), "s3://bucket/e.csv", "s3://bucket/e.jsonl"):
        assert main(["export", "rows", "-o", target, "--store", db]) == 0
        assert f"exported {REQUESTS} result(s) of job rows to {target}" in \
            capsys.readouterr().out
    exported = pq.read_table(tmp_path / "e.parquet").to_pylist()
    assert sorted(r["custom_id"] for r in exported) == [f"q-{i:03d}" for i in range(REQUESTS)]
    assert all(r["result_type"] == "succeeded" and r["answer"] for r in exported)
    assert len(s3.cat("bucket/e.csv").decode().splitlines()) == REQUESTS + 1
    assert sorted(s3.cat("bucket/e.jsonl").splitlines()) == \
        sorted((tmp_path / "t.csv.results.jsonl").read_bytes().splitlines())
    assert main(["export", "rows", "-o", "s3://missing-bucket/e.csv", "--store", db]) == 1
    assert "missing-bucket" in capsys.readouterr().err


def test_rows_in_memory_that_changed_are_refused_on_resume(emulator: Emulator,
                                                           tmp_path: Path) -> None:
    def run(data: Any) -> Any:
        client = BatchClient(api_key="emulator", base_url=emulator.url, load_entry_points=False,
                             plugins=[SQLiteStore(tmp_path / "s.db")])
        return client.run(Rows(data, template="Say {{ t }}", model="claude-haiku-4-5",
                               id_column="id"), name="mem", output=str(tmp_path / "t.csv"),
                          poll_interval=0.005)

    run([{"id": 1, "t": "apple"}, {"id": 2, "t": "banana"}])
    again = run([{"id": 1, "t": "apple"}, {"id": 2, "t": "banana"}])  # the same: resumes
    assert again.all_succeeded and emulator.batches_created == 1
    with pytest.raises(InputChangedError, match="requests changed"):
        run([{"id": 1, "t": "cherry"}, {"id": 2, "t": "banana"}])  # same ids, other rows
    assert emulator.batches_created == 1


def test_export_refuses_to_destroy_the_store_an_input_or_to_guess_a_format(
        emulator: Emulator, tmp_path: Path, install_cli: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    import claudebatch_sqlite.plugin as sqlite_plugin

    from claudebatch.cli import main

    install_cli(sqlite_plugin)
    db = tmp_path / "s.db"
    source = write_rows(tmp_path / "rows.csv")
    with SQLiteStore(db) as store:  # closed: its log copied into the file, which then rests
        client = BatchClient(api_key="emulator", base_url=emulator.url,
                             load_entry_points=False, plugins=[store])
        client.run(Rows(source, template="{{ question }}", model="claude-haiku-4-5",
                        id_column="id"), name="rows", output=str(tmp_path / "t.csv"),
                   poll_interval=0.005)
    kept = {p: p.read_bytes() for p in (db, source)}
    for target, words in ((db, "is the job store"), (source, "does not hold results"),
                          (tmp_path / "e.xlsx", "cannot tell what to write")):
        assert main(["export", "rows", "-o", str(target), "--store", str(db)]) != 0
        assert words in capsys.readouterr().err
    assert all(p.read_bytes() == data for p, data in kept.items())
    assert main(["export", "rows", "-o", str(tmp_path / "t.csv"), "--store", str(db)]) == 0


def test_running_a_finished_job_again_keeps_every_later_answer(tmp_path: Path) -> None:
    """Duplicates answered while pass 1 is replayed are stored as pass 1's, not as the pass
    under way when the store commits: a rerun never swaps a paid answer for a stale one."""
    from claudebatch_retry import RetryPolicy

    from claudebatch.emulator import Faults

    rows = [{"id": f"r{i}", "text": f"text {i % 20}"} for i in range(60)]  # 3 of each
    outcomes = []
    with Emulator(rate=5000.0, seed=7, answer_tokens=(5, 10),
                  faults=Faults(errored=0.5)) as emu:
        for _ in range(3):
            client = BatchClient(api_key="emulator", base_url=emu.url, load_entry_points=False,
                                 plugins=[SQLiteStore(tmp_path / "s.db"),
                                          RetryPolicy(passes=2, pause=0)])
            report = client.run(Rows(rows, template="Say {{ text }}", model="claude-haiku-4-5",
                                     max_tokens=16, id_column="id"),
                                name="j", output=str(tmp_path / "t.csv"), poll_interval=0.005)
            with open(tmp_path / "t.csv", newline="") as handle:
                table = {r["id"]: (r["result_type"], r["answer"])
                         for r in csv.DictReader(handle)}
            outcomes.append((report.counts, table))
        assert emu.batches_created == 3  # the reruns sent nothing
    assert outcomes[0][0]["errored"] < 12  # the retries did win some back
    assert outcomes[1] == outcomes[0] and outcomes[2] == outcomes[0]
