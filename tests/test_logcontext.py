"""Every log record of a job names its job and batch (``LogContext``), and ``-v`` shows them."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterator, List

import pytest

from claudebatch import BatchClient, LogContext
from claudebatch.cli import main
from claudebatch.emulator import Emulator
from claudebatch.logcontext import CURRENT_BATCH, CURRENT_JOB


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []
        self.addFilter(LogContext())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger("claudebatch")
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def requests(n: int) -> List[dict]:
    return [{"custom_id": f"r{i}", "params": {"model": "claude-haiku-4-5", "max_tokens": 8,
             "messages": [{"role": "user", "content": f"q{i}"}]}} for i in range(n)]


def test_a_jobs_records_name_it_and_the_batch_they_are_about(records: Records,
                                                              tmp_path: Path) -> None:
    with Emulator(rate=float("inf"), seed=2) as emu:
        emu.inject("drop_results")  # a broken download: a warning made while collecting
        client = BatchClient(api_key="k", base_url=emu.url, load_entry_points=False)
        client.run(requests(3), name="named", output=str(tmp_path / "o.jsonl"),
                   poll_interval=0.01)
        batch_id = emu.batch_ids[0]
    mine = [r for r in records.records if r.name == "claudebatch.job"]
    assert mine and all(r.job == "named" for r in mine)  # type: ignore[attr-defined]
    submitted = next(r for r in mine if "submitted batch" in r.getMessage())
    broke = next(r for r in mine if "broke" in r.getMessage())
    assert submitted.batch == broke.batch == batch_id  # type: ignore[attr-defined]
    assert (CURRENT_JOB.get(), CURRENT_BATCH.get()) == ("-", "-")  # nothing left set
    logging.getLogger("claudebatch").info("after the job")
    assert records.records[-1].job == "-"  # type: ignore[attr-defined]


def test_cli_verbose_logs_each_record_with_its_job_and_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    root = logging.getLogger("claudebatch")
    handlers, level = list(root.handlers), root.level
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in requests(4)))
    try:
        with Emulator(rate=float("inf"), seed=3) as emu:
            code = main(["run", str(source), "-o", str(tmp_path / "o.jsonl"), "--name", "vv",
                         "--base-url", emu.url, "--poll-interval", "0.01", "--quiet", "-v"])
            batch_id = emu.batch_ids[0]
    finally:
        for handler in root.handlers[len(handlers):]:
            root.removeHandler(handler)
        root.setLevel(level)
    assert code == 0
    err = capsys.readouterr().err
    assert f"INFO claudebatch.job [job=vv batch={batch_id}] job vv: submitted batch" in err
