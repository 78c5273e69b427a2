"""Shared fixtures for the core unit tests (the emulator tests have their own conftest).

The JSON builders are handed out as fixtures (not imported from here): with
tests/emulator/conftest.py beside this one, ``import conftest`` is ambiguous.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Dict, Iterator, List, Optional

import pytest
import responses

from claudebatch import BatchClient

from .pgserver import postgres_dsn, postgres_server  # noqa: F401  (PostgreSQL store tests)
from .s3server import s3, s3_server  # noqa: F401  (fixtures for the object-store tests)

API_KEY = "sk-ant-SECRET-123"
BASE_URL = "https://api.anthropic.com"
BATCHES_URL = f"{BASE_URL}/v1/messages/batches"
#: The fake clock's wall time at the start of every test (a whole second, for HTTP dates).
EPOCH = 1_700_000_000.0


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch,
                  tmp_path_factory: pytest.TempPathFactory) -> None:
    """No entry-point plugins and no credentials from the developer's environment."""
    monkeypatch.setenv("CLAUDEBATCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    # a per-user store of its own: no test reads or writes the developer's
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
    monkeypatch.delenv("CLAUDEBATCH_STORE", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


class FakeClock:
    """A Clock that never sleeps: ``sleep`` records the delay and moves time on."""

    def __init__(self, now: float = EPOCH):
        self.now = now
        self.mono = 1000.0
        self.sleeps: List[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.mono += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock: FakeClock) -> BatchClient:
    return BatchClient(api_key=API_KEY, base_url=BASE_URL, clock=clock)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    """A RequestsMock that fails the test if a registered response is never requested."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


# --- JSON builders, each also a fixture of the same name --------------------------

def iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


def batch_json(batch_id: str = "msgbatch_01", status: str = "in_progress", *,
               processing: int = 1, succeeded: int = 0, errored: int = 0,
               canceled: int = 0, expired: int = 0, created_at: float = EPOCH,
               expires_at: Optional[float] = None, results_url: Optional[str] = "",
               **extra: Any) -> Dict[str, Any]:
    """A MessageBatch as the API returns it. An ended batch gets a results_url by default."""
    ended = status == "ended"
    if results_url == "":
        results_url = f"{BATCHES_URL}/{batch_id}/results" if ended else None
    body: Dict[str, Any] = {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": {"processing": 0 if ended else processing, "succeeded": succeeded,
                           "errored": errored, "canceled": canceled, "expired": expired},
        "created_at": iso(created_at),
        "expires_at": iso(expires_at if expires_at is not None else created_at + 86400),
        "ended_at": iso(created_at + 60) if ended else None,
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": results_url,
    }
    body.update(extra)
    return body


def message_json(text: str = "hello", **extra: Any) -> Dict[str, Any]:
    body: Dict[str, Any] = {
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
        "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 5},
    }
    body.update(extra)
    return body


def result_line(custom_id: str, kind: str = "succeeded", **result: Any) -> str:
    """One line of a results file (with its newline)."""
    body: Dict[str, Any] = {"type": kind}
    if kind == "succeeded":
        body["message"] = message_json()
    elif kind == "errored":
        body["error"] = {"type": "error", "error": {"type": "invalid_request_error",
                                                    "message": "bad"}}
    body.update(result)
    return json.dumps({"custom_id": custom_id, "result": body}) + "\n"


def make_requests(n: int, prefix: str = "req") -> List[Dict[str, Any]]:
    return [{"custom_id": f"{prefix}-{i}",
             "params": {"model": "claude-sonnet-4-5", "max_tokens": 16,
                        "messages": [{"role": "user", "content": f"hi {i}"}]}}
            for i in range(n)]


def error_body(error_type: str, message: str = "something went wrong") -> Dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


@pytest.fixture(name="batch_json")
def _batch_json_fixture() -> Any:
    return batch_json


@pytest.fixture(name="message_json")
def _message_json_fixture() -> Any:
    return message_json


@pytest.fixture(name="result_line")
def _result_line_fixture() -> Any:
    return result_line


@pytest.fixture(name="make_requests")
def _make_requests_fixture() -> Any:
    return make_requests


@pytest.fixture(name="error_body")
def _error_body_fixture() -> Any:
    return error_body
