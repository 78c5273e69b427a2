"""Each failure class on its own, and ``claudebatch run --schema FILE --repair N``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional

import pytest
from claudebatch_structured import StructuredOutput
from claudebatch_structured import cli as structured_cli
from claudebatch_structured.check import check

from claudebatch import parse_result
from claudebatch.cli import main
from claudebatch.emulator import Emulator, Faults

SCHEMA = {"type": "object", "required": ["label", "score"], "additionalProperties": False,
          "properties": {"label": {"type": "string"},
                         "score": {"type": "number", "minimum": 0, "maximum": 1},
                         "spans": {"type": "array", "items": {"type": "integer"}}}}


def answer(text: str, stop: str = "end_turn", kind: str = "succeeded") -> Any:
    if kind != "succeeded":
        return parse_result({"custom_id": "a", "result": {"type": kind}})
    return parse_result({"custom_id": "a", "result": {"type": "succeeded", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
        "content": [{"type": "text", "text": text}], "stop_reason": stop,
        "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}}})


@pytest.mark.parametrize("text, stop, kind, path, words", [
    ('{"label": "spam", "score": 0.9}', "end_turn", None, None, None),
    ('{"label": "spam", "score": 1.5}', "end_turn", "schema_violation", "$.score",
     "1.5 is greater than the maximum of 1"),
    ('{"label": "spam", "score": 0.5, "spans": [1, "x"]}', "end_turn", "schema_violation",
     "$.spans[1]", "'x' is not of type 'integer'"),
    ('{"label": "spam"}', "end_turn", "schema_violation", "$", "'score' is a required"),
    ("Sure! {\"label\": ", "end_turn", "invalid_json", None, "not JSON"),
    ('{"label": "sp', "max_tokens", "truncated", None, "cut at max_tokens"),
    ("I can't help with that.", "refusal", "refusal", None, "declined"),
])
def test_each_answer_is_parsed_or_named_by_class(
        text: str, stop: str, kind: Optional[str], path: Optional[str],
        words: Optional[str]) -> None:
    checked = check(answer(text, stop), StructuredOutput(SCHEMA).shape)
    assert checked is not None
    if kind is None:
        assert checked.problem is None and checked.value == json.loads(text)
        return
    assert checked.problem is not None and checked.problem.kind == kind
    assert checked.problem.path == path and words in checked.problem.message


def test_results_without_an_answer_are_not_checked() -> None:
    assert check(answer("", kind="expired"), StructuredOutput(SCHEMA).shape) is None


def test_an_answer_is_sent_asking_for_the_schema_unless_it_asks_for_its_own() -> None:
    from claudebatch import Request

    structured = StructuredOutput(SCHEMA)
    asked = structured.with_format(Request("a", {"model": "m", "max_tokens": 5,
                                                 "output_config": {"effort": "low"}}))
    assert asked.params["output_config"] == {
        "effort": "low", "format": {"type": "json_schema", "schema": structured.shape.sent}}
    # what the API refuses in a schema goes into the description; the check keeps it
    assert structured.shape.sent["properties"]["score"] == {
        "type": "number", "description": "(minimum: 0; maximum: 1)"}
    assert structured.shape.json_schema["properties"]["score"]["maximum"] == 1
    own = Request("b", {"output_config": {"format": {"type": "json_schema", "schema": {}}}})
    assert structured.with_format(own) is own


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch, install_cli: Callable[..., None]
             ) -> Iterator[Emulator]:
    install_cli(structured_cli)  # the CLI with only this distribution installed
    with Emulator(rate=float("inf"), seed=2,
                  faults=Faults(invalid_json=0.2, truncated=0.1)) as emu:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", emu.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
        yield emu


def write(path: Path, value: Any) -> Path:
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


def tickets(path: Path, count: int) -> Path:
    rows = [{"custom_id": f"r{i}", "params": {"model": "claude-sonnet-5-5", "max_tokens": 200,
             "messages": [{"role": "user", "content": f"label {i}"}]}} for i in range(count)]
    return write(path, "".join(json.dumps(r) + "\n" for r in rows))


def test_cli_runs_with_a_schema_and_reports_parsed_invalid_repaired(
        emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schema = write(tmp_path / "schema.json", SCHEMA)
    source = tickets(tmp_path / "in.jsonl", 40)
    out = tmp_path / "out.jsonl"
    code = main(["run", str(source), "-o", str(out), "--schema", str(schema), "--repair", "2",
                 "--quiet", "--poll-interval", "0.01"])
    printed = capsys.readouterr().out
    line = next(s for s in printed.splitlines() if s.strip().startswith("structured:"))
    assert code == 0
    values: Dict[str, Any] = {v["custom_id"]: v for v in map(json.loads, out.read_text()
                                                             .splitlines())}
    parsed = sum("parsed" in v for v in values.values())
    failed = sum("structured_error" in v for v in values.values())
    assert parsed + failed == 40 and parsed >= 35  # the faults hit every pass
    assert f"parsed {parsed}, invalid {40 - parsed}" in line and "repaired " in line, printed


@pytest.mark.parametrize("content, words", [
    (None, "cannot read it"),
    ("{not json", "not JSON"),
    ("[1, 2]", "a JSON Schema is an object, got list"),
    ('{"type": "strang"}', "not a valid JSON Schema"),
])
def test_cli_names_what_is_wrong_with_the_schema_file(
        emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        content: Optional[str], words: str) -> None:
    schema = tmp_path / "schema.json"
    if content is not None:
        write(schema, content)
    source = tickets(tmp_path / "in.jsonl", 2)
    code = main(["run", str(source), "-o", str(tmp_path / "out.jsonl"), "--schema",
                 str(schema)])
    err = capsys.readouterr().err
    assert code == 2 and f"--schema {schema}" in err and words in err
    assert "Traceback" not in err and emulator.batches_created == 0


def test_cli_repair_needs_a_schema(emulator: Emulator, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    source = tickets(tmp_path / "in.jsonl", 2)
    assert main(["run", str(source), "-o", str(tmp_path / "o.jsonl"), "--repair", "1"]) == 2
    assert "--repair needs --schema FILE" in capsys.readouterr().err


@pytest.mark.parametrize("text, stop, kind", [
    ("NaN", "end_turn", "invalid_json"),
    ("[" * 100_000 + "]" * 100_000, "end_turn", "invalid_json"),
    ("", "tool_use", "no_text"),
    ("", "pause_turn", "no_text"),
])
def test_answers_that_are_no_json_value_are_classed_never_raised(
        text: str, stop: str, kind: str) -> None:
    checked = check(answer(text, stop), StructuredOutput({"type": "array"}).shape)
    assert checked is not None and checked.problem is not None
    assert checked.problem.kind == kind


def test_a_null_answer_of_a_schema_that_allows_it_is_parsed_not_repaired(
        tmp_path: Path) -> None:
    from claudebatch import BatchClient

    structured = StructuredOutput({"type": "null"}, repair_passes=2)
    with Emulator(rate=float("inf"), seed=2) as emu:
        report = BatchClient(api_key="k", base_url=emu.url, poll_interval=0.01,
                             load_entry_points=False, plugins=[structured]).run(
            [{"custom_id": f"r{i}", "params": {"model": "claude-sonnet-5-5", "max_tokens": 50,
              "messages": [{"role": "user", "content": "nothing"}]}} for i in range(3)],
            output=str(tmp_path / "out.jsonl"))
    assert report.passes == 1 and structured.parsed == 3 and structured.invalid == {}
    assert all(json.loads(line)["parsed"] is None
               for line in (tmp_path / "out.jsonl").read_text().splitlines())


def test_requests_with_their_own_format_are_sent_and_judged_as_they_asked(
        tmp_path: Path) -> None:
    from claudebatch import BatchClient

    own = {"type": "object", "properties": {"b": {"type": "string"}}, "required": ["b"],
           "additionalProperties": False}
    structured = StructuredOutput(SCHEMA, repair_passes=2)
    with Emulator(rate=float("inf"), seed=2) as emu:
        report = BatchClient(api_key="k", base_url=emu.url, poll_interval=0.01,
                             load_entry_points=False, plugins=[structured]).run(
            [{"custom_id": "own", "params": {
                "model": "claude-sonnet-5-5", "max_tokens": 50,
                "output_config": {"format": {"type": "json_schema", "schema": own}},
                "messages": [{"role": "user", "content": "x"}]}}],
            output=str(tmp_path / "out.jsonl"))
    line = json.loads((tmp_path / "out.jsonl").read_text())
    assert report.passes == 1 and "parsed" not in line and "structured_error" not in line
    assert structured.invalid == {} and structured.parsed == 0
