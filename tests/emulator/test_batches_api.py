"""The six endpoints behave as the service does: shapes, states, paging, errors."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Dict

import pytest
import requests

from claudebatch.emulator import Emulator, ManualClock

if TYPE_CHECKING:
    from conftest import Api

Req = Callable[..., Dict[str, Any]]


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_create_returns_an_in_progress_batch_with_all_ten_fields(
    api: Api, clock: ManualClock, req: Req
) -> None:
    batch = api.create([req("a"), req("b")])
    assert set(batch) == {"id", "type", "processing_status", "request_counts", "ended_at",
                          "created_at", "expires_at", "archived_at", "cancel_initiated_at",
                          "results_url"}
    assert re.fullmatch(r"msgbatch_[0-9A-Za-z]{24}", batch["id"])
    assert batch["type"] == "message_batch"
    assert batch["processing_status"] == "in_progress"
    assert batch["request_counts"] == {"processing": 2, "succeeded": 0, "errored": 0,
                                       "canceled": 0, "expired": 0}
    assert ts(batch["created_at"]).timestamp() == clock.time()
    assert ts(batch["expires_at"]) - ts(batch["created_at"]) == timedelta(hours=24)
    assert batch["results_url"] is None and batch["ended_at"] is None
    assert batch["archived_at"] is None and batch["cancel_initiated_at"] is None


def test_results_url_appears_only_once_ended(api: Api, clock: ManualClock, req: Req) -> None:
    batch = api.create([req(f"r{i}") for i in range(10)])  # 100 requests/s: 0.1 s of work
    clock.advance(0.05)
    middle = api.retrieve(batch["id"])
    assert middle["processing_status"] == "in_progress" and middle["results_url"] is None
    r = api.call("GET", f"/{batch['id']}/results", kind="results")
    assert r.status_code == 400 and "not finished" in r.json()["error"]["message"]
    clock.advance(0.05)
    ended = api.retrieve(batch["id"])
    assert ended["processing_status"] == "ended"
    assert ended["results_url"] == f"{api.emu.url}/v1/messages/batches/{batch['id']}/results"
    assert ts(ended["ended_at"]) == ts(batch["created_at"]) + timedelta(seconds=0.1)


def test_expiry_window_is_configurable(make_emulator: Callable[..., Emulator],
                                       make_api: Callable[..., Api], req: Req) -> None:
    api = make_api(make_emulator(expiry=90.0))
    batch = api.create([req("a")])
    assert ts(batch["expires_at"]) - ts(batch["created_at"]) == timedelta(seconds=90)


def test_retention_archives_results(make_emulator: Callable[..., Emulator],
                                    make_api: Callable[..., Api], clock: ManualClock,
                                    req: Req) -> None:
    api = make_api(make_emulator(retention=3600.0))
    batch = api.create([req("a")])
    clock.advance(3600)
    ended = api.retrieve(batch["id"])
    assert ended["archived_at"] is not None
    r = api.call("GET", f"/{batch['id']}/results", kind="results")
    assert r.status_code == 404


def test_list_is_newest_first_and_pages_both_ways(api: Api, clock: ManualClock,
                                                  req: Req) -> None:
    ids = []
    for _ in range(25):
        ids.append(api.create([req("a")])["id"])
        clock.advance(1)
    newest_first = ids[::-1]

    page = api.list()  # default limit 20
    assert [b["id"] for b in page["data"]] == newest_first[:20]
    assert page["has_more"] is True
    assert page["first_id"] == newest_first[0] and page["last_id"] == newest_first[19]

    rest = api.list(after_id=page["last_id"])
    assert [b["id"] for b in rest["data"]] == newest_first[20:]
    assert rest["has_more"] is False

    small = api.list(limit=3, after_id=newest_first[4])
    assert [b["id"] for b in small["data"]] == newest_first[5:8]
    assert small["has_more"] is True

    back = api.list(limit=3, before_id=newest_first[10])
    assert [b["id"] for b in back["data"]] == newest_first[7:10]
    assert back["has_more"] is True
    top = api.list(limit=3, before_id=newest_first[3])
    assert [b["id"] for b in top["data"]] == newest_first[0:3]
    assert top["has_more"] is False

    everything = api.list(limit=1000)
    assert [b["id"] for b in everything["data"]] == newest_first
    assert everything["has_more"] is False


def test_list_when_empty(api: Api) -> None:
    assert api.list() == {"data": [], "has_more": False, "first_id": None, "last_id": None}


@pytest.mark.parametrize("limit", ["0", "1001", "abc"])
def test_list_rejects_a_bad_limit(api: Api, limit: str) -> None:
    r = api.call("GET", "", params={"limit": limit})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert "limit" in r.json()["error"]["message"]


def test_list_cursor_of_a_deleted_batch_still_works(api: Api, clock: ManualClock,
                                                    req: Req) -> None:
    a = api.create([req("a")])["id"]
    clock.advance(1)
    b = api.create([req("a")])["id"]
    clock.advance(60)
    api.delete(b)
    assert [x["id"] for x in api.list(after_id=b)["data"]] == [a]


def test_cancel_goes_canceling_then_ended_with_unprocessed_canceled(
    api: Api, clock: ManualClock, req: Req
) -> None:
    batch = api.create([req(f"r{i}") for i in range(100)])  # 1 s of work
    clock.advance(0.305)
    canceled = api.cancel(batch["id"])
    assert canceled["processing_status"] == "canceling"
    assert canceled["cancel_initiated_at"] is not None
    assert sum(canceled["request_counts"].values()) == 100
    assert api.cancel(batch["id"]) == canceled  # again: no change
    clock.advance(0.5)
    assert api.retrieve(batch["id"])["processing_status"] == "canceling"
    clock.advance(0.5)  # cancel_delay (1 s) has passed
    ended = api.retrieve(batch["id"])
    assert ended["processing_status"] == "ended"
    assert ended["request_counts"] == {"processing": 0, "succeeded": 30, "errored": 0,
                                       "canceled": 70, "expired": 0}
    lines = api.results(batch["id"])
    kinds = [line["result"]["type"] for line in lines]
    assert kinds == ["succeeded"] * 30 + ["canceled"] * 70


def test_cancel_of_an_ended_batch_changes_nothing(api: Api, clock: ManualClock,
                                                  req: Req) -> None:
    batch = api.create([req("a")])
    clock.advance(5)
    ended = api.retrieve(batch["id"])
    assert api.cancel(batch["id"]) == ended


def test_delete_only_once_ended(api: Api, clock: ManualClock, req: Req) -> None:
    batch = api.create([req(f"r{i}") for i in range(10)])
    r = api.call("DELETE", f"/{batch['id']}", kind="id")
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and "Cancel it first" in error["message"]
    clock.advance(1)
    assert api.delete(batch["id"]) == {"id": batch["id"], "type": "message_batch_deleted"}
    for method, path, kind in (("GET", "", "id"), ("DELETE", "", "id"),
                               ("POST", "/cancel", "cancel"), ("GET", "/results", "results")):
        r = api.call(method, f"/{batch['id']}{path}", kind=kind)
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    assert api.list()["data"] == []
    assert api.emu.batch_ids == [batch["id"]]  # the counter still remembers it


def test_unknown_ids_and_paths_are_404(api: Api) -> None:
    for method, path, kind in (("GET", "/msgbatch_01xyz", "id"),
                               ("DELETE", "/msgbatch_01xyz", "id"),
                               ("POST", "/msgbatch_01xyz/cancel", "cancel"),
                               ("GET", "/msgbatch_01xyz/results", "results"),
                               ("GET", "/msgbatch_01xyz/unknown", ""), ("PUT", "", "")):
        r = api.call(method, path, kind=kind)
        assert r.status_code == 404, (method, path)
        assert r.json()["error"]["type"] == "not_found_error"
    r = api.session.get(f"{api.emu.url}/v1/models")
    assert r.status_code == 404 and api.check_error(r)["error"]["type"] == "not_found_error"


def test_api_key_is_checked_when_configured(make_emulator: Callable[..., Emulator],
                                            make_api: Callable[..., Api]) -> None:
    emu = make_emulator(api_key="sk-right")
    assert make_api(emu, api_key="sk-right").call("GET", "").status_code == 200
    wrong = make_api(emu, api_key="sk-wrong").call("GET", "")
    assert wrong.status_code == 401
    assert wrong.json()["error"] == {"type": "authentication_error",
                                     "message": "invalid x-api-key"}
    missing = requests.get(f"{emu.url}/v1/messages/batches",
                           headers={"anthropic-version": "2023-06-01"})
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    bearer = requests.get(f"{emu.url}/v1/messages/batches",
                          headers={"anthropic-version": "2023-06-01",
                                   "Authorization": "Bearer sk-right"})
    assert bearer.status_code == 200


def test_any_api_key_is_accepted_without_one_configured(api: Api,
                                                        make_api: Callable[..., Api]) -> None:
    assert make_api(api.emu, api_key="whatever").call("GET", "").status_code == 200


def test_anthropic_version_header_is_required(api: Api) -> None:
    r = requests.get(api.url(), headers={"x-api-key": "k"})
    assert r.status_code == 400
    assert r.json()["error"] == {"type": "invalid_request_error",
                                 "message": "anthropic-version: header is required"}
    assert r.headers["request-id"] == r.json()["request_id"]


def test_every_response_has_a_request_id(api: Api, clock: ManualClock, req: Req) -> None:
    batch = api.create([req("a")])
    clock.advance(1)
    r = api.session.get(api.url(f"/{batch['id']}/results"))
    assert r.headers["request-id"].startswith("req_")
    ids = {api.call("GET", "").headers["request-id"] for _ in range(5)}
    assert len(ids) == 5


def test_keep_alive_connection_serves_many_requests(api: Api, req: Req) -> None:
    # one requests.Session: the error answers must leave the connection usable
    batch = api.create([req("a")])
    for _ in range(3):
        assert api.call("GET", f"/{batch['id']}", kind="id").status_code == 200
        assert api.call("POST", "", json={"requests": []}).status_code == 400
        assert api.call("DELETE", f"/{batch['id']}", kind="id").status_code == 400


def test_counters(api: Api, req: Req) -> None:
    first = api.create([req("a")])
    api.retrieve(first["id"])
    api.list()
    assert api.emu.batches_created == 1
    assert api.emu.batch_ids == [first["id"]]
    assert [r.endpoint for r in api.emu.requests] == ["create", "retrieve", "list"]
    assert api.emu.requests[0].status == 200 and api.emu.requests[0].batch_id == first["id"]
    assert len(api.emu.requests_to("list")) == 1
    assert api.emu.batch(first["id"]) == api.retrieve(first["id"])


def test_ids_and_answers_are_reproducible_with_a_seed(
    make_emulator: Callable[..., Emulator], make_api: Callable[..., Api],
    clock: ManualClock, req: Req,
) -> None:
    runs = []
    for _ in range(2):
        api = make_api(make_emulator(seed=7))
        batch = api.create([req(f"r{i}", f"question {i}") for i in range(5)])
        clock.advance(10)
        runs.append((batch["id"], api.session.get(api.url(f"/{batch['id']}/results")).content))
    assert runs[0][0] == runs[1][0]
    assert runs[0][1] == runs[1][1]
