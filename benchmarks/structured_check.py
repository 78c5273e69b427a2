"""What checking every answer against a schema costs: results/s, and the share of a job.

Two figures, one run:

* the check alone: ``--results`` answers of a 10-field schema (the emulator's, so they
  are the JSON a job gets) checked by the plugin (``json.loads``, the jsonschema
  validation, the typed value): results/s, against ``json.loads`` alone as the baseline;
* a whole job of the same requests against the emulator (every answer at once, in a
  process of its own, as the service would be), once without the plugin and once with
  it (``StructuredOutput(schema)``): the wall time each takes and the share it adds.

    python benchmarks/structured_check.py [--results 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claudebatch_structured import StructuredOutput
from claudebatch_structured.check import check

from claudebatch import BatchClient, BatchResult
from claudebatch.emulator import Emulator

SCHEMA: Dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["ticket", "sentiment", "urgency", "product", "summary", "refund", "amount",
                 "language", "tags", "agent"],
    "properties": {
        "ticket": {"type": "string"}, "sentiment": {"enum": ["negative", "neutral", "positive"]},
        "urgency": {"type": "integer", "minimum": 1, "maximum": 5},
        "product": {"enum": ["app", "web", "api", "billing"]},
        "summary": {"type": "string", "maxLength": 200}, "refund": {"type": "boolean"},
        "amount": {"type": "number", "minimum": 0}, "language": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
        "agent": {"type": "object", "required": ["team"], "additionalProperties": False,
                  "properties": {"team": {"enum": ["tier1", "tier2"]},
                                 "note": {"type": "string"}}}}}


def requests(count: int) -> List[Dict[str, Any]]:
    """The same requests for both runs: each asks for the schema as the plugin sends it."""
    sent = StructuredOutput(SCHEMA).shape.sent
    return [{"custom_id": f"t-{i:06d}", "params": {
        "model": "claude-haiku-4-5", "max_tokens": 400,
        "output_config": {"format": {"type": "json_schema", "schema": sent}},
        "messages": [{"role": "user", "content": f"Triage ticket {i}"}]}} for i in range(count)]


@contextlib.contextmanager
def emulator_process() -> Iterator[str]:
    """``claudebatch emulator`` in its own process; its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "claudebatch", "emulator", "--port", "0", "--rate", "inf",
         "--seed", "5", "--quiet"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        yield line.split("listening on ")[1].split()[0]
    finally:
        process.terminate()
        process.wait(timeout=30)


def job_seconds(count: int, folder: Path, plugins: List[Any]) -> float:
    with emulator_process() as url:
        client = BatchClient(api_key="k", base_url=url, poll_interval=0.05,
                             load_entry_points=False, plugins=plugins)
        started = time.perf_counter()
        report = client.run(requests(count), output=str(folder / "out.jsonl"))
        seconds = time.perf_counter() - started
    assert report.counts.get("succeeded") == count, report.summary()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=int, default=100_000)
    args = parser.parse_args()
    count = args.results
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plain = job_seconds(count, folder, [])
        results: List[BatchResult] = []
        with Emulator(rate=float("inf"), seed=5) as emu:
            client = BatchClient(api_key="k", base_url=emu.url, load_entry_points=False)
            batch = client.create(requests(count))
            results = list(client.results(batch.id))
        structured = StructuredOutput(SCHEMA)
        checked = job_seconds(count, folder, [structured])
    assert structured.parsed == count, structured.invalid

    texts = [r.result.message.text for r in results]  # type: ignore[union-attr]
    started = time.perf_counter()
    for text in texts:
        json.loads(text)
    loads = time.perf_counter() - started
    shape = structured.shape
    started = time.perf_counter()
    for result in results:
        done = check(result, shape)
        assert done is not None and done.problem is None
    seconds = time.perf_counter() - started

    print(f"{count:,} answers of a 10-field schema (mean {sum(map(len, texts)) / count:.0f} "
          f"bytes of JSON)")
    print(f"json.loads alone         {count / loads:>10,.0f} results/s")
    print(f"the plugin's check       {count / seconds:>10,.0f} results/s "
          f"({seconds / count * 1e6:.1f} µs each)")
    print(f"job without the plugin   {plain:>8.1f} s")
    print(f"job with the plugin      {checked:>8.1f} s   (+{(checked - plain) / plain:.1%} "
          f"of the job's wall time)")


if __name__ == "__main__":
    main()
