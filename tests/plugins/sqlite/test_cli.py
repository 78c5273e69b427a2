"""``--store`` on run/demo, and ``claudebatch jobs``, ``job NAME``, ``export NAME``."""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List

import claudebatch_sqlite.plugin as sqlite_plugin
import pytest
from claudebatch_sqlite import SQLiteStore

import claudebatch.cli
import claudebatch.store._cli as store_cli
from claudebatch import BatchClient, hookimpl
from claudebatch.emulator import Emulator

from .helpers import Interrupted, StopAt, dataset, write_jsonl

DAY = 86400.0


@pytest.fixture(autouse=True)
def cli_with_store(monkeypatch: pytest.MonkeyPatch, install_cli: Callable[..., None]) -> None:
    """The CLI as it is with claudebatch-sqlite installed."""
    install_cli(sqlite_plugin)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "emulator")
    monkeypatch.delenv("CLAUDEBATCH_STORE", raising=False)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(rate=5000.0, seed=2) as emu:
        yield emu


def cli(*argv: str) -> int:
    return claudebatch.cli.main(list(argv))


def run_cli(emulator: Emulator, tmp_path: Path, *extra: str, name: str = "nightly") -> int:
    source = write_jsonl(tmp_path / "in.jsonl", dataset(12))
    return cli("run", source, "-o", str(tmp_path / "out.jsonl"), "--name", name,
               "--base-url", emulator.url, "--poll-interval", "0.005", "--quiet", *extra)


def parse(*argv: str, demo: bool = False, dry_run: bool = False) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    store_cli.add_cli_options(parser=parser)
    args = parser.parse_args(list(argv))
    args.demo, args.dry_run = demo, dry_run
    return args


def test_the_store_is_on_by_default_in_your_own_folder(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    (mine,) = store_cli.plugins_from_cli(args=parse()) or []
    assert Path(mine.path) == tmp_path / "state" / "claudebatch" / "jobs.db"
    assert (tmp_path / "state" / "claudebatch").stat().st_mode & 0o777 == 0o700
    (demo,) = store_cli.plugins_from_cli(args=parse(demo=True)) or []
    assert demo.path == mine.path
    assert store_cli.plugins_from_cli(args=parse("--no-store")) is None
    (store,) = store_cli.plugins_from_cli(args=parse("--store", "x.db", "--store-wait", "9"))
    assert (Path(store.path), store.lock_timeout) == (tmp_path / "x.db", 9.0)
    assert store_cli.plugins_from_cli(args=parse("--store", "y.db", dry_run=True)) is None
    monkeypatch.setenv("CLAUDEBATCH_STORE", str(tmp_path / "env.db"))
    (from_env,) = store_cli.plugins_from_cli(args=parse()) or []
    assert Path(from_env.path) == tmp_path / "env.db"


def test_run_then_jobs_job_and_export_without_the_service(tmp_path: Path, capsys: Any) -> None:
    db = str(tmp_path / "s.db")
    with Emulator(rate=5000.0, seed=2) as emulator:
        assert run_cli(emulator, tmp_path, "--store", db) == 0
        assert "store: job nightly recorded in" in capsys.readouterr().err
        assert run_cli(emulator, tmp_path, "--store", db) == 0  # again: resumes, sends nothing
        assert "store: resuming job nightly: 1 batch(es) already created, 1 with all results" \
            in capsys.readouterr().err
        assert emulator.batches_created == 1
    # the emulator is gone: everything below reads the store only
    assert cli("jobs", "--store", db) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["JOB", "STATE", "REQUESTS", "RESULTS", "BATCHES", "COST",
                                "UPDATED"]
    assert table[1].split()[:6] == ["nightly", "done", "12", "succeeded", "12", "1"]
    assert cli("job", "nightly", "--store", db) == 0
    shown = capsys.readouterr().out
    assert "job nightly: done" in shown and "pass 1 #0  msgbatch_" in shown
    assert "12 requests  ended  all results stored" in shown
    assert cli("export", "nightly", "-o", str(tmp_path / "again.jsonl"), "--store", db) == 0
    assert "exported 12 result(s) of job nightly" in capsys.readouterr().out
    assert sorted((tmp_path / "again.jsonl").read_bytes().splitlines()) == \
        sorted((tmp_path / "out.jsonl").read_bytes().splitlines())


def test_json_views_and_forget(emulator: Emulator, tmp_path: Path, capsys: Any) -> None:
    db = str(tmp_path / "s.db")
    run_cli(emulator, tmp_path, "--store", db)
    capsys.readouterr()
    assert cli("jobs", "--json", "--store", db) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["counts"] == {"succeeded": 12}
    assert cli("job", "nightly", "--json", "--store", db) == 0
    job = json.loads(capsys.readouterr().out)
    assert job["batches"][0]["results_done"] is True
    assert cli("job", "nightly", "--forget", "--store", db) == 0
    capsys.readouterr()
    assert cli("job", "nightly", "--store", db) == 1
    assert "no job 'nightly' in the store" in capsys.readouterr().err


def test_the_store_comes_from_the_environment(emulator: Emulator, tmp_path: Path, capsys: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDEBATCH_STORE", str(tmp_path / "env.db"))
    assert run_cli(emulator, tmp_path) == 0
    capsys.readouterr()
    assert cli("jobs") == 0
    assert "nightly" in capsys.readouterr().out


def test_reading_commands_never_create_a_store(tmp_path: Path, capsys: Any) -> None:
    assert cli("jobs", "--store", str(tmp_path / "none.db")) == 1
    assert "no store at" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def interrupted_job(emulator: Emulator, tmp_path: Path) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "s.db")
    client = BatchClient(api_key="emulator", base_url=emulator.url, load_entry_points=False,
                         plugins=[store, StopAt("on_result", 1)])
    with pytest.raises(Interrupted):
        client.run(dataset(12), name="late", output=str(tmp_path / "late.jsonl"),
                   poll_interval=0.005, max_batch_requests=8)
    store.close()
    return store


def test_export_of_an_unfinished_job_says_what_is_missing(emulator: Emulator, tmp_path: Path,
                                                         capsys: Any) -> None:
    interrupted_job(emulator, tmp_path)
    code = cli("export", "late", "-o", str(tmp_path / "part.jsonl"), "--store",
               str(tmp_path / "s.db"))
    assert code == 7
    assert "have no stored result (resume the job" in capsys.readouterr().err


def age_batches(path: Path, days: float) -> None:
    store = SQLiteStore(path, warn=False)
    store.conn.execute("UPDATE batches SET created_at = created_at - ?", (days * DAY,))
    store.close()


def test_results_never_downloaded_warn_near_the_29_day_limit(
        emulator: Emulator, tmp_path: Path, capsys: Any, caplog: Any) -> None:
    interrupted_job(emulator, tmp_path)
    db = tmp_path / "s.db"
    store = SQLiteStore(db, warn=False)
    assert store.warnings() == []  # fresh: nothing to say
    assert store.warnings(now=time.time() + 26.5 * DAY)  # within 3 days of day 29
    store.close()
    age_batches(db, 27)
    assert cli("jobs", "--store", str(db)) == 0
    err = capsys.readouterr().err
    assert "WARNING: job late: the results of batch msgbatch_" in err
    assert "were never downloaded; the service deletes them at" in err
    assert re.search(r"\(in 4[78] h \d+ min\)", err)
    assert cli("job", "late", "--store", str(db)) == 0
    assert "Resume the job now" in capsys.readouterr().err
    with caplog.at_level(logging.WARNING, logger="claudebatch.sqlite"):
        SQLiteStore(db).close()  # opening it in Python warns too
    assert "never downloaded" in caplog.text
    age_batches(db, 3)
    warnings: List[Any] = SQLiteStore(db, warn=False).warnings()
    assert "the service deleted them" in str(warnings[0])


def test_demo_uses_the_store(tmp_path: Path, capsys: Any,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = cli("demo", "--requests", "20", "--name", "demo-1", "--poll-interval", "0.01",
               "--quiet", "-o", str(tmp_path / "demo.jsonl"))
    assert code == 0
    assert "store: " in capsys.readouterr().out
    assert not (tmp_path / "claudebatch.db").exists()  # your own store, not the folder's
    assert cli("jobs") == 0  # and the commands read it with no --store
    assert "demo-1" in capsys.readouterr().out


def test_the_same_command_again_continues_an_unfinished_job_without_its_name(
        emulator: Emulator, tmp_path: Path, capsys: Any) -> None:
    """No --name, no --store: the first run dies mid-way; the same command again finds its
    job in your own store by its output, and pays for nothing twice. Once done, the same
    command is a new job (its answers reused from the first)."""
    source = write_jsonl(tmp_path / "in.jsonl", dataset(12))
    argv = ["run", source, "-o", str(tmp_path / "out.jsonl"), "--base-url", emulator.url,
            "--poll-interval", "0.005", "--quiet"]
    with pytest.raises(Interrupted):
        client = BatchClient(api_key="emulator", base_url=emulator.url,
                             load_entry_points=False,
                             plugins=[SQLiteStore(store_cli.default_location()),
                                      StopAt("on_result", 5)])
        client.run(source, output=str(tmp_path / "out.jsonl"), poll_interval=0.005)
    capsys.readouterr()
    assert cli(*argv) == 0
    err = capsys.readouterr().err
    assert f"store: {tmp_path / 'out.jsonl'} is the output of job job-" in err
    assert "did not finish: this run continues it" in err
    assert emulator.batches_created == 1
    assert len((tmp_path / "out.jsonl").read_bytes().splitlines()) == 12
    assert cli(*argv) == 0  # done: a new job, answered from what the first bought
    assert "continues it" not in capsys.readouterr().err
    assert emulator.batches_created == 1


def test_status_takes_a_job_name_as_well_as_a_batch_id(emulator: Emulator, tmp_path: Path,
                                                       capsys: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDEBATCH_STORE", str(tmp_path / "s.db"))
    assert run_cli(emulator, tmp_path) == 0
    capsys.readouterr()
    assert cli("status", "nightly") == 0
    assert "job nightly: done" in capsys.readouterr().out
    batch_id = emulator.batch_ids[0]
    assert cli("status", batch_id, "--base-url", emulator.url) == 0
    assert json.loads(capsys.readouterr().out)["id"] == batch_id
    # not a job of the store, not a batch id: the service says so
    assert cli("status", "no-such-job", "--base-url", emulator.url) == 1
    assert "not_found_error" in capsys.readouterr().err


def test_the_same_output_is_continued_only_through_the_same_server(
        tmp_path: Path, capsys: Any) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", dataset(6))
    out = str(tmp_path / "out.jsonl")
    with Emulator(rate=5000.0, seed=2) as first:
        with pytest.raises(Interrupted):
            BatchClient(api_key="emulator", base_url=first.url, load_entry_points=False,
                        plugins=[SQLiteStore(store_cli.default_location()),
                                 StopAt("on_result", 2)]).run(source, output=out,
                                                              poll_interval=0.005)
        name = SQLiteStore(store_cli.default_location()).jobs()[-1].name
        first_url = first.url
    capsys.readouterr()
    with Emulator(rate=5000.0, seed=3) as other:  # another server: its batches are not there
        assert cli("run", source, "-o", out, "--base-url", other.url, "--poll-interval",
                   "0.005", "--quiet") == 0
        assert "continues it" not in capsys.readouterr().err
        assert other.batches_created == 1
        # named, the old job is refused with the reason, not a 404
        assert cli("run", source, "-o", out, "--name", name, "--base-url", other.url,
                   "--quiet") == 1
        assert f"server was '{first_url}'" in capsys.readouterr().err


def test_a_demo_never_continues_an_earlier_one(tmp_path: Path, capsys: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = SQLiteStore(store_cli.default_location())
    with Emulator(rate=5000.0, seed=2) as emu:  # an unfinished job writing demo.jsonl
        with pytest.raises(Interrupted):
            BatchClient(api_key="emulator", base_url=emu.url, load_entry_points=False,
                        plugins=[store, StopAt("on_result", 1)]).run(
                write_jsonl(tmp_path / "in.jsonl", dataset(4)),
                output=str(tmp_path / "demo.jsonl"), poll_interval=0.005)
    capsys.readouterr()
    assert cli("demo", "--requests", "10", "-o", "demo.jsonl", "--poll-interval", "0.01",
               "--quiet") == 0
    assert "continues it" not in capsys.readouterr().err


def test_a_job_that_sent_nothing_starts_again_with_new_input(emulator: Emulator,
                                                            tmp_path: Path) -> None:
    class Veto:
        @hookimpl
        def before_submit(self) -> None:
            raise RuntimeError("vetoed")

    store_path = tmp_path / "s.db"
    with pytest.raises(RuntimeError):
        BatchClient(api_key="emulator", base_url=emulator.url, load_entry_points=False,
                    plugins=[SQLiteStore(store_path), Veto()]).run(
            dataset(4), name="vetoed", output=str(tmp_path / "o.jsonl"))
    report = BatchClient(api_key="emulator", base_url=emulator.url, load_entry_points=False,
                         plugins=[SQLiteStore(store_path)]).run(
        dataset(3), name="vetoed", output=str(tmp_path / "o.jsonl"), poll_interval=0.005)
    assert report.all_succeeded and report.total_requests == 3


def test_verbose_twice_in_one_process_logs_each_record_once(
        emulator: Emulator, tmp_path: Path, capsys: Any) -> None:
    import logging

    root = logging.getLogger("claudebatch")
    before, level = list(root.handlers), root.level
    try:
        for name in ("v1", "v2"):
            assert run_cli(emulator, tmp_path, "-v", "--no-store", name=name) == 0
        err = capsys.readouterr().err
        assert err.count("job v2: submitted batch") == 1
    finally:
        for handler in root.handlers[len(before):]:
            root.removeHandler(handler)
        root.setLevel(level)


def test_a_second_process_starting_the_same_command_is_refused_until_the_first_holds_its_job(
        emulator: Emulator, tmp_path: Path, capsys: Any) -> None:
    """Between finding no job for an output and locking its own, a run claims the output:
    the same command started at the same moment elsewhere is refused, not run twice."""
    import subprocess
    import sys

    source = write_jsonl(tmp_path / "in.jsonl", dataset(4))
    out = str(tmp_path / "out.jsonl")
    holder = subprocess.Popen(  # another process, mid-way between find_job and its lock
        [sys.executable, "-c",
         "import sys; from claudebatch_sqlite import SQLiteStore;"
         "s = SQLiteStore(sys.argv[1], warn=False);"
         "s.find_job(output=sys.argv[2], server=sys.argv[3]);"
         "print('claimed', flush=True); sys.stdin.read()",
         store_cli.default_location(), out, emulator.url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "claimed"
        argv = ["run", source, "-o", out, "--base-url", emulator.url, "--poll-interval",
                "0.005", "--quiet"]
        assert cli(*argv) == 1
        assert f"another process is starting a job that writes {out}" in \
            capsys.readouterr().err
        assert emulator.batches_created == 0
    finally:
        holder.communicate("")  # it ends: its claim lapses with it
    assert cli(*argv) == 0 and emulator.batches_created == 1
