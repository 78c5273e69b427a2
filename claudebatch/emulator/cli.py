"""``claudebatch emulator``: run the emulator in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any, List, Optional, Tuple

from ..limits import MAX_BATCH_BYTES
from .emulator import Emulator
from .faults import ENDPOINTS, Faults


def _answer_tokens(text: str) -> Tuple[int, int]:
    low, sep, high = text.replace(":", "-").partition("-")
    try:
        pair = (int(low), int(high if sep else low))
    except ValueError:
        raise argparse.ArgumentTypeError("expected LOW-HIGH, e.g. 16-400") from None
    if pair[0] < 1 or pair[1] < pair[0]:
        raise argparse.ArgumentTypeError("expected 1 <= LOW <= HIGH")
    return pair


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("expected a number between 0 and 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="claudebatch emulator",
        description="Run a local Message Batches API server in the foreground until Ctrl-C.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--api-key", help="require this x-api-key (default: accept any)")
    p.add_argument("--seed", type=int, help="seed for ids, answers, order and faults")
    p.add_argument("--rate", type=float, default=500.0,
                   help="requests finished per second per batch (default 500; 'inf': at once)")
    p.add_argument("--expiry", type=float, default=24 * 3600.0,
                   help="seconds until a batch expires (default 86400)")
    p.add_argument("--retention", type=float, default=29 * 24 * 3600.0,
                   help="seconds after creation until results are archived (default 29 days)")
    p.add_argument("--cancel-delay", type=float, default=1.0,
                   help="seconds a batch stays 'canceling' (default 1)")
    p.add_argument("--counts", choices=("progressive", "at-end"), default="progressive",
                   help="request_counts move as requests finish (default) or only at the end")
    p.add_argument("--cache-hit-rate", type=_share, default=1.0,
                   help="chance an available cache entry is used (default 1)")
    p.add_argument("--cache-latency", type=float, default=0.0, metavar="S",
                   help="seconds each request is in flight: it reads only what was cached "
                        "before it began, as requests processed together do (default 0)")
    p.add_argument("--cache-min-tokens", type=int,
                   help="minimum cacheable prefix for every model (default: per model)")
    p.add_argument("--answer-tokens", type=_answer_tokens, default=(16, 400),
                   metavar="LOW-HIGH", help="range of answer lengths in tokens (default 16-400)")
    p.add_argument("--pause-rate", type=_share, default=0.0,
                   help="share of requests with a server tool whose first turn stops with "
                        "pause_turn (continued when sent again with the paused content)")
    p.add_argument("--refusal-rate", type=_share, default=0.0,
                   help="share of requests answered with stop_reason refusal")
    p.add_argument("--model", action="append", dest="models", metavar="ID",
                   help="accept only these model ids (repeatable; default: any claude-*)")
    p.add_argument("--max-body-bytes", type=int, default=MAX_BATCH_BYTES,
                   help="largest create body accepted (default 256 MiB)")
    p.add_argument("--queue-limit", type=int, metavar="N",
                   help="batch requests the processing queue may hold (not yet processed, in "
                        "batches not ended); a create that would go over is refused with 429 "
                        "rate_limit_error and a retry-after, as the service does (default: "
                        "no limit)")
    p.add_argument("--quiet", action="store_true", help="do not log each request")
    f = p.add_argument_group("faults (seeded; rates are shares of requests, 0-1)")
    f.add_argument("--fault-rate-limit", type=_share, default=0.0, help="429 rate_limit_error")
    f.add_argument("--fault-retry-after", type=float, default=1.0,
                   help="seconds in the 429's retry-after (default 1)")
    f.add_argument("--fault-server-error", type=_share, default=0.0, help="500 api_error")
    f.add_argument("--fault-overloaded", type=_share, default=0.0, help="529 overloaded_error")
    f.add_argument("--fault-slow", type=_share, default=0.0, help="answer after a delay")
    f.add_argument("--fault-slow-seconds", type=float, default=1.0, help="the delay (default 1)")
    f.add_argument("--fault-drop-results", type=_share, default=0.0,
                   help="cut the results stream part-way")
    f.add_argument("--fault-drop-after", type=_share, default=0.5,
                   help="share of results sent before the cut (default 0.5)")
    f.add_argument("--fault-drop-create", type=_share, default=0.0,
                   help="make the batch, then close the connection without answering")
    for name, what in (("invalid-json", "text that is not JSON"),
                       ("schema-violation", "JSON that breaks the schema"),
                       ("truncated", "cut at max_tokens"), ("refused", "stop_reason refusal")):
        f.add_argument(f"--fault-{name}", type=_share, default=0.0,
                       help=f"share of answers to requests asking for JSON "
                            f"(output_config.format) that come back {what}")
    f.add_argument("--fault-errored", type=_share, default=0.0,
                   help="share of requests that come back errored (api_error/overloaded_error)")
    f.add_argument("--fault-endpoints", metavar="NAMES",
                   help=f"comma-separated endpoints the HTTP faults hit (default all: "
                        f"{','.join(sorted(ENDPOINTS))})")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    endpoints = None
    if args.fault_endpoints:
        endpoints = frozenset(e.strip() for e in args.fault_endpoints.split(",") if e.strip())
    try:
        faults = Faults(
            rate_limit=args.fault_rate_limit, retry_after=args.fault_retry_after,
            server_error=args.fault_server_error, overloaded=args.fault_overloaded,
            slow=args.fault_slow, slow_seconds=args.fault_slow_seconds,
            drop_results=args.fault_drop_results, drop_after=args.fault_drop_after,
            drop_create=args.fault_drop_create, errored=args.fault_errored,
            invalid_json=args.fault_invalid_json, schema_violation=args.fault_schema_violation,
            truncated=args.fault_truncated, refused=args.fault_refused,
            endpoints=endpoints,
        )
        emulator = Emulator(
            args.host, args.port, api_key=args.api_key, seed=args.seed, rate=args.rate,
            expiry=args.expiry, retention=args.retention, cancel_delay=args.cancel_delay,
            counts=args.counts.replace("-", "_"), cache_hit_rate=args.cache_hit_rate,
            cache_latency=args.cache_latency,
            cache_min_tokens=args.cache_min_tokens, answer_tokens=args.answer_tokens,
            pause_rate=args.pause_rate, refusal_rate=args.refusal_rate,
            models=args.models, faults=faults, max_body_bytes=args.max_body_bytes,
            queue_limit=args.queue_limit,
            log=None if args.quiet else _log,
        )
    except ValueError as exc:
        print(f"claudebatch emulator: {exc}", file=sys.stderr)
        return 2
    try:
        emulator.start()
    except OSError as exc:
        print(f"claudebatch emulator: cannot listen on {args.host}:{args.port}: {exc}",
              file=sys.stderr)
        emulator.stop()
        return 1
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    # Before the URL is printed: whoever reads it may send SIGTERM at once.
    previous = signal.signal(signal.SIGTERM, _on_signal)
    try:  # Ctrl-C may come as soon as the URL is out
        print(f"Message Batches API emulator listening on {emulator.url} "
              f"(seed {emulator.seed})")
        print(f"  export ANTHROPIC_BASE_URL={emulator.url}")
        print(f"  export ANTHROPIC_API_KEY={args.api_key or 'any-value'}")
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        emulator.stop()
    print("emulator stopped", flush=True)
    return 0


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
