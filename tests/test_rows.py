"""Rows in, tables out: each input kind, the id rules, template errors, each output kind.

Jobs go over real HTTP to the emulator on loopback; the tables are read back with
the libraries users read them with (pyarrow, pandas, csv).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from claudebatch import BatchClient, Column, MissingExtraError, Rows, ValidationError, hookimpl
from claudebatch.cli import main
from claudebatch.emulator import Emulator, Faults
from claudebatch.errors import OutputPathError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pd = pytest.importorskip("pandas")

MODEL = "claude-haiku-4-5"
TEMPLATE = "Review of {{ product }}: {{ review }}"
DATA: List[Dict[str, Any]] = [
    {"id": f"p{i}", "product": f"thing {i}", "review": f"review number {i}", "stars": i % 5}
    for i in range(12)]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(rate=20000.0, seed=5, answer_tokens=(60, 80)) as emu:
        yield emu


def client_for(emulator: Emulator, *plugins: Any) -> BatchClient:
    return BatchClient(api_key="emulator", base_url=emulator.url, plugins=list(plugins),
                       load_entry_points=False)


def run(emulator: Emulator, data: Any, output: Path, *plugins: Any, **options: Any) -> Any:
    rows_options = {k: options.pop(k) for k in ("id_column", "system", "params", "format",
                                                "max_tokens", "template") if k in options}
    rows_options.setdefault("template", TEMPLATE)
    source = Rows(data, model=MODEL, **rows_options)
    return client_for(emulator, *plugins).run(source, output=str(output),
                                              poll_interval=0.005, **options)


def prompt_of(answer: str) -> str:
    """The prompt the emulator echoes at the start of its answer."""
    return answer.split(": '", 1)[1].split("'.", 1)[0]


def write_inputs(folder: Path) -> Dict[str, Path]:
    paths = {"csv": folder / "in.csv", "tsv": folder / "in.tsv",
             "jsonl": folder / "in.jsonl", "parquet": folder / "in.parquet"}
    for kind, delimiter in (("csv", ","), ("tsv", "\t")):
        with open(paths[kind], "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(DATA[0]), delimiter=delimiter)
            writer.writeheader()
            writer.writerows(DATA)
    paths["jsonl"].write_text("".join(json.dumps(r) + "\n" for r in DATA))
    pq.write_table(pa.Table.from_pylist(DATA), paths["parquet"], row_group_size=5)
    return paths


def in_memory(kind: str) -> Any:
    if kind == "list":
        return list(DATA)
    if kind == "generator":
        return (dict(r) for r in DATA)
    if kind == "pandas":
        return pd.DataFrame(DATA)
    if kind == "polars":
        polars = pytest.importorskip("polars")
        return polars.DataFrame(DATA)
    if kind == "arrow":
        return pa.Table.from_pylist(DATA)
    if kind == "arrow-dataset":
        import pyarrow.dataset as ds

        return ds.dataset(pa.Table.from_pylist(DATA))
    assert kind == "hf"
    datasets = pytest.importorskip("datasets")
    return datasets.Dataset.from_list(DATA)


# --- every input kind ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl", "parquet"])
def test_each_file_kind_gives_one_request_per_row_and_a_table_in_input_order(
        emulator: Emulator, tmp_path: Path, kind: str) -> None:
    source = write_inputs(tmp_path)[kind]
    report = run(emulator, source, tmp_path / "out.parquet", id_column="id")
    assert report.all_succeeded and report.total_requests == 12
    table = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [row["id"] for row in table] == [r["id"] for r in DATA]
    assert [row["custom_id"] for row in table] == [r["id"] for r in DATA]
    for row, given in zip(table, DATA):
        assert prompt_of(row["answer"]) == f"Review of {given['product']}: {given['review']}"
        assert row["result_type"] == "succeeded" and row["output_tokens"] > 0
    # CSV holds text; JSONL and Parquet keep the numbers they hold
    assert table[3]["stars"] == ("3" if kind in ("csv", "tsv") else 3)
    assert report.table == str(tmp_path / "out.parquet")
    assert report.output == str(tmp_path / "out.parquet.results.jsonl")


@pytest.mark.parametrize("kind", ["list", "generator", "pandas", "polars", "arrow",
                                  "arrow-dataset", "hf"])
def test_each_in_memory_kind_gives_the_same_table(emulator: Emulator, tmp_path: Path,
                                                   kind: str) -> None:
    report = run(emulator, in_memory(kind), tmp_path / "out.csv", id_column="id")
    assert report.all_succeeded
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert [row["id"] for row in table] == [r["id"] for r in DATA]
    assert [row["stars"] for row in table] == [str(r["stars"]) for r in DATA]
    assert all(row["result_type"] == "succeeded" for row in table)
    frame = report.to_pandas()
    assert list(frame["id"]) == [r["id"] for r in DATA]
    assert list(frame.columns[:4]) == ["id", "product", "review", "stars"]


def test_pandas_missing_values_render_empty_and_types_survive_to_parquet(
        emulator: Emulator, tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "review": ["good", None, "bad"],
                          "score": [1.5, float("nan"), 2.0],
                          "when": pd.to_datetime(["2026-01-01", "2026-02-01", "2026-03-01"])})
    report = run(emulator, frame, tmp_path / "out.parquet", id_column="id",
                 template="{{ review }} ({{ score }})")
    table = pq.read_table(tmp_path / "out.parquet")
    assert pa.types.is_timestamp(table.schema.field("when").type)
    assert table.schema.field("score").type == pa.float64()
    rows = table.to_pylist()
    assert [r["custom_id"] for r in rows] == ["1", "2", "3"]
    assert prompt_of(rows[1]["answer"]) == " ()"
    assert rows[0]["when"] == dt.datetime(2026, 1, 1)
    assert report.to_polars().shape == (3, 4 + 10)


# --- ids ---------------------------------------------------------------------------------

def test_ids_that_fit_are_kept_others_hashed_stably_and_the_table_keeps_the_key(
        emulator: Emulator, tmp_path: Path) -> None:
    data = [{"key": "plain_id-1", "text": "a"}, {"key": "has space/é", "text": "b"},
            {"key": 42, "text": "c"}, {"key": "x" * 65, "text": "d"}]
    run(emulator, data, tmp_path / "a.parquet", id_column="key", template="{{ text }}")
    run(emulator, data, tmp_path / "b.parquet", id_column="key", template="{{ text }}")
    first = pq.read_table(tmp_path / "a.parquet").to_pylist()
    again = pq.read_table(tmp_path / "b.parquet").to_pylist()
    ids = [r["custom_id"] for r in first]
    assert ids[0] == "plain_id-1" and ids[2] == "42"
    assert ids[1].startswith("key-") and ids[3].startswith("key-") and ids[1] != ids[3]
    assert ids == [r["custom_id"] for r in again]  # stable from run to run
    assert [r["key"] for r in first] == ["plain_id-1", "has space/é", "42", "x" * 65]


def test_without_an_id_column_ids_hash_the_row_and_identical_rows_are_numbered(
        emulator: Emulator, tmp_path: Path) -> None:
    data = [{"text": "same"}, {"text": "other"}, {"text": "same"}, {"text": "same"}]
    run(emulator, data, tmp_path / "out.jsonl", template="{{ text }}")
    table = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    ids = [r["custom_id"] for r in table]
    assert ids[0].startswith("row-") and len(ids[0]) == 36
    assert ids[2:] == [ids[0] + "-2", ids[0] + "-3"] and ids[1] != ids[0]
    assert [r["text"] for r in table] == ["same", "other", "same", "same"]
    assert all(r["result_type"] == "succeeded" for r in table)
    # the table holds rows and answers; the result lines are beside it
    assert (tmp_path / "out.jsonl.results.jsonl").exists()


def test_duplicate_keys_are_refused_naming_both_rows_before_anything_is_sent(
        emulator: Emulator, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,text\na,one\nb,two\na,three\n")
    before = len(emulator.batch_ids)
    with pytest.raises(ValidationError) as caught:
        run(emulator, source, tmp_path / "out.csv", id_column="id", template="{{ text }}")
    assert "in.csv line 4" in str(caught.value.problems)
    assert "is also the id of in.csv line 2" in str(caught.value.problems)
    assert len(emulator.batch_ids) == before


def test_an_id_column_that_is_missing_or_empty_is_named(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,text\na,one\n,two\n")
    with pytest.raises(ValidationError, match=r"'key' is not a column of in\.csv"):
        Rows(source, template="{{ text }}", model=MODEL, id_column="key")
    client = BatchClient(api_key="k", base_url="http://127.0.0.1:9", load_entry_points=False)
    with pytest.raises(ValidationError) as caught:
        client.job(Rows(source, template="{{ text }}", model=MODEL, id_column="id")).dry_run()
    assert caught.value.problems == ["in.csv line 3: the id column 'id' is empty"]


# --- templates ---------------------------------------------------------------------------

def dry(data: Any, **options: Any) -> Any:
    client = BatchClient(api_key="k", base_url="http://127.0.0.1:9", load_entry_points=False)
    return client.job(Rows(data, model=MODEL, **options)).dry_run()


def test_an_undefined_variable_names_the_row_and_the_variable() -> None:
    data = [{"product": "a", "review": "ok"}, {"product": "b"}]
    with pytest.raises(ValidationError) as caught:
        dry(data, template=TEMPLATE)
    assert caught.value.problems == [
        "rows row 1: the template uses 'review', which this row does not have (its "
        "columns: product)"]


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    template = tmp_path / "t.j2"
    template.write_text("line one\n{{ product }\n")
    with pytest.raises(ValidationError, match=r"t.j2 line 2: unexpected '}'"):
        dry(DATA, template=template)


def test_the_sandbox_refuses_python_internals() -> None:
    with pytest.raises(ValidationError) as caught:
        dry(DATA[:1], template="{{ product.__class__.__mro__[1].__subclasses__() }}")
    assert "rows row 0:" in caught.value.problems[0]
    assert "__class__" in caught.value.problems[0] or "unsafe" in caught.value.problems[0]


def test_empty_messages_system_and_params_are_checked_per_row(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        dry([{"t": "x"}, {"t": " "}], template="{{ t }}")
    assert caught.value.problems == ["rows row 1: the template made an empty message for "
                                     "this row"]
    plan = dry(DATA[:2], template="{{ product }}", system="You review {{ product }}.",
               params={"stop_sequences": ["###"], "metadata": {"user_id": "u"}})
    assert plan.total_requests == 2
    with pytest.raises(ValidationError) as caught:  # the default API version refuses it
        dry(DATA[:2], template="{{ product }}", params={"top_k": 5})
    assert "rows row 0 (custom_id 'row-" in caught.value.problems[0]
    assert "top_k" in caught.value.problems[0]
    with pytest.raises(ValidationError, match="params must not hold messages"):
        dry(DATA, template="x", params={"messages": []})


def test_a_row_is_reached_by_any_column_name_and_the_system_prompt_is_sent(
        emulator: Emulator, tmp_path: Path) -> None:
    data = [{"review text": "fine", "id": "a"}]
    report = run(emulator, data, tmp_path / "out.jsonl", id_column="id",
                 template='Say {{ row["review text"] }}', system="Be brief")
    assert report.all_succeeded
    lines = (tmp_path / "out.jsonl.results.jsonl").read_text()
    assert json.loads(lines)["custom_id"] == "a"
    assert prompt_of(report.to_arrow().to_pylist()[0]["answer"]) == "Say fine"


# --- outputs -------------------------------------------------------------------------------

def test_a_job_of_requests_writes_a_table_by_extension_and_jsonl_as_before(
        emulator: Emulator, tmp_path: Path) -> None:
    requests = [{"custom_id": f"r{i}", "params": {"model": MODEL, "max_tokens": 20,
                 "messages": [{"role": "user", "content": f"q{i}"}]}} for i in range(5)]
    client = client_for(emulator)
    report = client.run(requests, output=str(tmp_path / "out.tsv"), poll_interval=0.005)
    with open(tmp_path / "out.tsv", newline="") as handle:
        table = list(csv.DictReader(handle, delimiter="\t"))
    assert [r["custom_id"] for r in table] == [f"r{i}" for i in range(5)]  # input order
    assert list(table[0])[:3] == ["custom_id", "result_type", "answer"]
    assert report.output == str(tmp_path / "out.tsv.results.jsonl")
    report = client.run(requests, output=str(tmp_path / "plain.jsonl"), poll_interval=0.005)
    assert report.table is None
    assert sorted(json.loads(x)["custom_id"] for x in
                  (tmp_path / "plain.jsonl").read_text().splitlines()) == [f"r{i}" for i in
                                                                           range(5)]
    assert sorted(report.to_arrow().column("custom_id").to_pylist()) == [f"r{i}" for i in
                                                                        range(5)]


def test_errored_results_fill_the_error_columns(tmp_path: Path) -> None:
    with Emulator(rate=20000.0, seed=5, faults=Faults(errored=1.0)) as emu:
        run(emu, DATA[:3], tmp_path / "out.csv", id_column="id")
    with open(tmp_path / "out.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert {r["result_type"] for r in table} == {"errored"}
    assert all(r["error_type"] and r["error_message"] for r in table)
    assert all(r["answer"] == "" and r["input_tokens"] == "" for r in table)


def test_a_clash_with_an_added_column_is_refused_before_sending_or_prefixed(
        emulator: Emulator, tmp_path: Path) -> None:
    data = [{"id": "a", "answer": "42", "question": "what"}]
    with pytest.raises(ValidationError, match="'answer' have the name of a column"):
        run(emulator, pd.DataFrame(data), tmp_path / "out.csv", id_column="id",
            template="{{ question }}")
    run(emulator, pd.DataFrame(data), tmp_path / "out.csv", id_column="id",
        template="{{ question }}", column_prefix="llm_")
    with open(tmp_path / "out.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert table[0]["answer"] == "42" and table[0]["llm_result_type"] == "succeeded"


def test_plugins_add_columns(emulator: Emulator, tmp_path: Path) -> None:
    class Length:
        @hookimpl
        def table_columns(self) -> List[Column]:
            return [Column("answer_chars", "int")]

        @hookimpl
        def table_values(self, value: Any) -> Any:
            text = value["result"]["message"]["content"][0]["text"]
            return {"answer_chars": len(text)}

    run(emulator, DATA[:2], tmp_path / "out.parquet", Length(), id_column="id")
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.field("answer_chars").type == pa.int64()
    assert table.column("answer_chars").to_pylist() == [
        len(a) for a in table.column("answer").to_pylist()]


def test_outputs_that_cannot_be_written_are_refused_before_sending(
        emulator: Emulator, tmp_path: Path) -> None:
    source = write_inputs(tmp_path)["parquet"]
    before = len(emulator.batch_ids)
    for output, message in ((tmp_path / "in.parquet", "is the input"),
                            (tmp_path / "no" / "out.csv", "does not exist"),
                            (tmp_path / "out.xlsx", "cannot tell the table format")):
        with pytest.raises(OutputPathError, match=message):
            run(emulator, source, output, id_column="id")
    assert len(emulator.batch_ids) == before


def test_a_missing_library_names_its_extra(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    source = write_inputs(tmp_path)["parquet"]
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'claudebatch\[parquet\]'"):
        Rows(source, template="x", model=MODEL)
    monkeypatch.setitem(sys.modules, "fsspec", None)
    with pytest.raises(MissingExtraError, match=r"claudebatch\[fsspec\]"):
        Rows("s3://bucket/rows.csv", template="x", model=MODEL)


# --- the command line -----------------------------------------------------------------------

def cli(emulator: Emulator, *args: str) -> int:
    return main(["run", *args, "--base-url", emulator.url, "--poll-interval", "0.005",
                 "--quiet"])


def test_cli_runs_a_csv_through_a_template_to_parquet(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "emulator")
    source = write_inputs(tmp_path)["csv"]
    (tmp_path / "t.j2").write_text(TEMPLATE)
    (tmp_path / "params.json").write_text('{"metadata": {"user_id": "u1"}}')
    code = cli(emulator, str(source), "--template", str(tmp_path / "t.j2"), "--model", MODEL,
               "--max-tokens", "40", "--param", "temperature=0.2", "--params",
               str(tmp_path / "params.json"), "--id-column", "id", "--api-version",
               "2023-06-01", "-o", str(tmp_path / "out.parquet"))
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"table: {tmp_path / 'out.parquet'}" in out
    table = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["custom_id"] for r in table] == [r["id"] for r in DATA]
    assert all(r["output_tokens"] <= 40 for r in table)


def test_cli_explains_rows_without_a_template_and_template_errors(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "emulator")
    source = write_inputs(tmp_path)["csv"]
    assert cli(emulator, str(source), "-o", str(tmp_path / "o.csv")) == 2
    assert "holds rows, not requests: give --template" in capsys.readouterr().err
    assert cli(emulator, str(tmp_path / "in.jsonl"), "--id-column", "id", "-o",
               str(tmp_path / "o.csv")) == 2
    assert "--id-column makes requests from rows: it needs --template" in \
        capsys.readouterr().err
    (tmp_path / "t.j2").write_text("{{ nope }}")
    assert cli(emulator, str(source), "--template", str(tmp_path / "t.j2"), "--model", MODEL,
               "-o", str(tmp_path / "o.csv")) == 3
    err = capsys.readouterr().err
    assert f"in.csv line 2: {tmp_path / 't.j2'} uses 'nope'" in err
    assert "Traceback" not in err


def test_demo_from_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    source = write_inputs(tmp_path)["csv"]
    (tmp_path / "t.j2").write_text(TEMPLATE)
    code = main(["demo", "--from-csv", str(source), "--template", "t.j2", "--id-column", "id",
                 "-o", "reviews.csv", "--quiet"])
    assert code == 0, capsys.readouterr().err
    with open(tmp_path / "reviews.csv", newline="") as handle:
        assert [r["id"] for r in csv.DictReader(handle)] == [r["id"] for r in DATA]


def test_the_template_keeps_jinja_globals_and_filters() -> None:
    plan = dry([{"t": "ab"}], template="{% for i in range(2) %}{{ t | upper }}{% endfor %}"
                                      "{{ dict(a=1).a }}")
    assert plan.total_requests == 1
    template_text = Rows([{"t": "ab"}], template="{% for i in range(2) %}{{ t | upper }}"
                                                "{% endfor %}", model=MODEL)
    assert template_text.template.render({"t": "ab"}) == ("ABAB", None)


def test_file_urls_are_local_paths(emulator: Emulator, tmp_path: Path) -> None:
    source = write_inputs(tmp_path)["csv"]
    report = client_for(emulator).run(
        Rows(f"file://{source}", template=TEMPLATE, model=MODEL, id_column="id"),
        output=f"file://{tmp_path / 'out.parquet'}", poll_interval=0.005)
    assert [r["id"] for r in pq.read_table(tmp_path / "out.parquet").to_pylist()] == \
        [r["id"] for r in DATA]
    assert report.output == str(tmp_path / "out.parquet.results.jsonl")
