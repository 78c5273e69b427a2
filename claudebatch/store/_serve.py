"""``claudebatch serve``: a read-only page of a store's jobs, on this machine only by default.

One self-contained HTML page (no build step, no assets from anywhere else) that fetches
``/jobs.json`` every few seconds and draws every job: its state, requests and results by
type, cost when known, and each batch with the day the service deletes its results. Only
GET is answered; the store is opened read-only in spirit (nothing is written).
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Tuple

from ._jobstore import JobStore

REFRESH_SECONDS = 5


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
    return {"store": store.location, "jobs": jobs}


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>claudebatch jobs</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: .3em .8em; text-align: left; }
.state-done { color: #1a7f37; } .state-running { color: #0969da; }
.state-interrupted { color: #bf8700; } .soon { color: #cf222e; font-weight: bold; }
small { color: #666; }
</style></head>
<body>
<h1>claudebatch jobs <small id="store"></small></h1>
<p><small id="updated">loading...</small></p>
<div id="jobs"></div>
<script>
"use strict";
const DAY = 86400;
function text(value) { return value === null || value === undefined ? "" : String(value); }
function cell(row, value, cls) {
  const td = document.createElement("td");
  td.textContent = text(value);
  if (cls) td.className = cls;
  row.appendChild(td);
}
function when(seconds) {
  return seconds ? new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 16) : "";
}
function counts(map) {
  return Object.entries(map || {}).map(([k, v]) => k + " " + v).join(", ");
}
function draw(doc) {
  document.getElementById("store").textContent = doc.store;
  const root = document.getElementById("jobs");
  root.replaceChildren();
  const jobs = document.createElement("table");
  jobs.id = "job-table";
  const head = jobs.insertRow();
  for (const name of ["job", "state", "requests", "results", "missing", "batches", "cost",
                      "updated"]) {
    const th = document.createElement("th"); th.textContent = name; head.appendChild(th);
  }
  for (const job of doc.jobs) {
    const row = jobs.insertRow();
    row.dataset.job = job.name;
    cell(row, job.name);
    cell(row, job.state, "state-" + job.state);
    cell(row, job.total_requests);
    cell(row, counts(job.counts));
    cell(row, job.missing);
    cell(row, job.batches.length);
    cell(row, job.cost);
    cell(row, when(job.updated_at));
  }
  root.appendChild(jobs);
  const now = Date.now() / 1000;
  for (const job of doc.jobs) {
    if (!job.batches.length) continue;
    const title = document.createElement("h2");
    title.style.fontSize = "1em";
    title.textContent = "job " + job.name + ": batches";
    root.appendChild(title);
    const table = document.createElement("table");
    const top = table.insertRow();
    for (const name of ["pass", "#", "batch", "status", "requests", "results",
                        "results deleted"]) {
      const th = document.createElement("th"); th.textContent = name; top.appendChild(th);
    }
    for (const b of job.batches) {
      const row = table.insertRow();
      cell(row, b.pass_number); cell(row, b.index); cell(row, b.batch_id || "(not confirmed)");
      cell(row, b.status); cell(row, b.request_count); cell(row, counts(b.counts));
      const left = b.results_deleted_at ? b.results_deleted_at - now : null;
      cell(row, when(b.results_deleted_at),
           left !== null && left < 3 * DAY && !b.results_done ? "soon" : "");
    }
    root.appendChild(table);
  }
  document.getElementById("updated").textContent =
    "updated " + new Date().toISOString().slice(11, 19) + " UTC; refreshes every "
    + REFRESH + " s";
}
const REFRESH = @REFRESH@;
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
""".replace("@REFRESH@", str(REFRESH_SECONDS))


def make_server(store: JobStore, host: str = "127.0.0.1", port: int = 0
                ) -> ThreadingHTTPServer:
    """A server of the page and ``/jobs.json`` (``port`` 0: any free port)."""
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
                self._send(200, PAGE.encode("utf-8"), "text/html; charset=utf-8")
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
