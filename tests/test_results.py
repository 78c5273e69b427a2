"""``results()``: typed and raw streaming, the safety checks, parse errors, closing the response."""

from __future__ import annotations

import gzip
import io
import json
from typing import Any, Dict, List

import pytest
import responses

from claudebatch import (
    APIConnectionError,
    BatchClient,
    BatchNotEndedError,
    BatchResult,
    CanceledResult,
    ClaudeBatchError,
    ErroredResult,
    ExpiredResult,
    ResultsParseError,
    SucceededResult,
    UnsafeResultsURLError,
    hookimpl,
)
from claudebatch._results import iter_raw
from claudebatch._serde import structure
from claudebatch.models import (
    CacheCreation,
    RedactedThinkingBlock,
    ServerToolUsage,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    UnknownBlock,
)

KEY = "sk-ant-SECRET-123"
BATCHES = "https://api.anthropic.com/v1/messages/batches"
RESULTS_URL = f"{BATCHES}/b1/results"


@pytest.fixture
def ended(mock: responses.RequestsMock, batch_json: Any) -> Dict[str, Any]:
    """b1 has ended; its retrieve is registered."""
    body: Dict[str, Any] = batch_json("b1", "ended", succeeded=4)
    mock.get(f"{BATCHES}/b1", json=body)
    return body


def four_kinds(result_line: Any, message_json: Any) -> str:
    message = message_json(
        content=[
            {"type": "thinking", "thinking": "let me see", "signature": "sig=="},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Hello", "citations": None},
            {"type": "tool_use", "id": "toolu_1", "name": "lookup",
             "input": {"q": "x", "temperature": 0.7, "n": 3}},
            {"type": "hologram", "beam": {"colour": "blue"}, "intensity": 3},
            {"type": "text", "text": " world"},
        ],
        usage={"input_tokens": 100, "output_tokens": 20,
               "cache_creation_input_tokens": 30, "cache_read_input_tokens": 40,
               "cache_creation": {"ephemeral_5m_input_tokens": 10,
                                  "ephemeral_1h_input_tokens": 20},
               "server_tool_use": {"web_search_requests": 2},
               "service_tier": "batch"},
    )
    return (result_line("ok", message=message)
            + result_line("bad", "errored", error={"type": "error", "request_id": "req_9",
                                        "error": {"type": "overloaded_error",
                                                  "message": "Overloaded"}})
            + result_line("stopped", "canceled")
            + result_line("late", "expired"))


def test_typed_results_cover_all_four_result_types(
        client: BatchClient, mock: responses.RequestsMock, ended: Any, result_line: Any,
        message_json: Any) -> None:
    mock.get(RESULTS_URL, body=four_kinds(result_line, message_json))
    results = list(client.results("b1"))
    assert [r.custom_id for r in results] == ["ok", "bad", "stopped", "late"]
    assert all(isinstance(r, BatchResult) for r in results)
    ok, bad, stopped, late = results

    assert isinstance(ok.result, SucceededResult) and ok.type == "succeeded"
    message = ok.result.message
    assert message.text == "Hello world"
    assert [type(b) for b in message.content] == [
        ThinkingBlock, RedactedThinkingBlock, TextBlock, ToolUseBlock, UnknownBlock, TextBlock]
    assert message.content[0] == ThinkingBlock(thinking="let me see", signature="sig==")
    assert message.content[3] == ToolUseBlock(id="toolu_1", name="lookup",
                                              input={"q": "x", "temperature": 0.7, "n": 3})
    unknown = message.content[4]
    assert isinstance(unknown, UnknownBlock) and unknown.type == "hologram"
    assert unknown.data == {"type": "hologram", "beam": {"colour": "blue"}, "intensity": 3}
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (100, 20)
    assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (30, 40)
    assert usage.cache_creation == CacheCreation(ephemeral_5m_input_tokens=10,
                                                 ephemeral_1h_input_tokens=20)
    assert usage.server_tool_use == ServerToolUsage(web_search_requests=2)
    assert usage.service_tier == "batch"
    assert message.stop_reason == "end_turn"

    assert isinstance(bad.result, ErroredResult) and bad.type == "errored"
    assert bad.result.error.error.type == "overloaded_error"
    assert bad.result.error.error.message == "Overloaded"
    assert bad.result.error.request_id == "req_9"
    assert isinstance(stopped.result, CanceledResult)
    assert isinstance(late.result, ExpiredResult)


def test_raw_results_are_the_plain_lines(client: BatchClient, mock: responses.RequestsMock,
                                         ended: Any, result_line: Any,
                                         message_json: Any) -> None:
    body = four_kinds(result_line, message_json)
    mock.get(RESULTS_URL, body=body)
    raw = list(client.results("b1", raw=True))
    assert raw == [json.loads(line) for line in body.splitlines()]  # floats, not Decimals
    json.dumps(raw)  # plain JSON types: a caller can write them straight back out


def test_multibyte_text_survives_chunk_boundaries(
        client: BatchClient, mock: responses.RequestsMock, ended: Any, result_line: Any,
        message_json: Any) -> None:
    text = "naïve café ✓ 日本語 😀" * 20
    body = "".join(result_line(f"r{i}", message=message_json(text)) for i in range(1500))
    assert len(body.encode()) > 4 * 64 * 1024
    mock.get(RESULTS_URL, body=body.encode("utf-8"))
    texts = [r.result.message.text for r in client.results("b1")]  # type: ignore[union-attr]
    assert len(texts) == 1500
    assert set(texts) == {text}


def test_unknown_fields_anywhere_are_ignored(client: BatchClient, mock: responses.RequestsMock,
                                             ended: Any, message_json: Any) -> None:
    message = message_json(container={"id": "c1"}, brand_new=True)
    message["usage"]["future_tokens"] = 5
    message["content"][0]["future"] = "x"
    line = {"custom_id": "a", "new_top_level": 1,
            "result": {"type": "succeeded", "message": message, "new_result_field": [1]}}
    mock.get(RESULTS_URL, body=json.dumps(line) + "\n")
    [result] = list(client.results("b1"))
    assert result.custom_id == "a"
    assert result.result.message.text == "hello"  # type: ignore[union-attr]


def test_results_without_a_trailing_newline_or_with_blank_lines_parse(
        client: BatchClient, mock: responses.RequestsMock, ended: Any, result_line: Any) -> None:
    body = result_line("a", "canceled") + "\n" + result_line("b", "expired").rstrip("\n")
    mock.get(RESULTS_URL, body=body)
    assert [r.custom_id for r in client.results("b1")] == ["a", "b"]


def test_results_of_a_batch_object_skip_the_retrieve(
        client: BatchClient, mock: responses.RequestsMock, batch_json: Any,
        result_line: Any) -> None:
    from claudebatch import MessageBatch

    batch = structure(batch_json("b1", "ended"), MessageBatch)
    mock.get(RESULTS_URL, body=result_line("a", "canceled"))
    assert [r.custom_id for r in client.results(batch)] == ["a"]
    assert [c.request.url for c in mock.calls] == [RESULTS_URL]


def test_the_results_request_is_authenticated(client: BatchClient, mock: responses.RequestsMock,
                                              ended: Any, result_line: Any) -> None:
    mock.get(RESULTS_URL, body=result_line("a", "canceled"))
    list(client.results("b1"))
    assert mock.calls[-1].request.headers["x-api-key"] == KEY
    assert mock.calls[-1].request.req_kwargs["stream"] is True


@pytest.mark.parametrize("status", ["in_progress", "canceling"])
def test_a_batch_that_has_not_ended_is_refused(
        client: BatchClient, mock: responses.RequestsMock, batch_json: Any,
        status: str) -> None:
    mock.get(f"{BATCHES}/b1", json=batch_json("b1", status))
    with pytest.raises(BatchNotEndedError) as info:
        client.results("b1")
    assert "b1" in str(info.value)
    assert status in str(info.value)
    assert len(mock.calls) == 1


def test_an_ended_batch_without_results_url_is_refused(
        client: BatchClient, mock: responses.RequestsMock, batch_json: Any) -> None:
    mock.get(f"{BATCHES}/b1", json=batch_json("b1", "ended", results_url=None,
                                              archived_at="2024-01-01T00:00:00Z"))
    with pytest.raises(BatchNotEndedError):
        client.results("b1")


@pytest.mark.parametrize("url", [
    "https://evil.example/v1/messages/batches/b1/results",
    "http://api.anthropic.com/v1/messages/batches/b1/results",
    "https://api.anthropic.com:8443/v1/messages/batches/b1/results",
    "https://api.anthropic.com.evil.example/v1/messages/batches/b1/results",
])
def test_a_results_url_on_another_origin_is_refused_and_never_fetched(
        client: BatchClient, batch_json: Any, url: str) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{BATCHES}/b1", json=batch_json("b1", "ended", results_url=url))
        elsewhere = mock.get(url, body="")
        with pytest.raises(UnsafeResultsURLError) as info:
            list(client.results("b1"))
        assert elsewhere.call_count == 0
        assert len(mock.calls) == 1
    assert url in str(info.value)
    assert KEY not in str(info.value)


def test_a_results_url_on_the_configured_host_with_explicit_default_port_is_fetched(
        client: BatchClient, mock: responses.RequestsMock, batch_json: Any,
        result_line: Any) -> None:
    url = "https://api.anthropic.com:443/v1/messages/batches/b1/results"
    mock.get(f"{BATCHES}/b1", json=batch_json("b1", "ended", results_url=url))
    mock.get(url, body=result_line("a", "canceled"))
    assert len(list(client.results("b1"))) == 1


def test_a_redirect_to_another_host_never_carries_the_key(
        client: BatchClient, batch_json: Any, result_line: Any) -> None:
    storage = "https://storage.example/signed/b1.jsonl"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{BATCHES}/b1", json=batch_json("b1", "ended"))
        mock.get(RESULTS_URL, status=302, headers={"location": storage})
        mock.get(storage, body=result_line("a", "canceled"))
        try:
            outcome: Any = [r.custom_id for r in client.results("b1")]
        except ClaudeBatchError as exc:  # refusing the redirect is fine too
            outcome = exc
        elsewhere = [c for c in mock.calls if c.request.url.startswith("https://storage.")]
        assert all("x-api-key" not in c.request.headers for c in elsewhere)
    # ... but not by silently yielding nothing.
    assert outcome == ["a"] or isinstance(outcome, ClaudeBatchError)


def test_a_gzip_encoded_body_is_decoded(client: BatchClient, mock: responses.RequestsMock,
                                        ended: Any, result_line: Any) -> None:
    body = result_line("a", "canceled") + result_line("b", "expired")
    mock.get(RESULTS_URL, body=gzip.compress(body.encode()),
             headers={"content-encoding": "gzip"})
    assert [r.custom_id for r in client.results("b1")] == ["a", "b"]


def test_a_malformed_line_names_the_custom_id_before_it_and_a_byte_offset(
        client: BatchClient, mock: responses.RequestsMock, ended: Any, result_line: Any) -> None:
    good = result_line("first", "canceled") + result_line("second", "expired")
    mock.get(RESULTS_URL, body=good + '{"custom_id": "third", "result": {oops\n')
    seen: List[str] = []
    with pytest.raises(ResultsParseError) as info:
        for result in client.results("b1"):
            seen.append(result.custom_id)
    assert seen == ["first", "second"]  # everything before the bad line was delivered
    error = info.value
    assert error.custom_id == "second"
    assert error.byte_offset is not None and error.byte_offset >= len(good)
    assert "'second'" in str(error)
    assert str(error.byte_offset) in str(error)


def test_a_malformed_first_line_says_so(client: BatchClient, mock: responses.RequestsMock,
                                        ended: Any) -> None:
    mock.get(RESULTS_URL, body="not json at all\n")
    with pytest.raises(ResultsParseError) as info:
        list(client.results("b1", raw=True))
    assert info.value.custom_id is None
    assert "first" in str(info.value)


@pytest.mark.parametrize("line", ['[1, 2]', '{"custom_id": "x"}', '{"result": {}}', '42'])
def test_a_line_that_is_not_a_result_object_is_a_parse_error(
        client: BatchClient, mock: responses.RequestsMock, ended: Any, result_line: Any,
        line: str) -> None:
    mock.get(RESULTS_URL, body=result_line("a", "canceled") + line + "\n")
    with pytest.raises(ResultsParseError) as info:
        list(client.results("b1", raw=True))
    assert info.value.custom_id == "a"


def test_an_unknown_result_type_names_its_custom_id(
        client: BatchClient, mock: responses.RequestsMock, ended: Any, result_line: Any) -> None:
    mock.get(RESULTS_URL, body=result_line("a", "canceled") + result_line("z", "teleported"))
    with pytest.raises(ResultsParseError) as info:
        list(client.results("b1"))
    assert info.value.custom_id == "z"
    assert "'z'" in str(info.value)


class RecordingResults:
    def __init__(self) -> None:
        self.seen: List[Any] = []

    @hookimpl
    def on_result(self, result: BatchResult, context: Any) -> None:
        self.seen.append((result, context))


@pytest.mark.parametrize("raw", [False, True])
def test_on_result_is_called_for_each_result_before_the_caller_sees_it(
        clock: Any, mock: responses.RequestsMock, ended: Any, result_line: Any,
        raw: bool) -> None:
    recorder = RecordingResults()
    client = BatchClient(api_key=KEY, clock=clock, plugins=[recorder])
    mock.get(RESULTS_URL, body="".join(result_line(f"r{i}", "canceled") for i in range(3)))
    counts = []
    for _ in client.results("b1", raw=raw):
        counts.append(len(recorder.seen))
    assert counts == [1, 2, 3]
    assert [r.custom_id for r, _ in recorder.seen] == ["r0", "r1", "r2"]
    assert all(isinstance(r, BatchResult) for r, _ in recorder.seen)
    assert all(ctx is client.context for _, ctx in recorder.seen)


def big_body(result_line: Any, n: int = 3000) -> str:
    """A body far larger than one read (so the stream is still open after the first result)."""
    pad = "x" * 100
    return "".join(result_line(f"r{i}", "canceled", note=pad) for i in range(n))


def test_the_response_is_closed_when_the_caller_stops_early(
        client: BatchClient, mock: responses.RequestsMock, ended: Any, result_line: Any) -> None:
    body = big_body(result_line)
    assert len(body) > 4 * 64 * 1024
    mock.get(RESULTS_URL, body=body)
    for result in client.results("b1"):
        raw = mock.calls[-1].response.raw
        assert not raw.closed  # still streaming
        assert result.custom_id == "r0"
        break
    assert raw.closed


def test_the_response_is_closed_when_the_iterator_is_closed(
        client: BatchClient, mock: responses.RequestsMock, ended: Any, result_line: Any) -> None:
    mock.get(RESULTS_URL, body=big_body(result_line))
    iterator = client.results("b1", raw=True)
    next(iterator)
    raw = mock.calls[-1].response.raw
    assert not raw.closed
    iterator.close()
    assert raw.closed


def test_the_response_is_closed_when_a_parse_error_breaks_the_stream(
        client: BatchClient, mock: responses.RequestsMock, ended: Any, result_line: Any) -> None:
    mock.get(RESULTS_URL, body=result_line("a", "canceled") + "{bad\n" + big_body(result_line))
    with pytest.raises(ResultsParseError):
        list(client.results("b1"))
    assert mock.calls[-1].response.raw.closed


def test_the_response_is_closed_when_on_result_raises(
        clock: Any, mock: responses.RequestsMock, ended: Any, result_line: Any) -> None:
    class Boom:
        @hookimpl
        def on_result(self, result: BatchResult) -> None:
            raise RuntimeError("plugin failed")

    client = BatchClient(api_key=KEY, clock=clock, plugins=[Boom()])
    mock.get(RESULTS_URL, body=big_body(result_line))
    with pytest.raises(RuntimeError, match="plugin failed"):
        list(client.results("b1"))
    assert mock.calls[-1].response.raw.closed


def test_the_stream_is_read_in_chunks_not_whole(
        client: BatchClient, mock: responses.RequestsMock, ended: Any, result_line: Any) -> None:
    body = big_body(result_line, n=6000)  # about 1 MB
    mock.get(RESULTS_URL, body=body)
    iterator = client.results("b1", raw=True)
    next(iterator)
    raw = mock.calls[-1].response.raw
    assert raw.tell() < len(body) // 4
    iterator.close()


class BreakingReader:
    """A socket-like reader that dies after handing out ``data``."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        if not chunk and size != 0:
            raise ConnectionResetError("connection reset by peer")
        return chunk


def test_a_stream_that_breaks_midway_is_a_connection_error_naming_the_last_result(
        result_line: Any) -> None:
    data = (result_line("a", "canceled") + '{"custom_id": "b", "res').encode()
    seen = []
    with pytest.raises(APIConnectionError) as info:
        for value in iter_raw(BreakingReader(data)):
            seen.append(value["custom_id"])
    assert seen == ["a"]
    assert "'a'" in str(info.value)


class _Pieces:
    """A stream read in pieces of random sizes (as a network delivers it)."""

    def __init__(self, data: bytes, rng: Any) -> None:
        self.data, self.at, self.rng = data, 0, rng

    def read(self, size: int = -1) -> bytes:
        piece = self.data[self.at:self.at + self.rng.randint(1, 300)]
        self.at += len(piece)
        return piece


@pytest.mark.parametrize("seed", range(40))
def test_a_bad_line_is_named_at_its_exact_byte_and_after_the_right_custom_id(
        seed: int) -> None:
    """Anywhere in the stream, whatever the cut of the reads, among repeated lines, blank
    lines and CRLF ends: the offset is where the bad line starts, the custom_id the one
    before it."""
    import random

    from claudebatch._results import iter_lines

    rng = random.Random(seed)
    good = [b'{"custom_id":"r%d","result":{"type":"canceled"}}' % rng.randint(0, 3)
            for _ in range(rng.randint(0, 30))]
    ends = [rng.choice([b"\n", b"\r\n"]) for _ in good]
    blanks = {rng.randrange(len(good) + 1) for _ in range(3)}
    bad = rng.choice([b'{"custom_id":"x","result":{oops', b'[1, 2]', b'{"custom_id": 7}',
                      b'{"custom_id":"r1","result":"no"}', b'  {"custom_id": nope'])
    data = b""
    last = None
    for i, (line, end) in enumerate(zip(good, ends)):
        if i in blanks:
            data += b"  \n"
        data += line + end
        last = json.loads(line)["custom_id"]
    where = len(data)
    data += bad + b"\n" + (good[0] + b"\n" if good else b"")
    seen = []
    with pytest.raises(ResultsParseError) as info:
        for value, _ in iter_lines(_Pieces(data, rng)):
            seen.append(value["custom_id"])
    assert len(seen) == len(good)
    assert (info.value.byte_offset, info.value.custom_id) == (where, last)
