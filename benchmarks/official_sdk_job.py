"""The job of ``claudebatch run IN -o OUT`` done by hand with the official ``anthropic`` SDK.

What a user of the official package writes: read the JSONL and ``json.loads`` every
line, cut it into batches of at most 100,000 requests (and, by the lines' lengths,
256,000,000 bytes), ``client.messages.batches.create(requests=[...])`` each, poll
``retrieve`` until ``processing_status == "ended"``, iterate
``client.messages.batches.results(id)`` and write each result back as one JSON line
(``result.to_json(indent=None)``, the SDK's own round trip), then count the results and
their distinct custom_ids. No validation beyond the SDK's own, no resume.

    python benchmarks/official_sdk_job.py IN.jsonl -o OUT.jsonl --base-url URL [--poll 0.2]

Importable: ``run_official(input_path, output_path, base_url, poll_interval) -> dict``.
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, List

MAX_REQUESTS = 100_000
MAX_BYTES = 256_000_000


def run_official(input_path: str, output_path: str, base_url: str, poll_interval: float,
                 api_key: str = "x") -> Dict[str, Any]:
    """Run the whole job with ``anthropic``; the counts."""
    import anthropic

    client = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=600)
    batches: List[List[Dict[str, Any]]] = [[]]
    size = 0
    with open(input_path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            if len(batches[-1]) == MAX_REQUESTS or size + len(line) > MAX_BYTES:
                batches.append([])
                size = 0
            batches[-1].append(json.loads(line))
            size += len(line)
    sent = {row["custom_id"] for batch in batches for row in batch}
    batch_ids = [client.messages.batches.create(requests=batch).id  # type: ignore[arg-type]
                 for batch in batches if batch]
    del batches
    types: Dict[str, int] = {}
    seen = set()
    results = 0
    with open(output_path, "w", encoding="utf-8") as out:
        for batch_id in batch_ids:
            while client.messages.batches.retrieve(batch_id).processing_status != "ended":
                time.sleep(poll_interval)
            for result in client.messages.batches.results(batch_id):
                if result.custom_id not in sent:
                    raise ValueError(f"a result for {result.custom_id!r}, not sent")
                seen.add(result.custom_id)
                types[result.result.type] = types.get(result.result.type, 0) + 1
                results += 1
                out.write(result.to_json(indent=None))
                out.write("\n")
    return {"requests": len(sent), "batches": len(batch_ids), "results": results,
            "distinct": len(seen), "types": types, "anthropic": anthropic.__version__}


def main() -> None:
    from _harness import job_script_main  # only as a script: the baseline imports nothing more

    job_script_main(run_official)


if __name__ == "__main__":
    main()
