"""The child process of the crash tests: runs one job with the store and may kill itself.

The test process runs the emulator (so it outlives the child) and starts this
in a fresh process. A ``kill`` spec names a hook and the call to die at:
``os.kill(os.getpid(), SIGKILL)``, no cleanup, no flush, no ``finally``. Where
the kill falls relative to the store's own implementation of the same hook is
set by which killer implements it: ``KillBefore`` (``tryfirst`` / plain, called
before the store's ``trylast`` recording) or ``KillAfter`` (``trylast``,
registered after the store: pluggy calls the ``trylast`` implementations
oldest-registered first, so it runs after the store's).
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any, Dict, Iterator, List, Optional

from claudebatch_sqlite import SQLiteStore

from claudebatch import BatchClient, Request, Rows, hookimpl


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def requests(count: int, kill_at_item: Optional[int] = None,
             contents: Optional[Dict[int, str]] = None) -> Iterator[Dict[str, Any]]:
    """The job's input, as a generator (read once, like a real stream); ``contents``
    replaces the question of some rows (a changed dataset, duplicated rows)."""
    for i in range(count):
        if kill_at_item is not None and i + 1 == kill_at_item:
            die()  # while the job validates its input
        text = (contents or {}).get(i, f"question number {i}")
        yield {"custom_id": f"q-{i:03d}",
               "params": {"model": "claude-haiku-4-5", "max_tokens": 300,
                          "messages": [{"role": "user", "content": text}]}}


class Killer:
    """Dies at the ``n``-th call of ``hook`` (in pass ``pass_number``, or over the whole run)."""

    def __init__(self, hook: Optional[str], n: int, pass_number: Optional[int] = None) -> None:
        self.hook = hook
        self.n = n
        self.pass_number = pass_number
        self.calls: Dict[str, int] = {}

    def hit(self, hook: str, context: Any) -> bool:
        """Count the call; die if it is the chosen one (True: it is, and it is not fatal yet)."""
        if self.pass_number is not None and getattr(context, "pass_number", 0) != \
                self.pass_number:
            return False
        self.calls[hook] = self.calls.get(hook, 0) + 1
        chosen = self.calls[hook] == self.n
        if hook == self.hook and chosen:
            die()
        return chosen and self.hook == "transform" and hook == "before_submit"


class KillBefore(Killer):
    @hookimpl(tryfirst=True)
    def resume_state(self, context: Any) -> None:
        self.hit("resume_state", context)

    @hookimpl(tryfirst=True)
    def before_submit(self, requests: Any, context: Any) -> None:
        if self.hit("before_submit", context):
            # die while the body is written (a transform added here makes the create
            # write it again, with the intent already recorded)
            size, seen = len(requests), [0]

            def kill_while_writing(request: Request) -> Request:
                seen[0] += 1
                if seen[0] == max(1, size // 2):
                    die()
                return request

            requests.transform(kill_while_writing)

    @hookimpl
    def after_submit(self, context: Any) -> None:
        self.hit("after_submit", context)

    @hookimpl
    def on_poll(self, context: Any) -> None:
        self.hit("on_poll", context)

    @hookimpl(tryfirst=True)
    def on_result(self, context: Any) -> None:
        self.hit("on_result", context)

    @hookimpl
    def on_batch_end(self, context: Any) -> None:
        self.hit("on_batch_end", context)

    @hookimpl(tryfirst=True)
    def resubmit_requests(self, context: Any) -> None:
        self.hit("resubmit_requests", context)

    @hookimpl(tryfirst=True)
    def on_job_end(self, context: Any) -> None:
        self.hit("on_job_end", context)

    @hookimpl
    def table_values(self, context: Any) -> None:
        self.hit("table_values", context)


class KillAfter(Killer):
    @hookimpl(trylast=True)
    def before_submit(self, context: Any) -> None:
        self.hit("before_submit", context)

    @hookimpl(trylast=True)
    def after_submit(self, context: Any) -> None:
        self.hit("after_submit", context)

    @hookimpl(trylast=True)
    def on_poll(self, context: Any) -> None:
        self.hit("on_poll", context)

    @hookimpl(trylast=True)
    def on_result(self, context: Any) -> None:
        self.hit("on_result", context)

    @hookimpl(trylast=True)
    def on_batch_end(self, context: Any) -> None:
        self.hit("on_batch_end", context)

    @hookimpl(trylast=True)
    def on_job_end(self, context: Any) -> None:
        self.hit("on_job_end", context)


class ResubmitEven:
    """Pass 2 resends every even request; may die while deciding (``kill_deciding``)."""

    def __init__(self, kill_deciding: bool = False) -> None:
        self.kill_deciding = kill_deciding

    @hookimpl
    def resubmit_requests(self, pass_number: int, context: Any) -> Optional[List[Request]]:
        if pass_number != 1:
            return None
        if self.kill_deciding:
            die()
        ids = [f"q-{i:03d}" for i in range(0, context.total_requests, 2)]
        return list(context.find_requests(ids))


def run_child(config: Dict[str, Any]) -> None:
    """Run the job of ``config``; write its report to ``config['report']``."""
    kill = config.get("kill") or {}
    where, hook, n = kill.get("where"), kill.get("hook"), int(kill.get("n", 0))
    in_pass = kill.get("pass")
    before = KillBefore(hook if where == "before" else None, n, in_pass)
    after = KillAfter(hook if where == "after" else None, n, in_pass)
    # a resume right after a kill: the killed create is looked for only briefly here
    store = SQLiteStore(config["store"], commit_every=config.get("commit_every", 3),
                        unconfirmed_grace=config.get("unconfirmed_grace", 1.0))
    plugins: List[Any] = [store, after, before]
    if config.get("resubmit", True):
        plugins.append(ResubmitEven(kill_deciding=where == "deciding"))
    client = BatchClient(api_key="emulator", base_url=config["url"], plugins=plugins,
                         load_entry_points=False, max_retries=2)
    contents = {int(k): v for k, v in (config.get("contents") or {}).items()}
    source: Any = requests(config["requests"], kill.get("n") if where == "source" else None,
                           contents)
    if config.get("rows"):  # a table of rows and a template instead: the same requests
        source = Rows(config["rows"], template="{{ question }}", model="claude-haiku-4-5",
                      max_tokens=300, id_column="id")
    report = client.run(source, name=config["name"], output=config["output"],
                        poll_interval=0.005, max_batch_requests=config["max_batch"])
    with open(config["report"], "w") as out:
        json.dump({"complete": report.complete, "counts": report.counts,
                   "missing": report.missing, "passes": report.passes,
                   "batch_ids": report.batch_ids, "reused": report.reused,
                   "duplicates": report.duplicates}, out)
