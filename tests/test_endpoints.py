"""The six endpoint calls: method, path, body, and the typed objects they return."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import responses
from responses import matchers

from claudebatch import (
    BatchClient,
    DeletedMessageBatch,
    MessageBatch,
    Request,
    RequestCounts,
)

BATCHES = "https://api.anthropic.com/v1/messages/batches"


def test_create_posts_the_requests_and_returns_the_batch(
        client: BatchClient, mock: responses.RequestsMock, batch_json: Any,
        make_requests: Any) -> None:
    items = make_requests(2)
    mock.post(BATCHES, json=batch_json("msgbatch_new", processing=2))
    batch = client.create([items[0], Request(items[1]["custom_id"], items[1]["params"])])
    assert isinstance(batch, MessageBatch)
    assert batch.id == "msgbatch_new"
    assert batch.request_counts.total == 2
    assert len(mock.calls) == 1
    sent = json.loads(mock.calls[0].request.body)
    assert sent == {"requests": items}


def test_create_accepts_a_generator(client: BatchClient, mock: responses.RequestsMock,
                                    batch_json: Any, make_requests: Any) -> None:
    mock.post(BATCHES, json=batch_json("b1", processing=3))
    batch = client.create(r for r in make_requests(3))
    assert batch.request_counts.processing == 3


def test_retrieve_parses_every_field(client: BatchClient, mock: responses.RequestsMock,
                                     batch_json: Any) -> None:
    body = batch_json("msgbatch_01", "ended", succeeded=3, errored=1, canceled=2, expired=4,
                      cancel_initiated_at="2023-11-14T22:20:00.5Z",
                      archived_at="2023-11-20T00:00:00+00:00")
    mock.get(f"{BATCHES}/msgbatch_01", json=body)
    batch = client.retrieve("msgbatch_01")
    assert batch.id == "msgbatch_01"
    assert batch.type == "message_batch"
    assert batch.processing_status == "ended" and batch.ended
    assert batch.request_counts == RequestCounts(processing=0, succeeded=3, errored=1,
                                                 canceled=2, expired=4)
    assert batch.request_counts.total == 10
    utc = dt.timezone.utc
    assert batch.created_at == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=utc)
    assert batch.expires_at == dt.datetime(2023, 11, 15, 22, 13, 20, tzinfo=utc)
    assert batch.ended_at == dt.datetime(2023, 11, 14, 22, 14, 20, tzinfo=utc)
    assert batch.cancel_initiated_at == dt.datetime(2023, 11, 14, 22, 20, 0, 500000, tzinfo=utc)
    assert batch.archived_at == dt.datetime(2023, 11, 20, tzinfo=utc)
    assert batch.results_url == f"{BATCHES}/msgbatch_01/results"


def test_retrieve_tolerates_unknown_fields_and_nanosecond_times(
        client: BatchClient, mock: responses.RequestsMock, batch_json: Any) -> None:
    body = batch_json("b1", created_at=0)
    body["created_at"] = "2024-08-20T18:37:24.100435123Z"
    body["some_future_field"] = {"nested": [1, 2]}
    body["request_counts"]["some_new_count"] = 7
    mock.get(f"{BATCHES}/b1", json=body)
    batch = client.retrieve("b1")
    assert batch.created_at == dt.datetime(2024, 8, 20, 18, 37, 24, 100435,
                                           tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("bad_id", ["", "a/b", "../secrets"])
def test_ids_that_would_change_the_path_are_refused_before_sending(
        client: BatchClient, mock: responses.RequestsMock, bad_id: str) -> None:
    for call in (client.retrieve, client.cancel, client.delete):
        with pytest.raises(ValueError):
            call(bad_id)
    assert len(mock.calls) == 0


@pytest.mark.parametrize("bad_id", ["..", ".", "b1?limit=1", "b1#frag"])
def test_ids_with_url_syntax_are_refused_before_sending(
        client: BatchClient, bad_id: str) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for call in (client.retrieve, client.cancel, client.delete):
            with pytest.raises(ValueError):
                call(bad_id)
        assert len(mock.calls) == 0


def test_cancel_posts_to_the_cancel_path(client: BatchClient, mock: responses.RequestsMock,
                                         batch_json: Any) -> None:
    mock.post(f"{BATCHES}/b1/cancel", json=batch_json("b1", "canceling"))
    batch = client.cancel("b1")
    assert batch.processing_status == "canceling"
    assert mock.calls[0].request.method == "POST"


def test_delete_returns_a_deleted_batch(client: BatchClient, mock: responses.RequestsMock) -> None:
    mock.delete(f"{BATCHES}/b1", json={"id": "b1", "type": "message_batch_deleted"})
    assert client.delete("b1") == DeletedMessageBatch(id="b1", type="message_batch_deleted")


def _page(batch_json: Any, ids: list, has_more: bool) -> dict:
    return {"data": [batch_json(i) for i in ids], "has_more": has_more,
            "first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None}


def test_list_pages_with_after_id_over_several_pages(
        client: BatchClient, mock: responses.RequestsMock, batch_json: Any) -> None:
    mock.get(BATCHES, match=[matchers.query_param_matcher({"limit": "2"})],
             json=_page(batch_json, ["b9", "b8"], True))
    mock.get(BATCHES, match=[matchers.query_param_matcher({"limit": "2", "after_id": "b8"})],
             json=_page(batch_json, ["b7", "b6"], True))
    mock.get(BATCHES, match=[matchers.query_param_matcher({"limit": "2", "after_id": "b6"})],
             json=_page(batch_json, ["b5"], False))
    ids = [b.id for b in client.list(limit=2)]
    assert ids == ["b9", "b8", "b7", "b6", "b5"]
    assert len(mock.calls) == 3


def test_list_starts_after_the_given_after_id(
        client: BatchClient, mock: responses.RequestsMock, batch_json: Any) -> None:
    mock.get(BATCHES, match=[matchers.query_param_matcher({"after_id": "b9"})],
             json=_page(batch_json, ["b8", "b7"], True))
    mock.get(BATCHES, match=[matchers.query_param_matcher({"after_id": "b7"})],
             json=_page(batch_json, ["b6"], False))
    assert [b.id for b in client.list(after_id="b9")] == ["b8", "b7", "b6"]


def test_list_pages_toward_newer_batches_with_before_id(
        client: BatchClient, mock: responses.RequestsMock, batch_json: Any) -> None:
    mock.get(BATCHES, match=[matchers.query_param_matcher({"limit": "2", "before_id": "b1"})],
             json=_page(batch_json, ["b3", "b2"], True))
    mock.get(BATCHES, match=[matchers.query_param_matcher({"limit": "2", "before_id": "b3"})],
             json=_page(batch_json, ["b5", "b4"], True))
    mock.get(BATCHES, match=[matchers.query_param_matcher({"limit": "2", "before_id": "b5"})],
             json=_page(batch_json, ["b6"], False))
    ids = [b.id for b in client.list(limit=2, before_id="b1")]
    assert sorted(ids) == ["b2", "b3", "b4", "b5", "b6"]
    assert len(mock.calls) == 3


def test_list_fetches_the_next_page_only_when_needed(
        client: BatchClient, mock: responses.RequestsMock, batch_json: Any) -> None:
    mock.get(BATCHES, json=_page(batch_json, ["b9", "b8"], True))
    iterator = client.list()
    assert len(mock.calls) == 0
    assert next(iterator).id == "b9"
    assert next(iterator).id == "b8"
    assert len(mock.calls) == 1


def test_list_of_no_batches_is_empty(client: BatchClient, mock: responses.RequestsMock) -> None:
    mock.get(BATCHES, json={"data": [], "has_more": False, "first_id": None, "last_id": None})
    assert list(client.list()) == []


def test_list_refuses_both_cursors(client: BatchClient) -> None:
    with pytest.raises(ValueError):
        list(client.list(before_id="a", after_id="b"))
