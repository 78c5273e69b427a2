"""The HTTP layer: routing, auth and version checks, bodies, faults, streaming.

``ThreadingHTTPServer`` with HTTP/1.1 keep-alive: one thread per connection, so a long
results download does not hold up polling. Request bodies are spooled to disk as they
arrive (``Content-Length`` or chunked); a body over the size limit is answered 413
without being kept (a declared length is refused before a byte is read). Results go out
chunked, so a connection cut part-way is visible to the client as a broken stream.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import sys
import tempfile
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple
from urllib.parse import parse_qs, urlsplit

from ..apirules import API_VERSIONS, DEFAULT_API_VERSION, KNOWN_BETAS
from .errors import ApiError, invalid, not_found
from .faults import Decision
from .validation import Dialect

if TYPE_CHECKING:
    from .emulator import Emulator

RESULTS_CHUNK = 256 * 1024
_ROOT = ("", "v1", "messages", "batches")
_STATUS_ERRORS = {
    "rate_limit": ("rate_limit_error", 429, "Rate limit exceeded (emulated); retry after "
                   "the number of seconds in the retry-after header."),
    "server_error": ("api_error", 500, "Internal server error (emulated)."),
    "overloaded": ("overloaded_error", 529, "Overloaded (emulated)."),
}


class _Dropped(Exception):
    """The connection was closed on purpose, with no (complete) answer."""


class BodyReader:
    """Reads a request body as sent: ``Content-Length`` bytes, or chunked."""

    def __init__(self, rfile: Any, headers: Any) -> None:
        self._rfile = rfile
        encoding = (headers.get("Transfer-Encoding") or "").lower()
        self.chunked = "chunked" in encoding
        self.length: Optional[int] = None
        self._left = 0
        self._chunk_left = 0
        self._eof = False
        self.consumed = 0
        if not self.chunked:
            raw = headers.get("Content-Length")
            if raw is None:
                self._eof = True
                self.length = 0
            else:
                try:
                    self.length = int(raw)
                except ValueError:
                    self._eof = True
                    raise invalid("Content-Length header is not a number") from None
                if self.length < 0:
                    self._eof = True
                    raise invalid("Content-Length header is negative")
                self._left = self.length
                self._eof = self.length == 0

    @property
    def done(self) -> bool:
        return self._eof

    def read(self, size: int = 1 << 20) -> bytes:
        """Up to ``size`` body bytes; b"" at the end of the body."""
        if self._eof:
            return b""
        if not self.chunked:
            data: bytes = self._rfile.read(min(size, self._left))
            if not data:
                raise ConnectionError("client closed the connection mid-body")
            self._left -= len(data)
            self.consumed += len(data)
            self._eof = self._left == 0
            return data
        if self._chunk_left == 0:
            line = self._rfile.readline(65537)
            if not line:
                raise ConnectionError("client closed the connection mid-body")
            try:
                self._chunk_left = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self._eof = True
                raise invalid("malformed chunked request body") from None
            if self._chunk_left == 0:
                while self._rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self._eof = True
                return b""
        data = self._rfile.read(min(size, self._chunk_left))
        if not data:
            raise ConnectionError("client closed the connection mid-body")
        self._chunk_left -= len(data)
        self.consumed += len(data)
        if self._chunk_left == 0:
            self._rfile.readline(3)  # the CRLF after each chunk
        return data


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], emulator: Emulator) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.emulator = emulator
        self._connections: Set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind also looks up the host's FQDN, which can take seconds
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._connections.discard(request)

    def close_connections(self) -> None:
        """Cut every open connection (keep-alive ones would otherwise outlive a stop)."""
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes
    server_version = "claudebatch-emulator"
    sys_version = ""
    server: EmulatorHTTPServer

    # --- plumbing -------------------------------------------------------------------
    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass  # the emulator keeps its own log (Emulator.requests)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.emulator.log is not None:
            self.server.emulator.log(f"{self.address_string()} {format % args}")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def handle_expect_100(self) -> bool:
        """Refuse an oversized body before the client sends it."""
        emu = self.server.emulator
        raw = self.headers.get("Content-Length")
        if raw is not None and raw.isdigit() and int(raw) > emu.settings.max_body_bytes:
            self._request_id = emu.service.ids.request_id()
            self.close_connection = True
            self._send_error(self._too_large())
            emu._record(self.command, self.path, None, 413, (), None)
            return False
        return super().handle_expect_100()

    # --- one request ----------------------------------------------------------------
    def _handle(self, method: str) -> None:
        emu = self.server.emulator
        self._request_id = emu.service.ids.request_id()
        self._status: Optional[int] = None
        self._batch_id: Optional[str] = None
        self._reader: Optional[BodyReader] = None
        self._recorded = False
        decision = Decision()
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        endpoint, batch_id = _route(method, url.path)
        self._log_as = (method, endpoint, batch_id or None, decision)
        try:
            self._reader = BodyReader(self.rfile, self.headers)
            declared = self._reader.length
            if declared is not None and declared > emu.settings.max_body_bytes:
                raise self._too_large()
            if endpoint is None:
                raise _no_endpoint(url.path, method)
            self._check_auth()
            decision = emu.fault_plan.draw(endpoint)
            self._log_as = (method, endpoint, batch_id or None, decision)
            if decision.delay:
                time.sleep(decision.delay)
            if decision.status is not None:
                error_type, status, message = _STATUS_ERRORS[decision.status]
                headers = {}
                if decision.status == "rate_limit":
                    ra = decision.retry_after
                    headers["retry-after"] = str(int(ra)) if ra == int(ra) else f"{ra:g}"
                raise ApiError(error_type, message, status=status, headers=headers)
            base = self._base_url()
            if endpoint == "create":
                beta_path = query.get("beta", [""])[-1] == "true"
                self._create(self._dialect(beta_path), base, decision)
            elif endpoint == "list":
                self._send_json(200, emu.service.list(query, base))
            elif endpoint == "retrieve":
                self._send_json(200, emu.service.retrieve(batch_id, base))
            elif endpoint == "cancel":
                self._send_json(200, emu.service.cancel(batch_id, base))
            elif endpoint == "delete":
                self._send_json(200, emu.service.delete(batch_id))
            else:
                self._results(batch_id, decision)
        except ApiError as exc:
            self._send_error(exc)
        except _Dropped:
            self.close_connection = True
        except (ConnectionError, socket.timeout):
            self.close_connection = True
        except Exception:
            traceback.print_exc(file=sys.stderr)
            if self._status is None:
                self._send_error(ApiError("api_error", "Internal server error", status=500))
            self.close_connection = True
        finally:
            self._record()

    def _record(self) -> None:
        """Log this request once, before its answer is complete (a client that has its
        answer can rely on finding the request in ``Emulator.requests``)."""
        if getattr(self, "_recorded", True):
            return
        self._recorded = True
        method, endpoint, batch_id, decision = self._log_as
        self.server.emulator._record(method, self.path, endpoint, self._status,
                                     tuple(decision.kinds), self._batch_id or batch_id)

    def _check_auth(self) -> None:
        emu = self.server.emulator
        if emu.api_key is not None:
            key = self.headers.get("x-api-key")
            if key is None:
                auth = self.headers.get("Authorization") or ""
                if auth.lower().startswith("bearer "):
                    key = auth[7:].strip()
            if key is None:
                raise ApiError("authentication_error", "x-api-key header is required")
            if key != emu.api_key:
                raise ApiError("authentication_error", "invalid x-api-key")
        version = (self.headers.get("anthropic-version") or "").strip()
        if not version:
            raise invalid("anthropic-version: header is required")
        if version not in API_VERSIONS:
            raise invalid(f"anthropic-version: {version!r} is not a valid version")
        self._dialect()  # an unknown beta name refuses the request, whatever it asks

    def _dialect(self, beta_path: bool = False) -> Dialect:
        """The create's version and betas; the service refuses a beta name it does not know.
        ``beta_path``: the ``?beta=true`` endpoint, whose params follow the beta schema."""
        betas: Set[str] = set()
        for header in self.headers.get_all("anthropic-beta") or ():
            betas.update(name.strip() for name in header.split(",") if name.strip())
        unknown = sorted(betas - KNOWN_BETAS)
        if unknown:
            shown = ", ".join(f"`{name}`" for name in unknown)
            raise invalid(f"Unexpected value(s) {shown} for the `anthropic-beta` header. "
                          "Please consult our documentation at docs.claude.com or try "
                          "again without the header.")
        return Dialect((self.headers.get("anthropic-version") or "").strip()
                       or DEFAULT_API_VERSION,
                       frozenset(betas), beta_path)

    def _base_url(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.server.emulator.url

    def _too_large(self) -> ApiError:
        limit = self.server.emulator.settings.max_body_bytes
        return ApiError(
            "request_too_large",
            f"Request exceeds the maximum allowed number of bytes ({limit} for a "
            "Message Batches request).",
            status=413,
            close=True,
        )

    # --- endpoints ------------------------------------------------------------------
    def _create(self, dialect: Dialect, base: str, decision: Decision) -> None:
        emu = self.server.emulator
        path = self._spool_body()
        try:
            body = emu.service.create(path, dialect=dialect, errored_rate=emu.faults.errored,
                                      answer_faults=emu.faults.answer_rates(),
                                      base_url=base)
        finally:
            os.unlink(path)
        self._batch_id = str(body["id"])
        if decision.drop == "drop_create":
            self._drop()
        self._send_json(200, body)

    def _spool_body(self) -> str:
        emu = self.server.emulator
        assert self._reader is not None
        limit = emu.settings.max_body_bytes
        fd, path = tempfile.mkstemp(prefix="body-", suffix=".json", dir=emu.spool_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    data = self._reader.read(1 << 20)
                    if not data:
                        break
                    if self._reader.consumed > limit:
                        raise self._too_large()
                    out.write(data)
        except BaseException:
            os.unlink(path)
            raise
        return path

    def _results(self, batch_id: str, decision: Decision) -> None:
        emu = self.server.emulator
        self._discard_body()
        count, lines = emu.service.results(batch_id)
        cut: Optional[int] = None
        if decision.drop == "drop_results":
            cut = min(count - 1, int(count * decision.drop_after)) if count else 0
        self.send_response(200)
        self.send_header("Content-Type", "application/x-jsonl")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", self._request_id)
        self.end_headers()
        self._status = 200
        pending: List[bytes] = []
        size = 0
        for n, line in enumerate(lines):
            if cut is not None and n == cut:
                pending.append(line[: len(line) // 2])
                self._write_chunk(b"".join(pending))
                self._drop()
            pending.append(line)
            size += len(line)
            if size >= RESULTS_CHUNK:
                self._write_chunk(b"".join(pending))
                pending, size = [], 0
        if pending:
            self._write_chunk(b"".join(pending))
        self._record()
        self.wfile.write(b"0\r\n\r\n")

    # --- writing --------------------------------------------------------------------
    def _write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n" % len(data))
            self.wfile.write(data)
            self.wfile.write(b"\r\n")

    def _drop(self) -> None:
        self._record()
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise _Dropped()

    def _send_json(self, status: int, obj: Any, headers: Optional[Dict[str, str]] = None,
                   *, discard: bool = True) -> None:
        if discard:
            self._discard_body()
        body = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("request-id", self._request_id)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self._status = status
        self.end_headers()
        self._record()
        self.wfile.write(body)

    def _send_error(self, exc: ApiError) -> None:
        if exc.close:
            self.close_connection = True
        try:
            self._send_json(exc.status, exc.body(self._request_id), exc.headers,
                            discard=not exc.close)
        except (ConnectionError, socket.timeout):
            self.close_connection = True
            return
        if exc.status == 413:
            self._drain()

    def _discard_body(self) -> None:
        """Read and forget what is left of the request body, so the connection can
        carry the next request; a body too large to bother with closes it instead."""
        reader = getattr(self, "_reader", None)
        if reader is None:  # the body's framing was unreadable
            self.close_connection = True
            return
        if reader.done:
            return
        limit = self.server.emulator.settings.max_body_bytes
        try:
            while reader.read(1 << 20):
                if reader.consumed > limit:
                    self.close_connection = True
                    return
        except (ApiError, ConnectionError, socket.timeout):
            self.close_connection = True

    def _drain(self) -> None:
        """After a 413, keep reading (and dropping) the rest of the body for a while, so a
        client that sends everything before it reads still gets the answer."""
        reader = getattr(self, "_reader", None)
        self.close_connection = True
        if reader is None:
            return
        deadline = time.monotonic() + self.server.emulator.drain_seconds
        try:
            self.connection.settimeout(max(0.1, self.server.emulator.drain_seconds))
            while time.monotonic() < deadline and reader.read(1 << 20):
                pass
        except (ApiError, OSError):
            pass


def _no_endpoint(path: str, method: str) -> ApiError:
    return not_found(f"Not found: {method} {path}")


def _route(method: str, path: str) -> Tuple[Optional[str], str]:
    parts = path.rstrip("/").split("/")
    if tuple(parts[:4]) != _ROOT:
        return None, ""
    rest = parts[4:]
    if not rest:
        return {"POST": "create", "GET": "list"}.get(method), ""
    batch_id = rest[0]
    if len(rest) == 1:
        return {"GET": "retrieve", "DELETE": "delete"}.get(method), batch_id
    if len(rest) == 2 and rest[1] == "cancel" and method == "POST":
        return "cancel", batch_id
    if len(rest) == 2 and rest[1] == "results" and method == "GET":
        return "results", batch_id
    return None, ""
