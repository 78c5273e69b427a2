"""Hooks around the endpoint calls, per-client plugin managers, and entry-point loading."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any, Iterator, List

import attrs
import pytest
import responses

from claudebatch import (
    BadRequestError,
    BatchClient,
    CallContext,
    MessageBatch,
    PendingBatch,
    Request,
    hookimpl,
    hookspecs,
)

KEY = "sk-ant-SECRET-123"
BATCHES = "https://api.anthropic.com/v1/messages/batches"


def sent_requests(mock: responses.RequestsMock) -> List[dict]:
    [post] = [c for c in mock.calls if c.request.method == "POST"]
    return json.loads(post.request.body)["requests"]


class AddSystemPrompt:
    """What the prompt-cache plugin does: rewrite every request on its way out."""

    @hookimpl(tryfirst=True)
    def before_submit(self, requests: PendingBatch) -> None:
        requests.transform(lambda r: attrs.evolve(
            r, params={**r.params, "system": "You are terse."}))


class Spy:
    def __init__(self) -> None:
        self.events: List[tuple] = []

    @hookimpl
    def before_submit(self, requests: PendingBatch, context: Any) -> None:
        self.events.append(("before", len(requests), [r.params.get("system") for r in requests],
                            context))

    @hookimpl
    def after_submit(self, batch: MessageBatch, requests: PendingBatch, context: Any) -> None:
        self.events.append(("after", batch.id, len(requests), context))


def test_before_submit_transform_rewrites_the_body_sent(
        clock: Any, mock: responses.RequestsMock, batch_json: Any, make_requests: Any) -> None:
    items = make_requests(3)
    original = copy.deepcopy(items)
    client = BatchClient(api_key=KEY, clock=clock, plugins=[AddSystemPrompt()])
    mock.post(BATCHES, json=batch_json("b1", processing=3))
    client.create(items)
    sent = sent_requests(mock)
    assert [r["custom_id"] for r in sent] == ["req-0", "req-1", "req-2"]
    assert all(r["params"]["system"] == "You are terse." for r in sent)
    assert all(r["params"]["messages"] == o["params"]["messages"] for r, o in zip(sent, original))
    assert items == original  # the caller's own objects are left alone


def test_hooks_run_in_order_around_create_with_the_clients_context(
        clock: Any, mock: responses.RequestsMock, batch_json: Any, make_requests: Any) -> None:
    spy = Spy()
    client = BatchClient(api_key=KEY, clock=clock, plugins=[spy, AddSystemPrompt()])
    mock.post(BATCHES, json=batch_json("b_new", processing=2))
    batch = client.create(make_requests(2))
    # The tryfirst rewrite has happened before the plain hook looks at the requests.
    assert spy.events == [
        ("before", 2, ["You are terse.", "You are terse."], client.context),
        ("after", "b_new", 2, client.context),
    ]
    assert batch.id == "b_new"


def test_a_context_passed_to_create_reaches_the_hooks(
        clock: Any, mock: responses.RequestsMock, batch_json: Any, make_requests: Any) -> None:
    spy = Spy()
    client = BatchClient(api_key=KEY, clock=clock, plugins=[spy])
    job = CallContext(client)
    mock.post(BATCHES, json=batch_json("b1"))
    client.create(make_requests(1), context=job)
    assert [event[-1] for event in spy.events] == [job, job]


def test_raising_in_before_submit_vetoes_with_no_post(
        clock: Any, mock: responses.RequestsMock, make_requests: Any) -> None:
    class OverBudget(Exception):
        pass

    class Budget:
        @hookimpl
        def before_submit(self, requests: PendingBatch) -> None:
            raise OverBudget(f"{len(requests)} requests would exceed the budget")

    spy = Spy()
    client = BatchClient(api_key=KEY, clock=clock, plugins=[Budget(), spy])
    with pytest.raises(OverBudget, match="2 requests"):
        client.create(make_requests(2))
    assert len(mock.calls) == 0
    assert not [e for e in spy.events if e[0] == "after"]


def test_after_submit_is_not_called_when_create_fails(
        clock: Any, mock: responses.RequestsMock, make_requests: Any, error_body: Any) -> None:
    spy = Spy()
    client = BatchClient(api_key=KEY, clock=clock, plugins=[spy])
    mock.post(BATCHES, status=400, json=error_body("invalid_request_error"))
    with pytest.raises(BadRequestError):
        client.create(make_requests(1))
    assert [e[0] for e in spy.events] == ["before"]


def test_a_transform_applies_lazily_each_time_the_batch_is_iterated() -> None:
    pending = PendingBatch.from_requests([Request("a", {"n": 1}), Request("b", {"n": 2})])
    pending.transform(lambda r: attrs.evolve(r, params={"n": r.params["n"] * 10}))
    assert len(pending) == 2
    assert [r.params["n"] for r in pending] == [10, 20]
    assert [r.params["n"] for r in pending] == [10, 20]  # re-iterable, applied once per pass


def test_a_raw_observer_sees_the_bytes_the_body_carries() -> None:
    """``observe(raw=True)`` gets each request's JSON as written into the body: copied from
    the spool when nothing rewrites it (nothing is decoded), the rewritten request's when a
    transform runs, and anew (after ``restart``) when a late transform rewrites the body."""
    spooled = [b'{"custom_id":"a","params":{"n":1}}', b'{"custom_id":"b","params":{"n":2}}']
    decoded: List[bytes] = []

    def source() -> Iterator[Request]:
        for line in spooled:
            decoded.append(line)
            yield Request(**json.loads(line))

    pending = PendingBatch(source, 2, serialized=lambda: iter(spooled))
    seen: List[bytes] = []
    restarts: List[int] = []
    pending.observe(seen.append, restart=lambda: restarts.append(len(seen)), raw=True)
    body = pending.write_body().read()
    assert seen == spooled and decoded == []  # copied as spooled, nothing parsed
    assert body == b'{"requests":[' + b",".join(spooled) + b"]}"

    parsed: List[str] = []
    pending.observe(lambda request: parsed.append(request.custom_id))  # a parsed one too
    assert restarts == [2] and seen[2:] == spooled and parsed == ["a", "b"]
    pending.transform(lambda r: attrs.evolve(r, params={"n": r.params["n"] * 10}))
    body = pending.write_body().read()
    final = [b'{"custom_id":"a","params":{"n":10}}', b'{"custom_id":"b","params":{"n":20}}']
    assert restarts == [2, 4] and seen[4:] == final and parsed[2:] == ["a", "b"]
    assert json.loads(body) == {"requests": [json.loads(line) for line in final]}
    assert body == b'{"requests":[' + b",".join(final) + b"]}"


def test_plugins_given_to_one_client_never_act_on_another(
        clock: Any, mock: responses.RequestsMock, batch_json: Any, make_requests: Any,
        result_line: Any) -> None:
    class Everything(Spy):
        @hookimpl
        def on_poll(self, batch: MessageBatch) -> None:
            self.events.append(("poll", batch.id))

        @hookimpl
        def on_result(self, result: Any) -> None:
            self.events.append(("result", result.custom_id))

    spy = Everything()
    with_plugin = BatchClient(api_key=KEY, clock=clock, plugins=[spy])
    plain = BatchClient(api_key=KEY, clock=clock)
    assert spy in with_plugin.plugins
    assert plain.plugins == []

    mock.post(BATCHES, json=batch_json("b1"))
    mock.get(f"{BATCHES}/b1", json=batch_json("b1", "ended"))
    mock.get(f"{BATCHES}/b1/results", body=result_line("a", "canceled"))
    plain.create(make_requests(1))
    plain.wait("b1")
    list(plain.results("b1"))
    assert spy.events == []

    with_plugin.wait("b1")
    assert spy.events == [("poll", "b1")]


def test_every_designed_hook_is_declared_with_a_docstring() -> None:
    names = hookspecs.hook_names()
    for name in ["before_submit", "after_submit", "on_poll", "on_result", "on_batch_end",
                 "on_job_end", "retry_delay", "poll_delay"]:
        assert name in names
    for name in names:
        doc = getattr(hookspecs, name).__doc__
        assert doc and doc.strip(), f"hook {name} has no docstring"


# --- entry points -------------------------------------------------------------------

@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A distribution on sys.path that declares a ``claudebatch`` entry point."""
    module = "cbtest_entrypoint_plugin"
    (tmp_path / f"{module}.py").write_text(
        "from claudebatch import hookimpl\n"
        "POLLS = []\n"
        "@hookimpl\n"
        "def on_poll(batch):\n"
        "    POLLS.append(batch.id)\n")
    info = tmp_path / "cbtest_entrypoint_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: cbtest-entrypoint-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[claudebatch]\ncbtest = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield module
    sys.modules.pop(module, None)


def test_entry_point_plugins_are_not_loaded_when_autoload_is_disabled(
        installed_plugin: str) -> None:
    # The autouse fixture sets CLAUDEBATCH_DISABLE_PLUGIN_AUTOLOAD=1.
    client = BatchClient(api_key=KEY)
    assert client.plugin_manager.get_plugin("cbtest") is None
    assert installed_plugin not in sys.modules


def test_entry_point_plugins_are_loaded_into_each_client_by_default(
        installed_plugin: str, monkeypatch: pytest.MonkeyPatch, clock: Any,
        mock: responses.RequestsMock, batch_json: Any) -> None:
    monkeypatch.delenv("CLAUDEBATCH_DISABLE_PLUGIN_AUTOLOAD")
    first = BatchClient(api_key=KEY, clock=clock)
    second = BatchClient(api_key=KEY, clock=clock)
    module = sys.modules[installed_plugin]
    assert first.plugin_manager.get_plugin("cbtest") is module
    assert second.plugin_manager.get_plugin("cbtest") is module
    mock.get(f"{BATCHES}/b1", json=batch_json("b1", "ended"))
    first.wait("b1")
    assert module.POLLS == ["b1"]


def test_entry_points_can_be_turned_off_per_client(
        installed_plugin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAUDEBATCH_DISABLE_PLUGIN_AUTOLOAD")
    client = BatchClient(api_key=KEY, load_entry_points=False)
    assert client.plugin_manager.get_plugin("cbtest") is None
