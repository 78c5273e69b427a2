"""attrs classes for every API object the Batches API returns or takes.

Field names are the API's own, so the docs of the service read straight onto
these classes. Unknown fields are ignored when parsing (the API grows); unknown
content-block types are kept whole in :class:`UnknownBlock`. Conversion lives
in :mod:`claudebatch._serde`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Literal, Optional, Tuple, Union

import attrs


@attrs.frozen
class Request:
    """One request of a batch: ``custom_id`` (``^[a-zA-Z0-9_-]{1,64}$``) and Messages ``params``.

    Plain dicts ``{"custom_id": ..., "params": {...}}`` are accepted wherever a Request is.
    """

    custom_id: str
    params: Dict[str, Any]

    def to_dict(self) -> Dict[str, Any]:
        return {"custom_id": self.custom_id, "params": self.params}


@attrs.frozen
class RequestCounts:
    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0

    @property
    def total(self) -> int:
        return self.processing + self.succeeded + self.errored + self.canceled + self.expired


ProcessingStatus = Literal["in_progress", "canceling", "ended"]


@attrs.frozen
class MessageBatch:
    id: str
    processing_status: str
    request_counts: RequestCounts
    created_at: dt.datetime
    expires_at: dt.datetime
    ended_at: Optional[dt.datetime] = None
    archived_at: Optional[dt.datetime] = None
    cancel_initiated_at: Optional[dt.datetime] = None
    results_url: Optional[str] = None
    type: str = "message_batch"

    @property
    def ended(self) -> bool:
        return self.processing_status == "ended"


@attrs.frozen
class DeletedMessageBatch:
    id: str
    type: str = "message_batch_deleted"


# --- messages -----------------------------------------------------------------

@attrs.frozen
class TextBlock:
    text: str
    citations: Optional[List[Dict[str, Any]]] = None
    type: Literal["text"] = "text"


@attrs.frozen
class ToolUseBlock:
    id: str
    name: str
    input: Any
    type: Literal["tool_use"] = "tool_use"


@attrs.frozen
class ServerToolUseBlock:
    id: str
    name: str
    input: Any
    type: Literal["server_tool_use"] = "server_tool_use"


@attrs.frozen
class ThinkingBlock:
    thinking: str
    signature: str = ""
    type: Literal["thinking"] = "thinking"


@attrs.frozen
class RedactedThinkingBlock:
    data: str
    type: Literal["redacted_thinking"] = "redacted_thinking"


@attrs.frozen
class UnknownBlock:
    """A content block of a type this version does not know, kept whole in ``data``."""

    type: str
    data: Dict[str, Any]


ContentBlock = Union[TextBlock, ToolUseBlock, ServerToolUseBlock, ThinkingBlock,
                     RedactedThinkingBlock, UnknownBlock]


@attrs.frozen
class CacheCreation:
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0


@attrs.frozen
class ServerToolUsage:
    web_search_requests: int = 0
    web_fetch_requests: int = 0


@attrs.frozen
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: Optional[int] = None
    cache_read_input_tokens: Optional[int] = None
    cache_creation: Optional[CacheCreation] = None
    server_tool_use: Optional[ServerToolUsage] = None
    service_tier: Optional[str] = None
    inference_geo: Optional[str] = None  # where it ran: "us" costs 1.1x


@attrs.frozen
class Message:
    id: str
    model: str
    content: List[ContentBlock]
    usage: Usage
    role: str = "assistant"
    stop_reason: Optional[str] = None
    stop_sequence: Optional[str] = None
    type: str = "message"

    @property
    def text(self) -> str:
        """All text blocks joined: the answer, for the common case."""
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))


# --- results ------------------------------------------------------------------

@attrs.frozen
class ErrorObject:
    """The API's ``error`` object: ``type`` (e.g. ``overloaded_error``) and ``message``."""

    type: str
    message: str = ""


@attrs.frozen
class ErrorResponse:
    error: ErrorObject
    request_id: Optional[str] = None
    type: str = "error"


@attrs.frozen
class SucceededResult:
    message: Message
    type: Literal["succeeded"] = "succeeded"


@attrs.frozen
class ErroredResult:
    error: ErrorResponse
    type: Literal["errored"] = "errored"


@attrs.frozen
class CanceledResult:
    type: Literal["canceled"] = "canceled"


@attrs.frozen
class ExpiredResult:
    type: Literal["expired"] = "expired"


ResultType = Union[SucceededResult, ErroredResult, CanceledResult, ExpiredResult]


@attrs.frozen
class Annotation:
    """What a plugin adds to one result (``annotate_result``): ``fields`` go into its
    output line beside ``custom_id`` and ``result`` (JSON values), and ``parsed``, when
    given, becomes ``result.parsed`` (any object: a typed instance). ``owns`` names the
    fields the plugin writes, whichever it gives this time: a line read back from a store
    loses them first, so an earlier run's verdict never stands beside this one's.
    ``usable`` False says the answer is not what was asked (it breaks the schema): a
    store never keeps it for reuse."""

    fields: Dict[str, Any] = attrs.field(factory=dict)
    parsed: Any = None
    owns: Tuple[str, ...] = ()
    usable: bool = True


@attrs.frozen
class BatchResult:
    """One line of a results file: which request (``custom_id``) and what came of it.

    ``parsed``: the answer as a plugin read it (the structured-output plugin's typed
    value, see the ``annotate_result`` hook); read back from an output file, the
    line's ``"parsed"`` field; None when nothing parsed it.
    """

    custom_id: str
    result: ResultType
    parsed: Any = attrs.field(default=None, eq=False)

    @property
    def type(self) -> str:
        return self.result.type
