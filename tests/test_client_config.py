"""BatchClient configuration: credentials, base URL, headers and the caller's own session."""

from __future__ import annotations

from typing import Any, List

import pytest
import requests
import responses

import claudebatch
from claudebatch import BatchClient, ConfigurationError

KEY = "sk-ant-SECRET-123"
BASE = "https://api.anthropic.com"


def test_missing_api_key_is_a_clear_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        BatchClient()
    message = str(info.value)
    assert "api_key" in message
    assert "ANTHROPIC_API_KEY" in message


def test_empty_api_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "")
    with pytest.raises(ConfigurationError):
        BatchClient()


def test_key_and_base_url_come_from_the_environment(
        monkeypatch: pytest.MonkeyPatch, batch_json: Any) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://localhost:8123")
    client = BatchClient()
    assert client.base_url == "http://localhost:8123"
    with responses.RequestsMock() as mock:
        mock.get("http://localhost:8123/v1/messages/batches/b1", json=batch_json("b1"))
        client.retrieve("b1")
        assert mock.calls[0].request.headers["x-api-key"] == "env-key"


def test_arguments_win_over_the_environment(
        monkeypatch: pytest.MonkeyPatch, batch_json: Any) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://localhost:8123")
    client = BatchClient(api_key="arg-key", base_url="http://127.0.0.1:9000")
    with responses.RequestsMock() as mock:
        mock.get("http://127.0.0.1:9000/v1/messages/batches/b1", json=batch_json("b1"))
        client.retrieve("b1")
        assert mock.calls[0].request.headers["x-api-key"] == "arg-key"


def test_default_base_url_is_the_real_service() -> None:
    assert BatchClient(api_key=KEY).base_url == "https://api.anthropic.com"


def test_trailing_slash_on_base_url_does_not_double_the_path(batch_json: Any) -> None:
    client = BatchClient(api_key=KEY, base_url="http://localhost:8123/")
    with responses.RequestsMock() as mock:
        mock.get("http://localhost:8123/v1/messages/batches/b1", json=batch_json("b1"))
        assert client.retrieve("b1").id == "b1"


@pytest.mark.parametrize("base_url", ["api.anthropic.com", "ftp://example.com", "localhost:8000"])
def test_base_url_without_http_scheme_is_refused(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="http"):
        BatchClient(api_key=KEY, base_url=base_url)


def test_negative_max_retries_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="max_retries"):
        BatchClient(api_key=KEY, max_retries=-1)


def test_every_request_carries_the_api_headers(batch_json: Any) -> None:
    client = BatchClient(api_key=KEY, base_url=BASE)
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/v1/messages/batches/b1", json=batch_json("b1"))
        client.retrieve("b1")
        headers = mock.calls[0].request.headers
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"] == "2026-10-21"  # the latest, as the official SDK
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith(f"claudebatch/{claudebatch.__version__}")
    assert "anthropic-beta" not in headers
    assert "authorization" not in {k.lower() for k in headers}


def test_betas_are_sent_as_one_anthropic_beta_header(batch_json: Any) -> None:
    client = BatchClient(api_key=KEY, base_url=BASE,
                         betas=["message-batches-2024-09-24", "extended-cache-ttl-2025-04-11"])
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/v1/messages/batches/b1", json=batch_json("b1"))
        client.retrieve("b1")
        assert mock.calls[0].request.headers["anthropic-beta"] == (
            "message-batches-2024-09-24,extended-cache-ttl-2025-04-11")


def test_timeout_is_passed_to_every_request(batch_json: Any) -> None:
    client = BatchClient(api_key=KEY, base_url=BASE, timeout=(3.0, 42.0))
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/v1/messages/batches/b1", json=batch_json("b1"))
        client.retrieve("b1")
        assert mock.calls[0].request.req_kwargs["timeout"] == (3.0, 42.0)


def test_callers_session_is_used_with_its_own_settings(
        monkeypatch: pytest.MonkeyPatch, batch_json: Any) -> None:
    # requests lets these variables override a session's CA bundle; keep them out of the way.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    session = requests.Session()
    session.headers["x-legacy-trace"] = "abc"
    session.proxies = {"https": "http://proxy.internal:3128"}
    session.verify = "/etc/corp-ca.pem"
    client = BatchClient(api_key=KEY, base_url=BASE, session=session)
    assert client.transport.session is session
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/v1/messages/batches/b1", json=batch_json("b1"))
        client.retrieve("b1")
        call = mock.calls[0]
    assert call.request.headers["x-legacy-trace"] == "abc"
    assert call.request.headers["x-api-key"] == KEY
    assert call.request.req_kwargs["proxies"]["https"] == "http://proxy.internal:3128"
    assert call.request.req_kwargs["verify"] == "/etc/corp-ca.pem"
    # The key goes on each request, never onto the caller's session.
    assert "x-api-key" not in session.headers


class RecordingAdapter(requests.adapters.BaseAdapter):
    """A transport adapter a legacy codebase might mount (it never touches the network)."""

    def __init__(self, body: bytes):
        super().__init__()
        self.body = body
        self.sent: List[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        response = requests.Response()
        response.status_code = 200
        response._content = self.body
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


def test_adapters_mounted_on_the_callers_session_carry_the_calls(batch_json: Any) -> None:
    import json

    adapter = RecordingAdapter(json.dumps(batch_json("b1")).encode())
    session = requests.Session()
    session.mount("https://gateway.corp/", adapter)
    client = BatchClient(api_key=KEY, base_url="https://gateway.corp", session=session)
    with responses.RequestsMock(assert_all_requests_are_fired=False):  # nothing may escape
        batch = client.retrieve("b1")
    assert batch.id == "b1"
    assert [r.url for r in adapter.sent] == ["https://gateway.corp/v1/messages/batches/b1"]
    assert adapter.sent[0].headers["x-api-key"] == KEY


@responses.activate
@pytest.mark.parametrize("from_env", [False, True], ids=["argument", "ANTHROPIC_AUTH_TOKEN"])
def test_a_bearer_token_authenticates_instead_of_a_key(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        from_env: bool) -> None:
    token = "oauth-token-SECRET-42"
    if from_env:
        monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", token)
    client = BatchClient(auth_token=None if from_env else token, load_entry_points=False,
                         max_retries=0)
    responses.get("https://api.anthropic.com/v1/messages/batches/msgbatch_1", status=401,
                  json={"type": "error", "error": {"type": "authentication_error",
                                                   "message": "invalid token"}})
    with caplog.at_level("DEBUG", logger="claudebatch"), pytest.raises(Exception) as info:
        client.retrieve("msgbatch_1")
    sent = responses.calls[0].request.headers
    assert sent["authorization"] == f"Bearer {token}" and "x-api-key" not in sent
    shown = str(info.value) + repr(client) + repr(client.transport) + caplog.text
    assert token not in shown


def test_a_bearer_token_with_whitespace_inside_is_refused_unshown() -> None:
    with pytest.raises(ConfigurationError, match="auth token") as info:
        BatchClient(auth_token="abc def-SECRET", load_entry_points=False)
    assert "SECRET" not in str(info.value)


def test_the_emulator_accepts_a_bearer_token() -> None:
    from claudebatch.emulator import Emulator

    with Emulator(api_key="right", rate=float("inf")) as emu:
        good = BatchClient(auth_token="right", base_url=emu.url, load_entry_points=False)
        assert list(good.list()) == []
        bad = BatchClient(auth_token="wrong", base_url=emu.url, load_entry_points=False,
                          max_retries=0)
        with pytest.raises(Exception, match="authentication_error"):
            list(bad.list())
