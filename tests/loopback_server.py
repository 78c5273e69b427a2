"""A tiny loopback server for one ended batch whose results body is generated on the fly.

Used by the memory tests and by benchmarks/results_stream.py: it answers
``GET /v1/messages/batches/{id}`` with an ended batch whose ``results_url``
points back at itself, and streams the results body from a generator, so
bodies of any size cost the server no memory.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable

BATCH_ID = "msgbatch_loopback"
Body = Callable[[], Iterable[bytes]]


def batch_json(base_url: str, count: int) -> dict[str, Any]:
    return {
        "id": BATCH_ID, "type": "message_batch", "processing_status": "ended",
        "request_counts": {"processing": 0, "succeeded": count, "errored": 0,
                           "canceled": 0, "expired": 0},
        "created_at": "2026-11-20T10:00:00.000000Z", "expires_at": "2026-11-21T10:00:00.000000Z",
        "ended_at": "2026-11-20T10:05:00.000000Z", "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": f"{base_url}/v1/messages/batches/{BATCH_ID}/results",
    }


def succeeded_line(custom_id: str, text: str) -> bytes:
    return json.dumps({"custom_id": custom_id, "result": {"type": "succeeded", "message": {
        "id": f"msg_{custom_id}", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 1200, "output_tokens": 80,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1024,
                  "cache_creation": {"ephemeral_5m_input_tokens": 0,
                                     "ephemeral_1h_input_tokens": 0},
                  "service_tier": "batch"}}}}).encode() + b"\n"


def generated_body(count: int, text_bytes: int) -> Body:
    """``count`` succeeded lines, each with a ``text_bytes``-long answer."""
    text = ("lorem ipsum " * (text_bytes // 12 + 1))[:text_bytes]

    def body() -> Iterable[bytes]:
        chunk: list[bytes] = []
        for i in range(count):
            chunk.append(succeeded_line(f"req-{i}", text))
            if len(chunk) == 256:
                yield b"".join(chunk)
                chunk = []
        if chunk:
            yield b"".join(chunk)

    return body


class LoopbackResultsServer:
    """Context manager: serves one batch and its generated results on 127.0.0.1."""

    def __init__(self, body: Body, count: int):
        self.body = body
        self.count = count
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.endswith("/results"):
                    self.send_response(200)
                    self.send_header("content-type", "application/x-jsonl")
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    for part in server.body():
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                payload = json.dumps(batch_json(server.url, server.count)).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("request-id", "req_loopback")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackResultsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
