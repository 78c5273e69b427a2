"""Make ``docs/images/status-page.png``: the ``claudebatch serve`` page in headless Chromium.

A store gets four jobs against local emulators: one done (with its cost), one enqueued with
two workers holding leases on its batches, one running
and part way through (its poll loop still going), and one interrupted right after its
batch was created 27 days ago, so the page warns that the batch's results are about to
be deleted. The page is served as ``claudebatch serve`` serves it and photographed.

Needs the test extras (playwright), claudebatch-sqlite, claudebatch-cost and Debian's
``chromium``::

    .venv/bin/python docs/images/make_status_page.py [OUT.png]
"""

from __future__ import annotations

import multiprocessing
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

from claudebatch_cost import CostTracker
from claudebatch_sqlite import SQLiteStore

from claudebatch import BatchClient, hookimpl
from claudebatch.emulator import Emulator
from claudebatch.emulator.clock import ManualClock
from claudebatch.store._leases import Leases
from claudebatch.store._serve import address, jobs_document, make_server
from claudebatch.store._worker import enqueue

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
OUT = Path(__file__).resolve().parent / "status-page.png"


def tickets(count: int) -> List[Dict[str, Any]]:
    return [{"custom_id": f"ticket-{i:04d}", "params": {
        "model": "claude-haiku-4-5", "max_tokens": 200,
        "messages": [{"role": "user", "content": f"Classify support ticket {i}."}]}}
        for i in range(count)]


class Stop(Exception):
    pass


class StopAfterSubmit:
    @hookimpl(trylast=True)
    def after_submit(self) -> None:
        raise Stop


def client(emu: Emulator, *plugins: Any) -> BatchClient:
    return BatchClient(api_key="emulator", base_url=emu.url, load_entry_points=False,
                       plugins=plugins)


def interrupted(work: Path) -> None:
    """A job stopped 27 days ago right after its batch was made: its results go in 2 days."""
    old = ManualClock(start=time.time() - 27 * 86400)
    with Emulator(clock=old, rate=10.0) as emu:
        try:
            client(emu, SQLiteStore(work / "jobs.db"), StopAfterSubmit()).run(
                tickets(120), name="backfill-2026-11", output=str(work / "backfill.jsonl"))
        except Stop:
            pass


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="status-page-"))
    db = work / "jobs.db"
    # In a process of its own, which then ends: the job is interrupted, not running.
    child = multiprocessing.get_context("spawn").Process(target=interrupted, args=(work,))
    child.start()
    child.join()
    with Emulator(rate=float("inf"), seed=7) as emu:  # done, with its cost
        client(emu, SQLiteStore(db, warn=False), CostTracker()).run(
            tickets(1000), name="nightly-tickets", output=str(work / "nightly.jsonl"),
            poll_interval=0.01, max_batch_requests=400)
    with Emulator(rate=float("inf"), seed=9) as emu:  # enqueued, two workers on it
        store = SQLiteStore(db, warn=False)
        enqueue(store, client(emu), tickets(600), name="corpus-sweep", max_batch_requests=200)
        leases, moment = Leases(store.db), time.time()
        for worker, host, pid in (("build-01-4121-a3f2c1", "build-01", 4121),
                                  ("build-02-877-91bc0e", "build-02", 877)):
            leases.register_worker(worker, host, pid, None, moment)
            leases.claim_create(worker, moment, 3600.0, None, None)
        store.close()
    now = ManualClock(start=time.time())
    with Emulator(clock=now, rate=50.0, seed=3) as emu:  # running: moves as `now` does
        running = threading.Thread(target=client(emu, SQLiteStore(db, warn=False),
                                                 CostTracker()).run,
                                   args=(tickets(400),), daemon=True, kwargs={
                                       "name": "eval-sonnet", "poll_interval": 0.05,
                                       "output": str(work / "eval.jsonl"),
                                       "max_batch_requests": 150})
        running.start()
        reader = SQLiteStore(db, warn=False)
        wait_for(lambda: len(batches(reader, "eval-sonnet")) == 3)
        now.advance(2.4)  # the small batch ends and is collected; the others are at 120
        wait_for(lambda: any(b["results_done"] for b in batches(reader, "eval-sonnet"))
                 and all(b["counts"].get("processing") == 30 for b in
                         batches(reader, "eval-sonnet") if not b["results_done"]))
        server = make_server(reader)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        host, port = address(server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 400},
                                    device_scale_factor=1)
            page.goto(f"http://{host}:{port}/")
            page.wait_for_selector('tr[data-job="eval-sonnet"]')
            page.screenshot(path=str(out), full_page=True)
            browser.close()
        server.shutdown()
        server.server_close()
        now.advance(3600)  # let the running job finish
        running.join(timeout=60)
        reader.close()
    print(f"wrote {out}")


def batches(store: SQLiteStore, name: str) -> List[Dict[str, Any]]:
    for job in jobs_document(store)["jobs"]:
        if job["name"] == name:
            return list(job["batches"])
    return []


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("the running job did not get where the picture needs it")
        time.sleep(0.05)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
