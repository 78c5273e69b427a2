"""Never pay twice, with the store: answers kept by one job answer the next one's requests.

Jobs run over real HTTP against the emulator; what was sent is read from the
emulator (the batches it made and their requests), what was written from the output.
"""

from __future__ import annotations

import gzip
import json
import signal
import sqlite3
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import claudebatch_sqlite.plugin as sqlite_plugin
import pytest
from claudebatch_sqlite import InputChangedError, SQLiteStore
from claudebatch_sqlite.database import SCHEMA_VERSION

from claudebatch import Annotation, BatchClient, BatchResult, hookimpl
from claudebatch.emulator import Emulator, Faults
from claudebatch.store._cli import cmd_reuse_prune, cmd_reuse_stats

from .crash_child import run_child
from .helpers import dataset, fork_context, output_lines

pytestmark = pytest.mark.usefixtures("store_backend")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(rate=5000.0, seed=7) as emu:
        yield emu


def client_for(emulator: Emulator, *plugins: Any, **options: Any) -> BatchClient:
    return BatchClient(api_key="emulator", base_url=emulator.url, plugins=list(plugins),
                       load_entry_points=False, **options)


def run(emulator: Emulator, store: Optional[SQLiteStore], tmp_path: Path, source: Any,
        name: str, *plugins: Any, client_options: Optional[Dict[str, Any]] = None,
        **options: Any) -> Any:
    found = [store] if store is not None else []
    client = client_for(emulator, *found, *plugins, **(client_options or {}))
    return client.run(source, name=name, output=str(tmp_path / f"{name}.jsonl"),
                      poll_interval=0.005, max_batch_requests=10, **options)


def sent_since(emulator: Emulator, before: int) -> List[str]:
    """custom_ids of every request in the batches made since the first ``before``."""
    client = client_for(emulator)
    ids: List[str] = []
    for batch_id in emulator.batch_ids[before:]:
        ids.extend(v["custom_id"] for v in client.results(batch_id, raw=True))
    return ids


def changed(rows: List[Dict[str, Any]], indexes: List[int]) -> List[Dict[str, Any]]:
    out = json.loads(json.dumps(rows))
    for i in indexes:
        out[i]["params"]["messages"][0]["content"] += " (fixed)"
    return out


def by_id(path: Path) -> Dict[str, Dict[str, Any]]:
    return {line["custom_id"]: line for line in output_lines(path)}


def test_a_rerun_sends_only_the_changed_and_new_rows(emulator: Emulator,
                                                     tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    rows = dataset(50)
    first = run(emulator, store, tmp_path, rows, "first")
    assert first.all_succeeded and first.reused == 0
    made = len(emulator.batch_ids)

    new = dataset(4, prefix="new")
    for row in new:
        row["params"]["messages"][0]["content"] = "new " + row["custom_id"]
    again = changed(rows, [3, 17, 40]) + new
    second = run(emulator, store, tmp_path, again, "second")
    assert sorted(sent_since(emulator, made)) == sorted(
        ["r-003", "r-017", "r-040", "new-000", "new-001", "new-002", "new-003"])
    assert (second.reused, second.duplicates, second.total_requests) == (47, 0, 54)
    assert second.all_succeeded and second.counts == {"succeeded": 54}
    assert "47 answered by answers kept from earlier jobs" in second.summary()

    old, new = by_id(tmp_path / "first.jsonl"), by_id(tmp_path / "second.jsonl")
    assert len(new) == 54
    for custom_id, line in new.items():
        if custom_id in ("r-003", "r-017", "r-040") or custom_id.startswith("new"):
            assert "reused_from" not in line
        else:  # the answer bought by the first job, word for word, marked
            assert line["reused_from"] == f"first/{custom_id}"
            assert line["result"] == old[custom_id]["result"]
    # the store holds the second job whole, reused answers included
    job = store.job("second")
    assert (job.state, job.counts, job.missing) == ("done", {"succeeded": 54}, 0)
    exported = tmp_path / "export.jsonl"
    assert store.export("second", str(exported)) == (54, 0)
    assert by_id(exported) == new


def test_identical_requests_in_one_job_are_sent_once(emulator: Emulator,
                                                     tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    rows = dataset(12)
    for i in (5, 9, 11):  # the same request as row 2, under other custom_ids
        rows[i]["params"] = json.loads(json.dumps(rows[2]["params"]))
    rows[9]["params"] = {k: rows[9]["params"][k] for k in reversed(rows[9]["params"])}
    seen = Seen()
    report = run(emulator, store, tmp_path, rows, "dups", seen)
    sent = sent_since(emulator, 0)
    assert sorted(sent) == sorted(r["custom_id"] for i, r in enumerate(rows)
                                  if i not in (5, 9, 11))
    assert (report.duplicates, report.reused, report.counts) == (3, 0, {"succeeded": 12})
    lines = by_id(tmp_path / "dups.jsonl")
    for follower in ("r-005", "r-009", "r-011"):
        assert lines[follower]["reused_from"] == "dups/r-002"
        assert lines[follower]["result"] == lines["r-002"]["result"]
    # every custom_id is shown to the plugins, the duplicates as reused
    assert sorted(seen.ids) == sorted(r["custom_id"] for r in rows)
    assert sorted(seen.reusing) == ["r-005", "r-009", "r-011"]
    assert store.job("dups").counts == {"succeeded": 12}


def test_errored_answers_are_never_reused(emulator: Emulator, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    rows = dataset(40)
    emulator.faults = Faults(errored=0.3)
    first = run(emulator, store, tmp_path, rows, "first")
    errored = sorted(cid for cid, line in by_id(tmp_path / "first.jsonl").items()
                     if line["result"]["type"] == "errored")
    assert errored and first.counts["errored"] == len(errored)
    emulator.faults = Faults()
    made = len(emulator.batch_ids)
    second = run(emulator, store, tmp_path, rows, "second")
    assert sorted(sent_since(emulator, made)) == errored
    assert second.reused == 40 - len(errored) and second.all_succeeded


def test_answers_a_plugin_finds_unusable_are_never_reused(emulator: Emulator,
                                                          tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    rows = dataset(10)
    run(emulator, store, tmp_path, rows, "first", Unusable({"r-001", "r-004"}))
    made = len(emulator.batch_ids)
    second = run(emulator, store, tmp_path, rows, "second")
    assert sorted(sent_since(emulator, made)) == ["r-001", "r-004"]
    assert second.reused == 8


def test_no_reuse_sends_everything_and_still_keeps_answers(emulator: Emulator,
                                                          tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    rows = dataset(10)
    rows[7]["params"] = rows[1]["params"]
    run(emulator, store, tmp_path, rows, "first", client_options={"reuse": False})
    assert len(sent_since(emulator, 0)) == 10  # duplicates too
    made = len(emulator.batch_ids)
    fresh = run(emulator, store, tmp_path, rows, "fresh", reuse=False)
    assert len(sent_since(emulator, made)) == 10 and fresh.reused == 0
    made = len(emulator.batch_ids)
    reused = run(emulator, store, tmp_path, rows, "reused")
    assert sent_since(emulator, made) == [] and reused.reused == 10
    assert reused.batches == []


def test_max_age_bounds_how_old_a_reused_answer_may_be(emulator: Emulator,
                                                       tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    rows = dataset(6)
    run(emulator, store, tmp_path, rows[:3], "old")
    store.conn.execute("UPDATE answers SET stored_at = stored_at - 7200")
    run(emulator, store, tmp_path, rows[3:], "recent")
    made = len(emulator.batch_ids)
    report = run(emulator, store, tmp_path, rows, "bounded", reuse_max_age=3600.0)
    assert sorted(sent_since(emulator, made)) == ["r-000", "r-001", "r-002"]
    assert report.reused == 3


def test_a_resumed_job_decides_as_its_first_run(emulator: Emulator, tmp_path: Path) -> None:
    """Answers kept after a job started are not offered to it when it resumes (its
    batches would be cut differently), and a resume with reuse settings that would
    decide otherwise is refused with the way out."""
    store = SQLiteStore(tmp_path / "s.db")
    rows = dataset(20)
    run(emulator, store, tmp_path, rows[:10], "seed")
    with pytest.raises(Stop):
        run(emulator, store, tmp_path, rows, "job", StopAfterSubmit())
    # meanwhile another job buys the other ten
    run(emulator, store, tmp_path, rows[10:], "other")
    made = len(emulator.batch_ids)
    resumed = run(emulator, store, tmp_path, rows, "job")
    assert sent_since(emulator, made) == []  # its batch was made before the stop
    assert (resumed.reused, resumed.counts) == (10, {"succeeded": 20})
    lines = by_id(tmp_path / "job.jsonl")
    assert {line.get("reused_from", "").split("/")[0] for line in lines.values()} == {
        "seed", ""}
    with pytest.raises(InputChangedError, match="reuse settings it started with"):
        run(emulator, store, tmp_path, rows, "job", reuse=False)


@pytest.mark.sqlite_only
def test_killed_while_reusing_resumes_with_nothing_paid_twice(emulator: Emulator,
                                                              tmp_path: Path) -> None:
    base = {"url": emulator.url, "store": str(tmp_path / "store.db"), "requests": 24,
            "max_batch": 8, "resubmit": False, "commit_every": 3}
    assert child(base, tmp_path, "seed") == 0
    seeded = len(emulator.batch_ids)
    kills = [{"where": "before", "hook": "resume_state", "n": 1},
             {"where": "after", "hook": "on_result", "n": 5},   # among the reused answers
             {"where": "before", "hook": "after_submit", "n": 1},
             {"where": "before", "hook": "on_result", "n": 19},  # the batch's results
             {"where": "after", "hook": "on_batch_end", "n": 1}]
    for number, kill in enumerate(kills):
        name = f"crashy{number}"
        contents = {i: f"a new question {i} for {name}" for i in range(6)}
        contents.update({22: contents[0], 23: contents[0]})  # duplicates of row 0
        job = {**base, "contents": contents}
        before = len(emulator.batch_ids)
        assert child({**job, "kill": kill}, tmp_path, name) == -signal.SIGKILL, kill
        assert child(job, tmp_path, name) == 0
        assert len(emulator.batch_ids) - before == 1, kill  # the six new questions, once
        report = json.loads((tmp_path / f"{name}-report.json").read_text())
        assert (report["complete"], report["counts"]) == (True, {"succeeded": 24})
        assert (report["reused"], report["duplicates"]) == (16, 2)
        lines = by_id(tmp_path / f"{name}.jsonl")
        assert len(lines) == 24
        seed = by_id(tmp_path / "seed.jsonl")
        for i in range(6, 22):
            line = lines[f"q-{i:03d}"]
            assert line["reused_from"] == f"seed/q-{i:03d}"
            assert line["result"] == seed[f"q-{i:03d}"]["result"]
        for i in (22, 23):
            assert lines[f"q-{i:03d}"]["reused_from"] == f"{name}/q-000"
            assert lines[f"q-{i:03d}"]["result"] == lines["q-000"]["result"]
        with SQLiteStore(tmp_path / "store.db", warn=False) as store:
            info = store.job(name)
            assert (info.state, info.missing, info.counts) == ("done", 0, {"succeeded": 24})
    assert len(emulator.batch_ids) == seeded + len(kills)


@pytest.mark.sqlite_only
def test_reuse_stats_and_prune(emulator: Emulator, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str],
                               install_cli: Callable[..., None]) -> None:
    install_cli(sqlite_plugin)
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    rows = dataset(8)
    run(emulator, store, tmp_path, rows, "first")
    run(emulator, store, tmp_path, rows, "second")
    store.conn.execute("UPDATE answers SET stored_at = stored_at - 3 * 86400 "
                       "WHERE custom_id IN ('r-000', 'r-001')")
    store.close()
    args = type("Args", (), {"store": str(path), "json": True})()
    assert cmd_reuse_stats(args) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["answers"], stats["hits"], stats["answers_hit"], stats["jobs"]) == (
        8, 8, 8, 1)
    prune = type("Args", (), {"store": str(path), "older_than": 2 * 86400.0})()
    assert cmd_reuse_prune(prune) == 0
    assert "pruned 2 answer(s) kept more than 2d ago; 6 left" in capsys.readouterr().out
    with SQLiteStore(path) as again:
        made = len(emulator.batch_ids)
        third = run(emulator, again, tmp_path, rows, "third")
        assert sorted(sent_since(emulator, made)) == ["r-000", "r-001"]
        assert third.reused == 6


@pytest.mark.sqlite_only
def test_a_version_1_store_is_upgraded_in_place_to_the_latest(emulator: Emulator,
                                                               tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SQLiteStore(path)
    run(emulator, store, tmp_path, dataset(4), "before")
    store.close()
    conn = sqlite3.connect(path)  # as version 1 made it
    conn.executescript("DROP TABLE answers; DROP TABLE answer_hits; DROP TABLE workers; "
                       "DROP TABLE foreign_batches; DROP INDEX results_by_pass; "
                       "ALTER TABLE jobs DROP COLUMN reuse_horizon; "
                       "ALTER TABLE jobs DROP COLUMN mode; "
                       "ALTER TABLE batches DROP COLUMN lease_owner; "
                       "ALTER TABLE batches DROP COLUMN lease_until; "
                       "ALTER TABLE batches DROP COLUMN next_check_at; "
                       "PRAGMA user_version = 1;")
    conn.close()
    with SQLiteStore(path) as upgraded:
        assert upgraded.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert upgraded.job("before").counts == {"succeeded": 4}
        made = len(emulator.batch_ids)
        run(emulator, upgraded, tmp_path, dataset(4), "after")  # nothing kept yet: sent
        assert len(sent_since(emulator, made)) == 4
        assert upgraded.reuse_stats()["answers"] == 4


class Noted:
    """Adds a field to every output line (as the structured-output plugin does)."""

    @hookimpl
    def annotate_result(self, result: BatchResult) -> Optional[Annotation]:
        return Annotation({"noted": True})


def answer_lines(store: Any) -> Dict[str, Optional[bytes]]:
    """custom_id -> the line an answer holds itself (None: it reads its result's)."""
    return {custom_id: None if line is None else bytes(line) for custom_id, line in
            store.conn.execute("SELECT custom_id, line FROM answers").fetchall()}


def test_answers_are_looked_up_by_an_integer_id_and_found_by_their_whole_key(
        emulator: Emulator, tmp_path: Path) -> None:
    """Answers are indexed by ``answer_key_id`` (8 bytes of the key): a key sharing an
    answer's id but not its key finds nothing, and never the other's answer."""
    from claudebatch.store import answer_key_id

    assert answer_key_id("00000000000000ff" + "0" * 48) == 255
    assert answer_key_id("ffffffffffffffff" + "0" * 48) == -1  # two's complement
    assert answer_key_id("8000000000000000" + "0" * 48) == -(1 << 63)
    assert -(1 << 63) <= answer_key_id("not a hex key") < (1 << 63)  # PostgreSQL's md5
    assert answer_key_id("not a hex key") == answer_key_id("not a hex key")
    store = SQLiteStore(tmp_path / "s.db")
    run(emulator, store, tmp_path, dataset(3), "first")
    keys = [key for (key,) in store.conn.execute("SELECT key FROM answers")]
    twin = keys[0][:16] + ("0" if keys[0][16] != "0" else "1") + keys[0][17:]
    assert answer_key_id(twin) == answer_key_id(keys[0]) and twin != keys[0]
    found = store.records.find_answers([twin, keys[1]], float("inf"), None, count_hits=False)
    assert [row[0] for row in found] == [keys[1]]
    store.close()


#: How the code before key_id (SQLite schema 5, PostgreSQL schema 2) kept an answer.
EARLIER_INSERT = (
    "INSERT INTO answers (key, line, job, custom_id, batch_id, batch_created_at, stored_at, "
    "job_id, pass) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")


def test_a_job_of_the_earlier_code_still_running_keeps_its_answers_after_the_upgrade(
        emulator: Emulator, tmp_path: Path) -> None:
    """A job of the code before key_id (a worker not upgraded yet) goes on running when a
    newer process upgrades its store: its answers, written without a key_id, get the one
    ``answer_key_id`` gives (the first kept of a key stays; SQLite: when the store is next
    opened) and are found by the new code, where the NOT NULL key_id failed that job
    ("the store is damaged")."""
    from claudebatch.store import answer_key_id

    store = SQLiteStore(tmp_path / "s.db")
    run(emulator, store, tmp_path, dataset(3), "first")
    kept = [key for (key,) in store.conn.execute("SELECT key FROM answers")]
    line = b'{"custom_id":"x","result":{"type":"succeeded"}}'
    low, high = "0123456789abcdef" + "1" * 48, "fedcba9876543210" + "2" * 48
    with store.records.transaction() as conn:
        conn.executemany(EARLIER_INSERT, [
            (kept[0], line, "earlier", "a", "b", None, 1.0, None, None),  # kept: stays
            (low, line, "earlier", "l", "b", None, 1.0, None, None),
            (high, line, "earlier", "h", "b", 2.0, 1.0, None, None),
            (high, line, "later", "h2", "b", None, 1.0, None, None)])  # the first stays
    store.close()
    store = SQLiteStore(tmp_path / "s.db")  # a newer process opens it (SQLite: ids given)
    rows = {key: (job, custom_id, key_id) for key, job, custom_id, key_id in
            store.conn.execute("SELECT key, job, custom_id, key_id FROM answers").fetchall()}
    assert len(rows) == len(kept) + 2 and rows[kept[0]][0] == "first"
    assert rows[low] == ("earlier", "l", answer_key_id(low)) and answer_key_id(low) > 0
    assert rows[high] == ("earlier", "h", answer_key_id(high)) and answer_key_id(high) < 0
    found = store.records.find_answers([kept[0], low, high], float("inf"), None,
                                       count_hits=False)
    assert {row[0]: (row[2], row[3]) for row in found} == {
        key: rows[key][:2] for key in (kept[0], low, high)}
    store.close()


def test_each_answer_line_is_stored_once(emulator: Emulator, tmp_path: Path) -> None:
    """An answer kept with its result reads the line from it; one whose output line a
    plugin changed keeps the line as served; both answer a later job word for word."""
    store = SQLiteStore(tmp_path / "s.db")
    rows = dataset(12)
    run(emulator, store, tmp_path, rows[:6], "plain")
    run(emulator, store, tmp_path, rows[6:], "noted", Noted())
    held = answer_lines(store)
    assert sorted(held) == [row["custom_id"] for row in rows]
    assert all(held[f"r-{i:03d}"] is None for i in range(6))  # the result holds it
    noted = by_id(tmp_path / "noted.jsonl")
    for i in range(6, 12):  # as served: without the plugin's field
        line = held[f"r-{i:03d}"]
        assert line is not None and b"noted" not in line
        assert json.loads(line)["result"] == noted[f"r-{i:03d}"]["result"]
    assert store.reuse_stats()["bytes"] == sum(
        len(line) for _, _, line in [*store.results("plain")]) + sum(
        len(line) for line in held.values() if line is not None)

    made = len(emulator.batch_ids)
    again = run(emulator, store, tmp_path, rows, "again")
    assert sent_since(emulator, made) == [] and again.reused == 12
    before = {**by_id(tmp_path / "plain.jsonl"), **noted}
    for custom_id, line in by_id(tmp_path / "again.jsonl").items():
        assert line["result"] == before[custom_id]["result"]
        assert line["reused_from"] == ("plain/" if int(custom_id[2:]) < 6 else "noted/") \
            + custom_id


def test_answers_outlive_the_job_that_bought_them(emulator: Emulator,
                                                  tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    rows = dataset(6)
    run(emulator, store, tmp_path, rows, "first")
    first = by_id(tmp_path / "first.jsonl")
    assert set(answer_lines(store).values()) == {None}
    store.forget("first")  # its results go: the answers take their lines back
    held = answer_lines(store)
    assert {json.loads(line or b"null")["result"]["message"]["id"]
            for line in held.values()} == {v["result"]["message"]["id"] for v in first.values()}
    assert store.reuse_stats()["answers"] == 6
    made = len(emulator.batch_ids)
    second = run(emulator, store, tmp_path, rows, "second")
    assert sent_since(emulator, made) == [] and second.reused == 6
    for custom_id, line in by_id(tmp_path / "second.jsonl").items():
        assert line["result"] == first[custom_id]["result"]


@pytest.mark.sqlite_only
def test_a_version_3_store_made_by_the_earlier_code_is_upgraded(emulator: Emulator,
                                                               tmp_path: Path) -> None:
    """data/store-v3.db.gz was made by claudebatch-sqlite at schema 3 (commit db955d4):
    job "old", 6 requests in 2 batches, its 6 answers each holding its line; and
    data/store-v3.jsonl is that job's output."""
    data = Path(__file__).parent / "data"
    path = tmp_path / "v3.db"
    path.write_bytes(gzip.decompress((data / "store-v3.db.gz").read_bytes()))
    path.chmod(0o600)
    served = {v["custom_id"]: v for v in output_lines(data / "store-v3.jsonl")}
    with SQLiteStore(path, warn=False) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
        info = store.job("old")
        assert (info.state, info.counts, info.missing) == ("done", {"succeeded": 6}, 0)
        assert store.export("old", str(tmp_path / "export.jsonl")) == (6, 0)
        assert by_id(tmp_path / "export.jsonl") == served
        held = answer_lines(store)  # the answers kept their own lines, found as before
        assert sorted(held) == sorted(served) and None not in held.values()
        keys = [key for (key,) in store.conn.execute("SELECT key FROM answers")]
        found = store.records.find_answers(keys, float("inf"), None, count_hits=False)
        assert {row[3]: json.loads(row[1])["result"] for row in found} == {
            custom_id: line["result"] for custom_id, line in served.items()}
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # another emulator (answer keys name the server): everything is bought again
        run(emulator, store, tmp_path, dataset(8), "new")
        kept = sorted(store.conn.execute("SELECT job, custom_id, line IS NULL FROM answers"))
        assert kept == sorted([("old", c, 0) for c in served]
                              + [("new", f"r-{i:03d}", 1) for i in range(8)])  # once, now
        assert store.reuse_stats()["answers"] == 14
        store.forget("old")
        assert store.reuse_stats()["answers"] == 14


def test_the_cost_plugin_prices_what_reuse_did_not_spend(emulator: Emulator,
                                                         tmp_path: Path) -> None:
    from claudebatch_cost import CostTracker

    store = SQLiteStore(tmp_path / "s.db")
    rows = dataset(10)
    bought = CostTracker()
    run(emulator, store, tmp_path, rows, "first", bought)
    tracker = CostTracker()
    report = run(emulator, store, tmp_path, rows, "second", tracker)
    assert bought.job.batch_usd > 0
    # nothing bought; what was reused priced exactly as it was bought
    assert (tracker.job.batch_usd, tracker.job.succeeded) == (0, 0)
    assert tracker.job_reused.batch_usd == bought.job.batch_usd
    assert tracker.job_reused.succeeded == 10
    assert report.plugins["cost"]["not spent (reused)"].startswith(
        f"${bought.job.batch_usd:,.4f} for 10 answer(s) reused")


# --- helpers --------------------------------------------------------------------------


class Seen:
    def __init__(self) -> None:
        self.ids: List[str] = []
        self.reusing: List[str] = []

    @hookimpl
    def on_result(self, result: BatchResult, context: Any) -> None:
        self.ids.append(result.custom_id)
        if context.reusing:
            self.reusing.append(result.custom_id)


class Unusable:
    """Marks some answers as not what was asked (as a failed schema check would)."""

    def __init__(self, ids: set[str]) -> None:
        self.ids = ids

    @hookimpl
    def annotate_result(self, result: BatchResult) -> Optional[Annotation]:
        if result.custom_id in self.ids:
            return Annotation({"checked": False}, usable=False)
        return None


class Stop(Exception):
    pass


class StopAfterSubmit:
    @hookimpl(trylast=True)
    def after_submit(self) -> None:
        raise Stop


def child(config: Dict[str, Any], tmp_path: Path, name: str) -> int:
    full = {**config, "name": name, "output": str(tmp_path / f"{name}.jsonl"),
            "report": str(tmp_path / f"{name}-report.json")}
    process = fork_context().Process(target=run_child, args=(full,))
    process.start()
    process.join(60)
    assert process.exitcode is not None, "the child hung"
    return int(process.exitcode)


class StopAtFirstDuplicate:
    @hookimpl(trylast=True)
    def on_result(self, context: Any) -> None:
        if context.reusing:
            raise Stop


def test_an_appended_resume_writes_the_duplicates_its_output_lacks(
        emulator: Emulator, tmp_path: Path) -> None:
    """A store that keeps no lines (replay=False) resumes by appending to the output: the
    duplicates of a request whose line is there already are written then, not lost."""
    rows = dataset(6)
    rows[4]["params"] = rows[0]["params"]
    rows[5]["params"] = rows[0]["params"]
    store = SQLiteStore(tmp_path / "s.db", replay=False)
    with pytest.raises(Stop):
        run(emulator, store, tmp_path, rows, "job", StopAtFirstDuplicate())
    assert "r-004" not in by_id(tmp_path / "job.jsonl")
    made = len(emulator.batch_ids)
    report = run(emulator, SQLiteStore(tmp_path / "s.db", replay=False), tmp_path, rows, "job")
    assert len(emulator.batch_ids) == made  # nothing sent again
    lines = output_lines(tmp_path / "job.jsonl")
    assert sorted(line["custom_id"] for line in lines) == [r["custom_id"] for r in rows]
    out = by_id(tmp_path / "job.jsonl")
    assert out["r-004"]["result"] == out["r-005"]["result"] == out["r-000"]["result"]
    assert report.complete and report.missing == []
