"""Shared pieces of the store's tests: a dataset, interruptions, output readers."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any, Dict, List, Optional

from claudebatch import Request, hookimpl

_CONTEXT: Any = None


def fork_context() -> Any:
    """A forkserver that has imported everything: each child is a fresh process, fast."""
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(["claudebatch", "claudebatch.emulator",
                                         "claudebatch_sqlite", "tests.plugins.sqlite.crash_child"])
    return _CONTEXT


class Interrupted(Exception):
    """Raised by :class:`StopAt` to end a job in the middle, as a crash would (in-process)."""


def dataset(count: int = 24, prefix: str = "r") -> List[Dict[str, Any]]:
    return [{"custom_id": f"{prefix}-{i:03d}",
             "params": {"model": "claude-haiku-4-5", "max_tokens": 64,
                        "messages": [{"role": "user", "content": f"question {i}"}]}}
            for i in range(count)]


def write_jsonl(path: Path, rows: List[Dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def output_lines(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


class StopAt:
    """Raises :class:`Interrupted` at the ``n``-th call of ``hook`` (after the store's)."""

    def __init__(self, hook: str, n: int) -> None:
        self.hook = hook
        self.n = n
        self.calls = 0

    def _hit(self, hook: str) -> None:
        if hook == self.hook:
            self.calls += 1
            if self.calls == self.n:
                raise Interrupted(f"stopped at {hook} #{self.n}")

    @hookimpl(trylast=True)
    def on_result(self) -> None:
        self._hit("on_result")

    @hookimpl(trylast=True)
    def on_batch_end(self) -> None:
        self._hit("on_batch_end")

    @hookimpl(trylast=True)
    def after_submit(self) -> None:
        self._hit("after_submit")


class ResubmitSome:
    """Pass 2 resends the given custom_ids."""

    def __init__(self, ids: List[str]) -> None:
        self.ids = ids
        self.asked = 0

    @hookimpl
    def resubmit_requests(self, pass_number: int, context: Any) -> Optional[List[Request]]:
        self.asked += 1
        if pass_number != 1:
            return None
        return list(context.find_requests(self.ids))


class CountResults:
    """What another plugin sees through ``on_result``."""

    def __init__(self) -> None:
        self.seen: List[tuple[int, str]] = []

    @hookimpl
    def on_result(self, result: Any, context: Any) -> None:
        self.seen.append((int(getattr(context, "pass_number", 0)), result.custom_id))


class FakeCost:
    """Stands in for the cost plugin's summary section."""

    @hookimpl
    def job_summary(self) -> Dict[str, Any]:
        return {"cost": {"batch": "$0.0123", "standard API": "$0.0246"}}
