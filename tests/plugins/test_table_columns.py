"""The columns first-party plugins add to a job's table: cost_usd, and a schema's fields."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pytest
from claudebatch_cost import CostTracker
from claudebatch_structured import StructuredOutput

from claudebatch import BatchClient, Rows
from claudebatch.emulator import Emulator

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

SCHEMA = {"type": "object", "required": ["label", "score"], "additionalProperties": False,
          "properties": {"label": {"type": "string"}, "score": {"type": "number"},
                         "urgent": {"type": ["boolean", "null"]},
                         "spans": {"type": "array", "items": {"type": "integer"}}}}
DATA = [{"id": f"t{i}", "text": f"ticket {i % 4}"} for i in range(8)]  # 4 identical pairs


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(rate=20000.0, seed=6, answer_tokens=(20, 40)) as emu:
        yield emu


def run(emulator: Emulator, tmp_path: Path, *plugins: Any, **options: Any) -> Any:
    client = BatchClient(api_key="emulator", base_url=emulator.url, plugins=list(plugins),
                         load_entry_points=False, **options)
    rows = Rows(DATA, template="Triage {{ text }}", model="claude-haiku-4-5",
                max_tokens=200, id_column="id")
    return client.run(rows, output=str(tmp_path / "out.parquet"), poll_interval=0.005)


def test_cost_usd_per_row_adds_up_to_the_job_and_shared_answers_cost_nothing(
        emulator: Emulator, tmp_path: Path) -> None:
    tracker = CostTracker()
    report = run(emulator, tmp_path, tracker, reuse=True)  # identical pairs sent once
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.field("cost_usd").type == pa.float64()
    costs = table.column("cost_usd").to_pylist()
    assert report.duplicates == 4 and costs.count(0.0) == 4
    assert all(c > 0 for c in costs[:4])
    assert Decimal(str(sum(costs))).quantize(Decimal("1e-9")) == \
        tracker.job.batch_usd.quantize(Decimal("1e-9"))


def test_a_schema_gives_one_typed_column_per_top_level_field(emulator: Emulator,
                                                             tmp_path: Path) -> None:
    structured = StructuredOutput(SCHEMA)
    report = run(emulator, tmp_path, structured)
    assert report.all_succeeded and structured.parsed == len(DATA)
    table = pq.read_table(tmp_path / "out.parquet")
    fields = {name: table.schema.field(name).type for name in ("label", "score", "urgent",
                                                                 "spans")}
    assert fields == {"label": pa.string(), "score": pa.float64(), "urgent": pa.bool_(),
                      "spans": pa.string()}  # nested values: JSON text
    for row in table.to_pylist():
        assert isinstance(row["label"], str) and isinstance(row["score"], float)
    frame = report.to_pandas()
    assert list(frame.columns[-4:]) == ["label", "score", "urgent", "spans"]
