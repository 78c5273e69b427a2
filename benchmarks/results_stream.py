"""Parse the same results body, served over loopback, with claudebatch and the official SDK.

Prints records/s for ``client.results()`` (typed and raw) and for the official
``anthropic`` package's ``messages.batches.results()``, and the ratios, in one run.
Also the limit of issue #19, on the same body in the same run: ``requests`` streaming
the body (``iter_content`` split on newlines, and ``iter_lines``; the faster counts)
and ``orjson.loads`` of each line, nothing else. Goals: typed >= 60% and raw >= 80% of
that limit. Typed results build each message when it is first read, so a third figure
reads every message's text: what a caller who reads each answer pays.

    python benchmarks/results_stream.py [--records 100000] [--text-bytes 400] [--repeat 3]

Importable: ``measure(records, text_bytes, repeat) -> dict``.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claudebatch import BatchClient
from tests.loopback_server import BATCH_ID, LoopbackResultsServer, generated_body


def best_rates(runs: Dict[str, Callable[[], int]], records: int, repeat: int
               ) -> Dict[str, float]:
    """records/s of each reader, the best of ``repeat`` rounds. A round runs every reader
    once, so a change in the machine's load between rounds falls on all of them alike
    (reader after reader, a slow minute would land on one). Each reader has a client (a
    connection) of its own: a stream sent down the connection another stream has just
    ended on ran 10% slower here, whoever read it (the same reader twice in a row on one
    client: 320,000 then 290,000 records/s; on two clients: 325,000 and 330,000)."""
    best = {name: float("inf") for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            started = time.perf_counter()
            seen = run()
            elapsed = time.perf_counter() - started
            if seen != records:
                raise SystemExit(f"{name}: expected {records} records, parsed {seen}")
            best[name] = min(best[name], elapsed)
    return {name: records / elapsed for name, elapsed in best.items()}


def limit_runs(url: str) -> Dict[str, Callable[[], int]]:
    """The limit: requests + orjson, reading the body two ways (stdlib json without orjson)."""
    import requests

    try:
        import orjson

        loads: Callable[[bytes], Any] = orjson.loads
    except ImportError:  # pragma: no cover
        import json

        loads = json.loads
    def new_session() -> requests.Session:
        session = requests.Session()
        session.headers.update({"x-api-key": "bench", "anthropic-version": "2026-10-21"})
        return session

    def results_url(session: requests.Session) -> str:
        got = session.get(f"{url}/v1/messages/batches/{BATCH_ID}", timeout=60)
        got.raise_for_status()
        return str(got.json()["results_url"])

    split_session, lines_session = new_session(), new_session()  # see best_rates

    def split_content() -> int:
        seen = 0
        rest = b""
        session = split_session
        with session.get(results_url(session), stream=True, timeout=600) as body:
            body.raise_for_status()
            for chunk in body.iter_content(chunk_size=1 << 16):
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    if line and loads(line)["custom_id"]:
                        seen += 1
        if rest.strip() and loads(rest)["custom_id"]:
            seen += 1
        return seen

    def iter_lines() -> int:
        seen = 0
        session = lines_session
        with session.get(results_url(session), stream=True, timeout=600) as body:
            body.raise_for_status()
            for line in body.iter_lines(chunk_size=1 << 16):
                if line and loads(line)["custom_id"]:
                    seen += 1
        return seen

    return {"iter_content + split": split_content, "iter_lines": iter_lines}


def _serve(ready: Any, records: int, text_bytes: int) -> None:  # in the server's process
    chunks: List[bytes] = list(generated_body(records, text_bytes)())
    with LoopbackResultsServer(lambda: chunks, records) as server:
        ready.put(server.url)
        threading.Event().wait()


@contextlib.contextmanager
def served(records: int, text_bytes: int) -> Iterator[str]:
    """The results body served on loopback by a process of its own (a server thread in
    the readers' process would take Python's lock from the reader being timed); its URL."""
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    server = context.Process(target=_serve, args=(ready, records, text_bytes), daemon=True)
    server.start()
    try:
        yield str(ready.get(timeout=120))
    finally:
        server.terminate()
        server.join()


def measure(records: int = 100_000, text_bytes: int = 400, repeat: int = 3
            ) -> Dict[str, Any]:
    """records/s of each reader (best of ``repeat``) and the ratios, as a dict."""
    size_mb = sum(map(len, generated_body(records, text_bytes)())) / 1e6
    with served(records, text_bytes) as url:
        def client() -> BatchClient:
            return BatchClient(api_key="bench", base_url=url, load_entry_points=False)

        typed_client, text_client, raw_client = client(), client(), client()

        def typed() -> int:
            return sum(1 for r in typed_client.results(BATCH_ID) if r.custom_id)

        def typed_text() -> int:  # every message built: the cost of reading each answer
            return sum(1 for r in text_client.results(BATCH_ID)
                       if r.result.message.text)  # type: ignore[union-attr]

        def raw() -> int:
            return sum(1 for r in raw_client.results(BATCH_ID, raw=True) if r["custom_id"])

        runs: Dict[str, Callable[[], int]] = {
            "claudebatch typed": typed, "claudebatch typed, text read": typed_text,
            "claudebatch raw": raw}
        limit_names = []
        for name, run in limit_runs(url).items():
            runs[name] = run
            limit_names.append(name)
        try:
            import anthropic
        except ImportError:
            anthropic = None  # type: ignore[assignment]
        if anthropic is not None:
            official = anthropic.Anthropic(api_key="bench", base_url=url, max_retries=0)

            def official_run() -> int:
                return sum(1 for r in official.messages.batches.results(BATCH_ID) if r.custom_id)

            runs[f"anthropic {anthropic.__version__}"] = official_run
        rates = best_rates(runs, records, repeat)
        limits = {name: rates.pop(name) for name in limit_names}

    from claudebatch._results import BACKEND

    limit = max(limits.values())
    baseline = next((v for k, v in rates.items() if k.startswith("anthropic")), None)
    return {"records": records, "size_mb": size_mb, "backend": BACKEND, "rates": rates,
            "limits": limits, "limit": limit,
            "typed_of_limit": rates["claudebatch typed"] / limit,
            "typed_text_of_limit": rates["claudebatch typed, text read"] / limit,
            "raw_of_limit": rates["claudebatch raw"] / limit,
            "typed_vs_official": rates["claudebatch typed"] / baseline if baseline else None,
            "raw_vs_official": rates["claudebatch raw"] / baseline if baseline else None}


def print_figures(figures: Dict[str, Any]) -> None:
    print(f"results body: {figures['records']:,} records, {figures['size_mb']:.1f} MB, "
          f"ijson backend {figures['backend']}")
    for name, rate in figures["rates"].items():
        print(f"{name:<24} {rate:>12,.0f} records/s")
    for name, rate in figures["limits"].items():
        print(f"{'limit: ' + name:<32} {rate:>12,.0f} records/s   (requests + orjson)")
    if figures["typed_vs_official"] is not None:
        print(f"typed / official: {figures['typed_vs_official']:.2f}x   "
              f"raw / official: {figures['raw_vs_official']:.2f}x")
    else:
        print("the official anthropic package is not installed: no ratio")
    print(f"typed, each message's text read / limit: {figures['typed_text_of_limit']:.0%}")
    print(f"typed / limit: {figures['typed_of_limit']:.0%} (goal >= 60%)   "
          f"raw / limit: {figures['raw_of_limit']:.0%} (goal >= 80%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--text-bytes", type=int, default=400,
                        help="length of each answer's text")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs for each client")
    args = parser.parse_args()
    print_figures(measure(args.records, args.text_bytes, args.repeat))


if __name__ == "__main__":
    main()
