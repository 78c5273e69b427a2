"""Rows at their edges: bad files, colliding ids, values tables cannot hold, overwrites.

Each case is one a user can hit; each must end in a message naming the file and the
line or row, before anything is sent, or in a table written anyway.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from claudebatch import BatchClient, Rows, ValidationError
from claudebatch.emulator import Emulator
from claudebatch.errors import ConfigurationError, OutputPathError

pq = pytest.importorskip("pyarrow.parquet")
np = pytest.importorskip("numpy")

MODEL = "claude-haiku-4-5"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(rate=20000.0, seed=8, answer_tokens=(5, 10)) as emu:
        yield emu


def client(emulator: Emulator) -> BatchClient:
    return BatchClient(api_key="emulator", base_url=emulator.url, load_entry_points=False)


def dry(data: Any, **options: Any) -> Any:
    options.setdefault("template", "{{ text }}")
    offline = BatchClient(api_key="k", base_url="http://127.0.0.1:9", load_entry_points=False)
    return offline.job(Rows(data, model=MODEL, **options)).dry_run()


def problems(data: Any, **options: Any) -> Any:
    with pytest.raises(ValidationError) as caught:
        dry(data, **options)
    return caught.value.problems or [str(caught.value)]


def test_an_unterminated_quote_is_an_error_not_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    body = "".join(f"{i},row {i}\n" for i in range(1, 9))
    path.write_text("id,text\n" + body.replace("5,row 5", '5,"oops stray quote'))
    found = problems(path, id_column="id")
    assert len(found) == 1 and "in.csv line 6" in found[0]
    assert "cannot read the file from here on" in found[0]


def test_a_long_cell_is_read_and_a_bad_byte_is_named_on_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("id,text\na," + "w" * 300_000 + "\n")
    assert dry(path, id_column="id").total_requests == 1
    rows = "".join(f"r{i},text {i}\n" for i in range(6000))
    path.write_bytes(b"id,text\n" + rows.encode() + b"bad,caf\xe9\n")
    (found,) = problems(path, id_column="id")
    assert "in.csv line 6002: not valid UTF-8: byte 0xe9" in found


def test_broken_and_mislabelled_gzip_are_named(tmp_path: Path) -> None:
    whole = gzip.compress(b"id,text\n" + b"".join(b"r%d,t\n" % i for i in range(2000)))
    (tmp_path / "cut.csv.gz").write_bytes(whole[:len(whole) // 2])
    assert "cannot read the file from here on" in problems(tmp_path / "cut.csv.gz")[0]
    (tmp_path / "plain.csv.gz").write_bytes(b"id,text\na,b\n")
    assert "plain.csv.gz" in str(problems(tmp_path / "plain.csv.gz"))
    (tmp_path / "ok.jsonl.gz").write_bytes(gzip.compress(b'{"text": "a"}\n'))
    assert dry(tmp_path / "ok.jsonl.gz").total_requests == 1
    (tmp_path / "x.parquet.gz").write_bytes(b"whatever")
    with pytest.raises(ValidationError, match="gzipped Parquet file is not read"):
        Rows(tmp_path / "x.parquet.gz", template="x", model=MODEL)


def test_jsonl_rows_must_be_objects(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "a"}\n[1, 2]\nnull\n"s"\n')
    assert problems(path) == [
        "rows.jsonl line 2: a row must be a JSON object (its columns), got list",
        "rows.jsonl line 3: a row must be a JSON object (its columns), got null",
        "rows.jsonl line 4: a row must be a JSON object (its columns), got str"]


def test_an_id_that_spells_another_ids_hash_is_a_duplicate() -> None:
    taken = dry([{"id": "a b", "text": "one"}], id_column="id")
    assert taken.total_requests == 1
    found = problems([{"id": "a b", "text": "one"},
                      {"id": "key-c8687a08aa5d6ed2044328fa6a697ab8", "text": "two"}],
                     id_column="id")
    assert found == ["rows row 1: the id 'key-c8687a08aa5d6ed2044328fa6a697ab8' (column "
                     "'id') is also the id of rows row 0: ids must be unique"]


def test_numpy_ids_and_int_column_names(emulator: Emulator, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({0: np.array([5, 6], dtype=np.int64), 1: ["a", "b"]})
    report = client(emulator).run(Rows(frame, template="{{ row['1'] }}", model=MODEL,
                                       id_column=0), output=str(tmp_path / "o.parquet"),
                                  poll_interval=0.005)
    assert [r["custom_id"] for r in report.to_arrow().to_pylist()] == ["5", "6"]
    rows = [{"id": np.int32(7), "text": "x", "n": np.int64(3)}]
    report = client(emulator).run(Rows(rows, template="{{ text }}", model=MODEL,
                                       id_column="id"), output=str(tmp_path / "n.parquet"),
                                  poll_interval=0.005)
    table = pq.read_table(tmp_path / "n.parquet")
    assert table.column("custom_id").to_pylist() == ["7"]
    assert str(table.schema.field("n").type) == "int64"


def test_a_column_found_while_reading_that_clashes_is_refused_before_sending(
        emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"t": "a"}\n{"t": "b", "answer": "x"}\n')
    before = len(emulator.batch_ids)
    with pytest.raises(ValidationError, match="'answer' have the name of a column"):
        client(emulator).run(Rows(path, template="{{ t }}", model=MODEL),
                             output=str(tmp_path / "o.csv"))
    assert len(emulator.batch_ids) == before


def test_values_a_table_cannot_hold_as_is_are_written_anyway(emulator: Emulator,
                                                             tmp_path: Path) -> None:
    rows = [{"id": "a", "text": "x", "odd": "bad \ud800 text", "big": 2**70},
            {"id": "b", "text": "y", "odd": "fine", "big": 1}]
    for output in ("o.csv", "o.parquet", "o.jsonl"):
        report = client(emulator).run(Rows(rows, template="{{ text }}", model=MODEL,
                                           id_column="id"), output=str(tmp_path / output),
                                      poll_interval=0.005)
        assert report.all_succeeded
    with open(tmp_path / "o.csv", newline="", encoding="utf-8") as handle:
        first = next(csv.DictReader(handle))
    assert first["odd"] == "bad \\ud800 text" and first["big"] == str(2**70)
    table = pq.read_table(tmp_path / "o.parquet").to_pylist()
    assert table[0]["odd"] == "bad \\ud800 text" and table[0]["big"] == str(2**70)
    assert json.loads((tmp_path / "o.jsonl").read_text().splitlines()[0])["odd"] == \
        "bad \ud800 text"


def test_nothing_claudebatch_did_not_write_is_overwritten(emulator: Emulator,
                                                          tmp_path: Path) -> None:
    template = tmp_path / "t.j2"
    template.write_text("{{ text }}")
    rows = Rows([{"text": "a"}], template=template, model=MODEL)
    before = len(emulator.batch_ids)
    with pytest.raises(OutputPathError):  # not a table's name: refused for that already
        client(emulator).run(rows, output=str(template))
    with pytest.raises(OutputPathError, match="does not hold results claudebatch wrote"):
        client(emulator).run(rows, output=str(tmp_path / "o.csv"), results=str(template))
    other = tmp_path / "notes.csv"
    other.write_text("name,notes\nx,y\n")
    with pytest.raises(OutputPathError, match=r"notes\.csv exists and does not hold"):
        client(emulator).run(rows, output=str(other))
    assert len(emulator.batch_ids) == before and template.read_text() == "{{ text }}"
    report = client(emulator).run(rows, output=str(tmp_path / "a.csv"), poll_interval=0.005)
    again = client(emulator).run(rows, output=str(tmp_path / "a.csv"), poll_interval=0.005)
    assert report.all_succeeded and again.all_succeeded  # its own table is replaced
    assert report.output != client(emulator).job(rows, output=str(tmp_path / "a.parquet")
                                                  ).output  # one results file per table
    with pytest.raises(ConfigurationError, match="result lines go to a local file"):
        client(emulator).job(rows, output=str(tmp_path / "b.csv"), results="s3://b/r.jsonl")


def test_a_template_cannot_blow_up_a_row() -> None:
    (found,) = problems([{"text": "a"}], template='{{ "x" * 10**9 }}')
    assert "repeating 1 items 1,000,000,000 times" in found
    (found,) = problems([{"text": "a"}], template="{{ 7 ** 100000 }}")
    assert "too large a number" in found


def test_what_a_killed_process_left_is_swept(tmp_path: Path) -> None:
    from claudebatch._fs import temporary_beside, temporary_folder

    dead = 2**22 + 12345  # above the kernel's default pid_max: no such process
    stale = tmp_path / f".out.csv.{dead}.abc.claudebatch.tmp"
    stale.write_text("half a table")
    fd, fresh = temporary_beside(str(tmp_path / "out.csv"))
    os.close(fd)
    assert not stale.exists() and Path(fresh).exists()
    import tempfile

    old = Path(tempfile.gettempdir()) / f"claudebatch-index-{dead}-xyz"
    old.mkdir()
    made = temporary_folder("index")
    assert not old.exists() and os.path.isdir(made)
    os.rmdir(made)


def test_the_overwrite_rule_reads_whole_first_lines_and_wants_the_answer_columns(
        emulator: Emulator, tmp_path: Path) -> None:
    from claudebatch.tables import check_overwrite

    compact = tmp_path / "requests.jsonl"  # jq -c style: no spaces, custom_id first
    compact.write_text('{"custom_id":"a","params":{"model":"m"}}\n')
    mine = tmp_path / "mine.csv"
    mine.write_text("id,last_result_type\n1,ok\n")
    for path in (compact, mine):
        with pytest.raises(OutputPathError, match="does not hold results"):
            check_overwrite(str(path))
    rows = [{"id": "a", "text": "x", "note": "n" * 70_000}]  # a first line past 64 KB
    for output in ("long.jsonl", "long.csv"):
        for _ in range(2):  # the second run replaces the first's table
            report = client(emulator).run(Rows(rows, template="{{ text }}", model=MODEL,
                                               id_column="id"),
                                          output=str(tmp_path / output), poll_interval=0.005)
            assert report.all_succeeded
    wide = [{f"c{i}": "v" for i in range(3000)} | {"id": "w", "text": "x"}]  # a long header
    for _ in range(2):
        client(emulator).run(Rows(wide, template="{{ text }}", model=MODEL, id_column="id"),
                             output=str(tmp_path / "wide.csv"), poll_interval=0.005)


def test_a_table_written_through_a_symlink_replaces_the_file_it_names(
        emulator: Emulator, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    rows = Rows([{"id": "a", "text": "x"}], template="{{ text }}", model=MODEL, id_column="id")
    client(emulator).run(rows, output=str(tmp_path / "real" / "t.csv"), poll_interval=0.005)
    (tmp_path / "link.csv").symlink_to(tmp_path / "real" / "t.csv")
    before = (tmp_path / "real" / "t.csv").stat().st_mtime_ns
    client(emulator).run(Rows([{"id": "b", "text": "y"}], template="{{ text }}", model=MODEL,
                              id_column="id"), output=str(tmp_path / "link.csv"),
                         poll_interval=0.005)
    assert (tmp_path / "link.csv").is_symlink()
    assert (tmp_path / "real" / "t.csv").stat().st_mtime_ns != before
    assert "b," in (tmp_path / "real" / "t.csv").read_text()


def test_the_sandbox_bounds_filters_formats_powers_and_products() -> None:
    for template, words in (('{{ "x"|center(10**9) }}', "center filter"),
                            ('{{ "%*d"|format(10**9, 1) }}', "format filter"),
                            ("{{ ('{:>' ~ 10**9 ~ '}').format('x') }}", "width of 10 million"),
                            ("{{ 2 ** 1000 ** 1000 ** 100 }}", "too large a number"),
                            ("{{ (10 ** 20000) * (10 ** 20000) * (10 ** 20000) }}",
                             "too large a number")):
        (found,) = problems([{"text": "a"}], template=template)
        assert words in found, (template, found)
    assert dry([{"text": "a"}], template='{{ "ab"|center(6) }}{{ "{:>4}".format(1) }}'
                                         '{{ 2 ** 64 }}').total_requests == 1
