"""Fixtures for the emulator tests: the spec validator, emulators, a raw API client.

Every body a test gets through :class:`Api` is validated against the official OpenAPI
spec before the test sees it, so each test that talks to the emulator also checks
conformance. The spec is the repository's own copy, trimmed to the batch endpoints:
``claudebatch/emulator/spec/anthropic-openapi.batches.json`` (see the README beside it).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, Iterator, List, Tuple

import pytest
import requests
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import claudebatch.emulator
from claudebatch.emulator import Emulator, ManualClock

VERSION = "2023-06-01"
SPEC_NAME = "anthropic-openapi.batches.json"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def spec_path() -> Path:
    """The vendored spec, in the package's ``emulator/spec`` data folder."""
    return Path(claudebatch.emulator.__file__).resolve().parent / "spec" / SPEC_NAME


class SpecValidator:
    def __init__(self, path: Path) -> None:
        self.spec = json.loads(path.read_text(encoding="utf-8"))
        resource = Resource.from_contents(self.spec, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource("urn:spec", resource)
        self._validators: Dict[str, Draft202012Validator] = {}

    def __call__(self, instance: Any, name: str) -> None:
        validator = self._validators.get(name)
        if validator is None:
            schema = {"$ref": f"urn:spec#/components/schemas/{name}"}
            validator = Draft202012Validator(schema, registry=self.registry)
            self._validators[name] = validator
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        if errors:
            detail = "\n".join(f"  at {list(e.path)}: {e.message[:300]}" for e in errors[:5])
            raise AssertionError(f"body does not match {name}:\n{detail}\n"
                                 f"body: {json.dumps(instance)[:1500]}")
        if name == "MessageBatch":
            check_batch_times(instance)


def check_batch_times(batch: Dict[str, Any]) -> None:
    for key in ("created_at", "expires_at", "ended_at", "archived_at", "cancel_initiated_at"):
        value = batch[key]
        if value is not None:
            assert RFC3339.match(value), (key, value)
            datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture(scope="session")
def validate() -> SpecValidator:
    path = spec_path()
    if not path.exists():
        pytest.fail(f"the OpenAPI spec is missing: expected it at {path}")
    return SpecValidator(path)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_emulator(clock: ManualClock) -> Iterator[Callable[..., Emulator]]:
    """Start emulators (on the manual clock unless given another); all stopped at teardown."""
    started: List[Emulator] = []

    def make(**kwargs: Any) -> Emulator:
        kwargs.setdefault("seed", 1234)
        kwargs.setdefault("clock", clock)
        emu = Emulator(**kwargs).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def emu(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(rate=100.0)


def make_request(custom_id: str, content: str = "Hello", **params: Any) -> Dict[str, Any]:
    body: Dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": content}],
    }
    body.update(params)
    return {"custom_id": custom_id, "params": body}


@pytest.fixture
def req() -> Callable[..., Dict[str, Any]]:
    """``req(custom_id, content="Hello", **params)``: one batch request."""
    return make_request


class Api:
    """A raw HTTP client (requests) that validates every body against the spec."""

    SCHEMA: ClassVar[Dict[Tuple[str, str], str]] = {
        ("POST", ""): "MessageBatch",
        ("GET", ""): "ListResponse_MessageBatch_",
        ("GET", "id"): "MessageBatch",
        ("DELETE", "id"): "DeleteMessageBatchResponse",
        ("POST", "cancel"): "MessageBatch",
    }

    def __init__(self, emu: Emulator, validate: SpecValidator, api_key: str = "k") -> None:
        self.emu = emu
        self.validate = validate
        self.session = requests.Session()
        self.session.headers.update({"x-api-key": api_key, "anthropic-version": VERSION})

    def url(self, path: str = "") -> str:
        return f"{self.emu.url}/v1/messages/batches{path}"

    def call(self, method: str, path: str = "", *, kind: str = "",
             **kwargs: Any) -> requests.Response:
        response = self.session.request(method, self.url(path), timeout=30, **kwargs)
        assert response.headers.get("request-id", "").startswith("req_"), response.headers
        if response.status_code == 200:
            self.validate(response.json(), self.SCHEMA[(method, kind)])
        else:
            self.check_error(response)
        return response

    def check_error(self, response: requests.Response) -> Dict[str, Any]:
        body = response.json()
        assert body["request_id"] == response.headers["request-id"]
        if body["error"]["type"] == "request_too_large":
            # The service answers 413 with this type, which the spec's ErrorResponse does not
            # list: check the rest of the envelope against it.
            body = {**body, "error": {**body["error"], "type": "invalid_request_error"}}
        self.validate(body, "ErrorResponse")
        return response.json()  # type: ignore[no-any-return]

    # the endpoints, returning parsed bodies (and asserting 200)
    def create(self, requests_: List[Dict[str, Any]], beta: bool = False) -> Dict[str, Any]:
        r = self.call("POST", "", json={"requests": requests_},
                      params={"beta": "true"} if beta else None)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def retrieve(self, batch_id: str) -> Dict[str, Any]:
        r = self.call("GET", f"/{batch_id}", kind="id")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def list(self, **params: Any) -> Dict[str, Any]:
        r = self.call("GET", "", params=params)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def cancel(self, batch_id: str) -> Dict[str, Any]:
        r = self.call("POST", f"/{batch_id}/cancel", kind="cancel")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def delete(self, batch_id: str) -> Dict[str, Any]:
        r = self.call("DELETE", f"/{batch_id}", kind="id")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def results(self, batch_id: str, *, every: int = 1) -> List[Dict[str, Any]]:
        """Every result line (validated: all, or every ``every``-th for big bodies)."""
        batch = self.retrieve(batch_id)
        assert batch["results_url"] == self.url(f"/{batch_id}/results")
        r = self.session.get(batch["results_url"], timeout=60)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/x-jsonl"
        lines = [json.loads(line) for line in r.content.splitlines()]
        for i, line in enumerate(lines):
            if i % every == 0:
                self.validate(line, "MessageBatchIndividualResponse")
        return lines


@pytest.fixture
def api(emu: Emulator, validate: SpecValidator) -> Api:
    return Api(emu, validate)


@pytest.fixture
def make_api(validate: SpecValidator) -> Callable[..., Api]:
    def make(emulator: Emulator, api_key: str = "k") -> Api:
        return Api(emulator, validate, api_key)

    return make
