"""The annotate_result hook: a plugin's fields go into the output line, its value onto
``result.parsed``, for on_result, for ``client.results()`` and for ``report.results()``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

from claudebatch import Annotation, BatchClient, BatchResult, hookimpl
from claudebatch.emulator import Emulator


class Upper:
    """Annotates each success with its text upper-cased (as a typed value, a tuple)."""

    def __init__(self) -> None:
        self.seen: List[Any] = []

    @hookimpl
    def annotate_result(self, result: BatchResult) -> Optional[Annotation]:
        if result.type != "succeeded":
            return None
        text = result.result.message.text  # type: ignore[union-attr]
        return Annotation(fields={"parsed": text.upper(), "custom_id": "hijacked",
                                  "note": len(text)},
                          parsed=("typed", text.upper()))

    @hookimpl
    def on_result(self, result: BatchResult, line: bytes) -> None:
        self.seen.append((result.parsed, json.loads(line)["parsed"]))


class Second:
    @hookimpl
    def annotate_result(self) -> Annotation:
        return Annotation(fields={"note": "second", "more": True})


def requests(n: int) -> List[Any]:
    return [{"custom_id": f"r{i}", "params": {"model": "claude-haiku-4-5", "max_tokens": 64,
             "messages": [{"role": "user", "content": f"say {i}"}]}} for i in range(n)]


def test_annotations_reach_the_line_the_hooks_and_the_readers(tmp_path: Path) -> None:
    upper = Upper()
    with Emulator(rate=float("inf"), seed=3) as emu:
        client = BatchClient(api_key="k", base_url=emu.url, poll_interval=0.01,
                             load_entry_points=False, plugins=[upper, Second()])
        report = client.run(requests(5), output=str(tmp_path / "out.jsonl"))
        (batch_id,) = report.batch_ids
        streamed = list(client.results(batch_id))
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(line["custom_id"] for line in lines) == [f"r{i}" for i in range(5)]
    for line in lines:
        text = line["result"]["message"]["content"][0]["text"]
        assert line["parsed"] == text.upper()
        assert line["note"] == "second"  # the first to answer wins: pluggy calls the
        # plugin registered last first
        assert line["more"] is True
    assert all(typed == ("typed", raw) for typed, raw in upper.seen)
    assert len(upper.seen) == 10  # the job's 5, then the 5 streamed again
    assert all(result.parsed[0] == "typed" for _, result in report.results())
    assert all(result.parsed[0] == "typed" for result in streamed)


def test_without_a_plugin_parsed_is_read_back_from_the_line(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with Emulator(rate=float("inf"), seed=3) as emu:
        BatchClient(api_key="k", base_url=emu.url, poll_interval=0.01, load_entry_points=False,
                    plugins=[Upper()]).run(requests(2), output=str(path))
    from claudebatch import parse_result

    for line in path.read_text().splitlines():
        value = json.loads(line)
        assert parse_result(value).parsed == value["parsed"]
