"""``claudebatch serve``: a read-only page of a store's jobs, on this machine only by default.

One self-contained HTML page (no build step, no assets from anywhere else) that fetches
``/jobs.json`` every few seconds and draws every job: its state, progress, results by
type, batches, cost when known, and each batch with what the service has processed and the
day it deletes its results. Only
GET is answered; the store is opened read-only in spirit (nothing is written).
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Tuple

from ._jobstore import JobStore

#: How often the page fetches ``/jobs.json`` again, by default (``--refresh``).
REFRESH_SECONDS = 5.0


def jobs_document(store: JobStore) -> Dict[str, Any]:
    """Every job with its batches (and each batch's results deletion time), as JSON."""
    jobs: List[Dict[str, Any]] = []
    for summary in store.jobs():
        job = store.job(summary.name)
        item = asdict(job)
        for batch, info in zip(item["batches"], job.batches):
            batch["results_deleted_at"] = info.results_deleted_at
        item["results_stored"] = job.results_stored
        jobs.append(item)
    return {"store": store.location, "jobs": jobs, "workers": store.workers()}


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>claudebatch jobs</title>
<style>
:root { --fg: #1f2328; --muted: #656d76; --line: #d8dee4; --bg: #f6f8fa; --card: #fff;
        --accent: #0969da; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --muted: #8d96a0; --line: #30363d; --bg: #0d1117; --card: #161b22;
          --accent: #4493f8; --ok: #3fb950; --warn: #d29922; --bad: #f85149; }
}
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .2em 1.2em;
         padding: .9em 1.5em; background: var(--card); border-bottom: 1px solid var(--line); }
h1 { font-size: 1.2em; margin: 0; }
main { padding: 1.2em 1.5em 2em; }
.muted { color: var(--muted); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
        margin-bottom: 1.2em; overflow-x: auto; }
.card h2 { font-size: 1em; margin: 0; padding: .65em 1em; border-bottom: 1px solid var(--line); }
table { border-collapse: collapse; width: 100%; }
th, td { padding: .45em 1em; text-align: left; border-bottom: 1px solid var(--line);
         white-space: nowrap; }
tr:last-child td { border-bottom: none; }
th { font-weight: 600; font-size: .8em; color: var(--muted); letter-spacing: .04em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 0 .6em; border: 1px solid currentColor;
         border-radius: 1em; font-size: .85em; font-weight: 600; }
.state-done { color: var(--ok); } .state-running { color: var(--accent); }
.state-interrupted { color: var(--warn); }
.bar { display: inline-block; width: 8em; height: .55em; margin-right: .6em;
       vertical-align: middle; background: var(--line); border-radius: .3em; overflow: hidden; }
.bar > span { display: block; height: 100%; background: var(--accent); }
.bar.full > span { background: var(--ok); }
.soon { color: var(--bad); font-weight: 600; }
.empty { padding: 2em; text-align: center; }
</style></head>
<body>
<header><h1>claudebatch jobs</h1><span class="muted" id="store"></span>
<span class="muted" id="updated">loading...</span></header>
<main id="jobs"></main>
<script>
"use strict";
const DAY = 86400;
const REFRESH = @REFRESH@;
function text(value) { return value === null || value === undefined ? "" : String(value); }
function el(tag, cls, content) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (content !== undefined) node.textContent = text(content);
  return node;
}
function cell(row, col, value, cls) {
  const td = el("td", cls, value);
  td.dataset.col = col;
  row.appendChild(td);
  return td;
}
function heads(table, names) {
  const row = table.createTHead().insertRow();
  for (const name of names) row.appendChild(el("th", "", name));
}
function when(seconds) {
  return seconds ? new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 16)
    + " UTC" : "";
}
function number(n) { return Number(n || 0).toLocaleString("en-US"); }
function counts(map) {
  return Object.entries(map || {}).filter(([, v]) => v).map(([k, v]) => k + " " + number(v))
    .join(", ");
}
function bar(td, done, total) {
  const share = total ? Math.min(1, done / total) : 0;
  const outer = el("span", share >= 1 ? "bar full" : "bar");
  const inner = el("span");
  inner.style.width = (share * 100).toFixed(1) + "%";
  outer.appendChild(inner);
  td.appendChild(outer);
  td.appendChild(el("span", "", number(done) + " / " + number(total)));
}
// Requests answered: results stored, and what the service finished in first-pass batches
// whose results are not all stored yet (later passes resend requests counted already).
function answered(job) {
  let done = job.total_requests - job.missing;
  for (const b of job.batches) {
    if (b.pass_number !== 1 || b.results_done) continue;
    const processing = (b.counts || {}).processing;
    const finished = processing === undefined ? 0 : b.request_count - processing;
    done += Math.max(0, finished - b.results_stored);
  }
  return Math.min(done, job.total_requests);
}
function deadline(td, b, now) {
  if (!b.results_deleted_at) return;
  const left = b.results_deleted_at - now;
  td.textContent = when(b.results_deleted_at);
  if (b.results_done) {
    td.title = "the store has every result of this batch";
    td.classList.add("muted");
  } else {
    const soon = left < 3 * DAY;
    td.textContent += left <= 0 ? " (deleted)" : " (in " + (soon ? Math.ceil(left / 3600)
      + " h" : Math.floor(left / DAY) + " d") + ")";
    if (soon) td.classList.add("soon");
  }
}
function draw(doc) {
  document.getElementById("store").textContent = doc.store;
  const root = document.getElementById("jobs");
  root.replaceChildren();
  const jobs = [...doc.jobs].sort((a, b) => b.updated_at - a.updated_at);
  const card = el("section", "card");
  card.appendChild(el("h2", "", jobs.length + (jobs.length === 1 ? " job" : " jobs")));
  if (!jobs.length) card.appendChild(el("p", "empty muted", "no jobs in this store yet"));
  const table = el("table");
  table.id = "job-table";
  heads(table, ["job", "state", "progress", "results", "missing", "batches", "cost",
                "updated"]);
  const body = table.createTBody();
  for (const job of jobs) {
    const row = body.insertRow();
    row.dataset.job = job.name;
    cell(row, "job", job.name);
    cell(row, "state").appendChild(el("span", "badge state-" + job.state, job.state));
    bar(cell(row, "progress"), answered(job), job.total_requests);
    cell(row, "results", counts(job.counts) || "none yet");
    cell(row, "missing", number(job.missing), "num");
    cell(row, "batches", number(job.batches.filter((b) => b.batch_id).length), "num");
    cell(row, "cost", job.cost || "\u2014", "num");
    cell(row, "updated", when(job.updated_at), "muted");
  }
  if (jobs.length) card.appendChild(table);
  root.appendChild(card);
  const now = Date.now() / 1000;
  const workers = (doc.workers || []).filter((w) => w.state === "working");
  if (workers.length) {
    const section = el("section", "card");
    section.id = "workers";
    section.appendChild(el("h2", "", workers.length + " worker(s) "));
    const table = el("table");
    heads(table, ["worker", "job", "heartbeat", "batches done", "leases"]);
    const rows = table.createTBody();
    for (const w of workers) {
      const row = rows.insertRow();
      row.dataset.worker = w.id;
      cell(row, "worker", w.id + " (" + w.host + ", pid " + w.pid + ")");
      cell(row, "job", w.job || "every job");
      cell(row, "heartbeat", Math.max(0, Math.round(now - w.heartbeat_at)) + " s ago",
           "muted");
      cell(row, "done", number(w.batches_done), "num");
      cell(row, "leases", w.leases.join(", ") || "none");
    }
    section.appendChild(table);
    root.appendChild(section);
  }
  for (const job of jobs) {
    if (!job.batches.length) continue;
    const section = el("section", "card");
    section.dataset.job = job.name;
    const title = el("h2", "", "job " + job.name + ": batches ");
    title.appendChild(el("span", "muted", "results deleted by the service 29 days after "
                         + "creation"));
    section.appendChild(title);
    const batches = el("table");
    heads(batches, ["pass", "#", "batch", "status", "processed", "results",
                    "results deleted"]);
    const rows = batches.createTBody();
    for (const b of job.batches) {
      const row = rows.insertRow();
      row.dataset.batch = b.batch_id || "";
      const c = b.counts || {};
      cell(row, "pass", b.pass_number, "num");
      cell(row, "index", b.index, "num");
      cell(row, "batch", b.batch_id || (b.status === "queued" ? "(queued for a worker)"
                                                           : "(not confirmed)"));
      cell(row, "status", b.status || "");
      bar(cell(row, "processed"), c.processing === undefined ? 0
        : b.request_count - c.processing, b.request_count);
      const rest = Object.assign({}, c);
      delete rest.processing;
      cell(row, "results", counts(rest));
      deadline(cell(row, "deleted"), b, now);
    }
    section.appendChild(batches);
    root.appendChild(section);
  }
  document.getElementById("updated").textContent =
    "updated " + new Date().toISOString().slice(11, 19) + " UTC, refreshes every "
    + REFRESH + " s";
}
async function load() {
  try {
    const answer = await fetch("jobs.json", {cache: "no-store"});
    draw(await answer.json());
  } catch (error) {
    document.getElementById("updated").textContent = "cannot reach the server: " + error;
  }
}
load();
setInterval(load, REFRESH * 1000);
</script>
</body></html>
"""


def page(refresh: float = REFRESH_SECONDS) -> str:
    """The page, refreshing itself every ``refresh`` seconds."""
    return PAGE.replace("@REFRESH@", f"{refresh:g}")


def make_server(store: JobStore, host: str = "127.0.0.1", port: int = 0, *,
                refresh: float = REFRESH_SECONDS) -> ThreadingHTTPServer:
    """A server of the page and ``/jobs.json`` (``port`` 0: any free port); the page
    fetches ``/jobs.json`` again every ``refresh`` seconds."""
    body = page(refresh).encode("utf-8")
    lock = threading.Lock()  # one connection to the store, one reader at a time
    own_port = [port]  # the port bound, once the server is made

    class Handler(BaseHTTPRequestHandler):
        server_version = "claudebatch-serve"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the terminal shows where to look, not every request

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Security-Policy",
                             "default-src 'none'; script-src 'unsafe-inline'; "
                             "style-src 'unsafe-inline'; connect-src 'self'")
            self.end_headers()
            self.wfile.write(body)

        def _host_ok(self) -> bool:
            """The Host the browser asked for is this server's own name: a page elsewhere
            that rebinds its DNS name to 127.0.0.1 cannot read the jobs."""
            if host not in ("127.0.0.1", "localhost", "::1"):
                return True  # served beyond this machine on purpose (--host)
            port = own_port[0]
            return self.headers.get("Host", "") in {
                f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}

        def do_GET(self) -> None:
            if not self._host_ok():
                self._send(403, b"this page answers only to its own address\n", "text/plain")
                return
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                self._send(200, body, "text/html; charset=utf-8")
            elif path == "/jobs.json":
                with lock:
                    document = jobs_document(store)
                self._send(200, json.dumps(document, default=str).encode("utf-8"),
                           "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _refuse(self) -> None:
            self._send(405, b"read-only\n", "text/plain")

        do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    server = ThreadingHTTPServer((host, port), Handler)
    own_port[0] = address(server)[1]
    return server


def address(server: ThreadingHTTPServer) -> Tuple[str, int]:
    host, port = server.server_address[:2]
    return str(host), int(port)
