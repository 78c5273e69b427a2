"""``claudebatch serve`` in a real headless browser: what a person watching the page sees.

Debian's chromium driven by playwright (both installed by ``.ci/run``); skipped, saying
which is missing, where either is not installed. The jobs run against the emulator on a
manual clock, so a job moves on exactly when the test says, while the page keeps
fetching ``/jobs.json`` on its own.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from claudebatch_cost import CostTracker
from claudebatch_sqlite import SQLiteStore

from claudebatch import BatchClient
from claudebatch.emulator import Emulator
from claudebatch.emulator.clock import ManualClock
from claudebatch.store._serve import address, make_server

from .helpers import dataset

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - CI installs it
    sync_playwright = None

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
WAIT_MS = 20_000  # the page refreshes every 0.2 s: a change shows well within this

pytestmark = [
    pytest.mark.skipif(sync_playwright is None,
                       reason="playwright is not installed (pip install -e '.[test]')"),
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"no chromium at {CHROMIUM} (apt-get install chromium)"),
]


@pytest.fixture
def browser_page() -> Iterator[Any]:
    assert sync_playwright is not None
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            browser.close()


def client(emu: Emulator, *plugins: Any) -> BatchClient:
    return BatchClient(api_key="emulator", base_url=emu.url, load_entry_points=False,
                       plugins=plugins)


def day_of(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def test_the_page_shows_the_jobs_and_follows_a_job_as_it_advances(
        tmp_path: Path, browser_page: Any) -> None:
    page = browser_page
    path = tmp_path / "jobs.db"
    with Emulator(rate=float("inf"), seed=2) as emu:
        finished = client(emu, SQLiteStore(path), CostTracker()).run(
            dataset(6), name="finished", output=str(tmp_path / "a.jsonl"),
            poll_interval=0.005, max_batch_requests=4)
    reader = SQLiteStore(path, warn=False)
    server = make_server(reader, refresh=0.2)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = address(server)
    clock = ManualClock(start=time.time())
    reports: List[Any] = []
    errors: List[BaseException] = []
    with Emulator(clock=clock, rate=2.0, seed=3) as emu:
        def advancing() -> None:
            try:
                reports.append(client(emu, SQLiteStore(path, warn=False), CostTracker()).run(
                    dataset(8, prefix="a"), name="advancing", poll_interval=0.02,
                    output=str(tmp_path / "b.jsonl"), max_batch_requests=4))
            except BaseException as exc:  # shown by the assertion below
                errors.append(exc)

        job = threading.Thread(target=advancing, daemon=True)
        try:
            page.goto(f"http://{host}:{port}/")
            page.evaluate("window.notReloaded = true")

            # A finished job: state, progress, results, batches, cost, each batch's deadline.
            done = page.locator('#job-table tr[data-job="finished"]')
            expect(done.locator('[data-col="state"]')).to_have_text("done")
            expect(done.locator('[data-col="progress"]')).to_have_text("6 / 6")
            expect(done.locator('[data-col="results"]')).to_have_text("succeeded 6")
            expect(done.locator('[data-col="missing"]')).to_have_text("0")
            expect(done.locator('[data-col="batches"]')).to_have_text("2")
            expect(done.locator('[data-col="cost"]')).to_have_text(
                finished.plugins["cost"]["batch"])
            for summary in reader.job("finished").batches:
                assert summary.batch_id is not None and summary.results_deleted_at is not None
                row = page.locator(f'section[data-job="finished"] '
                                   f'tr[data-batch="{summary.batch_id}"]')
                expect(row.locator('[data-col="status"]')).to_have_text("ended")
                expect(row.locator('[data-col="processed"]')).to_have_text("4 / 4" if
                                                                          summary.index == 0
                                                                          else "2 / 2")
                expect(row.locator('[data-col="deleted"]')).to_have_text(
                    day_of(summary.results_deleted_at) + " UTC")

            # A job that starts while the page is open appears, and moves on by itself.
            job.start()
            moving = page.locator('#job-table tr[data-job="advancing"]')
            expect(moving.locator('[data-col="state"]')).to_have_text("running")
            expect(moving.locator('[data-col="progress"]')).to_have_text("0 / 8")
            expect(moving.locator('[data-col="cost"]')).to_have_text("\u2014")
            clock.advance(1.0)  # 2 requests a second in each of the two batches
            expect(moving.locator('[data-col="progress"]')).to_have_text("4 / 8")
            expect(page.locator('section[data-job="advancing"] [data-col="processed"]')
                   ).to_have_text(["2 / 4", "2 / 4"])
            clock.advance(60.0)  # both batches end; the job collects them and finishes
            expect(moving.locator('[data-col="state"]')).to_have_text("done")
            expect(moving.locator('[data-col="progress"]')).to_have_text("8 / 8")
            expect(moving.locator('[data-col="results"]')).to_have_text("succeeded 8")
            job.join(timeout=30)
            assert errors == [] and len(reports) == 1
            expect(moving.locator('[data-col="cost"]')).to_have_text(
                reports[0].plugins["cost"]["batch"])
            assert page.evaluate("window.notReloaded") is True  # redrawn, never reloaded
        finally:
            clock.advance(3600.0)  # a failed check leaves no job polling
            if job.is_alive():
                job.join(timeout=30)
            server.shutdown()
            server.server_close()
            reader.close()
