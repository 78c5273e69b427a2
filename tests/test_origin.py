"""The API key goes to the API's origin only: attacks against two real servers on loopback.

The API answers on 127.0.0.1; an attacker listens on 127.0.0.2 and records every
request. Each attack must end in a clear error or a key-less request, never in
the key (or the prompts) reaching the attacker.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

from claudebatch import (
    BatchClient,
    ConfigurationError,
    UnsafeResultsURLError,
    UnsafeURLError,
)
from claudebatch.cli import main as cli_main

from .loopback_server import batch_json, succeeded_line

KEY = "sk-ant-origin-test-0123456789"
Answer = Callable[[BaseHTTPRequestHandler], Tuple[int, Dict[str, str], bytes]]


class Server:
    """A loopback HTTP server that records requests and answers through ``answer``."""

    def __init__(self, host: str, answer: Answer) -> None:
        self.seen: List[Tuple[str, str, Dict[str, str], bytes]] = []
        self.answer = answer
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                server.seen.append((self.command, self.path, dict(self.headers), body))
                status, headers, data = server.answer(self)
                self.send_response(status)
                for k, v in {"content-length": str(len(data)), **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def saw_key(self) -> bool:
        return any(KEY in json.dumps(headers) for _, _, headers, _ in self.seen)


RESULTS = succeeded_line("r-1", "hello")


@pytest.fixture
def attacker() -> Iterator[Server]:
    server = Server("127.0.0.2", lambda h: (200, {}, RESULTS))
    yield server
    server.close()


class Api:
    """The API: an ended batch whose results_url and redirects the test sets."""

    def __init__(self) -> None:
        self.results_url: Optional[str] = None
        self.redirect: Dict[str, Tuple[int, str]] = {}  # path -> (status, location)
        self.server = Server("127.0.0.1", self._answer)
        self.url = self.server.url

    def _answer(self, h: BaseHTTPRequestHandler) -> Tuple[int, Dict[str, str], bytes]:
        path = h.path.split("?")[0]
        if path in self.redirect:
            status, location = self.redirect[path]
            return status, {"location": location}, b""
        if path.endswith("/results"):
            return 200, {}, RESULTS
        body = batch_json(self.url, 1)
        if self.results_url is not None:
            body["results_url"] = self.results_url
        return 200, {"content-type": "application/json"}, json.dumps(body).encode()


@pytest.fixture
def api() -> Iterator[Api]:
    server = Api()
    yield server
    server.server.close()


def client_for(api: Api, **kwargs: Any) -> BatchClient:
    return BatchClient(api_key=KEY, base_url=api.url, max_retries=0, load_entry_points=False,
                       **kwargs)


def confusing(attacker: Server, api: Api) -> str:
    """``http://ATTACKER\\@API/x``: urlsplit reads the API's host, the socket the attacker's."""
    return f"{attacker.url}\\@{api.url.split('://')[1]}/v1/messages/batches/x/results"


def test_a_results_url_that_parsers_read_as_two_hosts_is_refused(api: Api,
                                                                 attacker: Server) -> None:
    api.results_url = confusing(attacker, api)
    with pytest.raises(UnsafeResultsURLError, match="backslash"):
        list(client_for(api).results("msgbatch_loopback"))
    assert attacker.seen == []


def test_a_results_url_with_userinfo_is_refused(api: Api, attacker: Server) -> None:
    api.results_url = f"http://user@{attacker.url.split('://')[1]}/x"
    with pytest.raises(UnsafeResultsURLError, match="user name"):
        list(client_for(api).results("msgbatch_loopback"))
    assert attacker.seen == []


def test_a_results_url_on_another_origin_says_how_to_allow_it(api: Api,
                                                              attacker: Server) -> None:
    api.results_url = f"{attacker.url}/results"
    with pytest.raises(UnsafeResultsURLError, match="allowed_origins") as info:
        list(client_for(api).results("msgbatch_loopback"))
    assert attacker.url in str(info.value) and attacker.seen == []
    # allowed explicitly (a gateway the user trusts), it is fetched
    results = list(client_for(api, allowed_origins=[attacker.url]).results("msgbatch_loopback"))
    assert [r.custom_id for r in results] == ["r-1"]


def test_a_redirect_that_parsers_read_as_two_hosts_is_not_followed(api: Api,
                                                                   attacker: Server) -> None:
    api.redirect["/v1/messages/batches/msgbatch_loopback/results"] = (
        302, confusing(attacker, api))
    with pytest.raises(UnsafeURLError, match="backslash"):
        list(client_for(api).results("msgbatch_loopback"))
    assert attacker.seen == []


def test_a_get_redirected_off_origin_goes_without_the_key_even_when_it_comes_back(
        api: Api, attacker: Server) -> None:
    back = f"{api.url}/v1/messages/batches/again/results"
    attacker.answer = lambda h: (302, {"location": back}, b"")
    api.redirect["/v1/messages/batches/msgbatch_loopback/results"] = (
        307, f"{attacker.url}/elsewhere")
    list(client_for(api).results("msgbatch_loopback"))
    assert [p for _, p, _, _ in attacker.seen] == ["/elsewhere"]
    assert not attacker.saw_key()
    last = api.server.seen[-1]
    assert last[1] == "/v1/messages/batches/again/results"
    assert "x-api-key" not in {k.lower() for k in last[2]}


def test_a_create_redirected_off_origin_never_sends_the_prompts_there(
        api: Api, attacker: Server) -> None:
    api.redirect["/v1/messages/batches"] = (307, f"{attacker.url}/v1/messages/batches")
    request = {"custom_id": "r-1", "params": {
        "model": "claude-haiku-4-5", "max_tokens": 5,
        "messages": [{"role": "user", "content": "a secret prompt"}]}}
    with pytest.raises(UnsafeURLError, match="another origin"):
        client_for(api).create([request])
    assert attacker.seen == []


def test_the_cli_refuses_the_attack_too(api: Api, attacker: Server,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    api.results_url = confusing(attacker, api)
    code = cli_main(["results", "msgbatch_loopback", "--base-url", api.url])
    err = capsys.readouterr().err
    assert code == 1 and "backslash" in err and "Traceback" not in err
    assert KEY not in err and attacker.seen == []


@pytest.mark.parametrize("base", ["http://api.example.com", "http://10.0.0.5:8080"])
def test_plain_http_to_another_host_is_refused_unless_allowed(base: str) -> None:
    with pytest.raises(ConfigurationError, match="unencrypted"):
        BatchClient(api_key=KEY, base_url=base, load_entry_points=False)
    BatchClient(api_key=KEY, base_url=base, allow_http=True, load_entry_points=False)


@pytest.mark.parametrize("base", ["http://127.0.0.1:9", "http://localhost:9",
                                  "http://[::1]:9", "https://api.example.com"])
def test_loopback_and_https_need_no_opt_in(base: str) -> None:
    BatchClient(api_key=KEY, base_url=base, load_entry_points=False)


def test_the_debug_log_names_the_url_the_body_came_from(
        api: Api, attacker: Server, caplog: pytest.LogCaptureFixture) -> None:
    api.redirect["/v1/messages/batches/msgbatch_loopback"] = (
        302, f"{api.url}/v1/messages/batches/moved")
    with caplog.at_level("DEBUG", logger="claudebatch"):
        client_for(api).retrieve("msgbatch_loopback")
    assert any("/v1/messages/batches/moved -> 200" in r.getMessage() for r in caplog.records)


def test_a_bearer_token_never_follows_a_hop_off_the_origin(api: Api, attacker: Server) -> None:
    token = "bearer-SECRET-token"
    api.redirect["/v1/messages/batches/msgbatch_loopback/results"] = (
        302, f"{attacker.url}/elsewhere")
    client = BatchClient(auth_token=token, base_url=api.url, max_retries=0,
                         load_entry_points=False)
    list(client.results("msgbatch_loopback"))
    assert attacker.seen and not any(token in json.dumps(h) for _, _, h, _ in attacker.seen)
    assert any(token in json.dumps(h) for _, _, h, _ in api.server.seen)
