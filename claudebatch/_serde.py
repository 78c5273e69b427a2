"""The one cattrs converter: API JSON <-> attrs models.

Configured once here so every module parses the same way: RFC 3339 times become
aware datetimes, tagged unions dispatch on ``type``, unknown keys are ignored and
unknown content blocks survive as :class:`~claudebatch.models.UnknownBlock`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Type, TypeVar

import cattrs

from .models import (
    BatchResult,
    CacheCreation,
    CanceledResult,
    ContentBlock,
    ErroredResult,
    ExpiredResult,
    Message,
    RedactedThinkingBlock,
    ResultType,
    ServerToolUsage,
    ServerToolUseBlock,
    SucceededResult,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    UnknownBlock,
    Usage,
)

T = TypeVar("T")

converter = cattrs.Converter(detailed_validation=False)

_FRACTION = re.compile(r"\.(\d+)")


def parse_datetime(value: str) -> dt.datetime:
    """Parse an RFC 3339 time, any number of fraction digits, ``Z`` or an offset."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # fromisoformat before 3.11 wants exactly 3 or 6 fraction digits.
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed


def format_datetime(value: dt.datetime) -> str:
    """The API's own form: UTC with microseconds and a ``Z``."""
    utc = value.astimezone(dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


converter.register_structure_hook(dt.datetime, lambda v, _: parse_datetime(v))


def _optional(cls: Type[Any]) -> Callable[[Any, Any], Any]:
    inner = converter.get_structure_hook(cls)
    return lambda v, _: None if v is None else inner(v, cls)


# JSON already gives these types: pass them through instead of re-checking each
# (the results stream structures millions of objects; this halves its cost).
for _plain in (str, int, Optional[str], Optional[int], Optional[List[Dict[str, Any]]]):
    converter.register_structure_hook(_plain, lambda v, _: v)
converter.register_unstructure_hook(dt.datetime, format_datetime)


def _tagged_union(classes: Mapping[str, Type[Any]],
                  fallback: Callable[[Dict[str, Any]], Any]) -> Callable[[Any, Any], Any]:
    structurers = {tag: (converter.gen_structure_attrs_fromdict(cls), cls)
                   for tag, cls in classes.items()}

    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object with a 'type', got {type(value).__name__}")
        found = structurers.get(value.get("type"))  # type: ignore[arg-type]
        return found[0](value, found[1]) if found else fallback(value)

    return structure


def _unknown_block(value: Dict[str, Any]) -> UnknownBlock:
    return UnknownBlock(type=str(value.get("type", "")), data=value)


def _unknown_result(value: Dict[str, Any]) -> Any:
    raise ValueError(f"unknown result type {value.get('type')!r}")


converter.register_structure_hook(
    ContentBlock,
    _tagged_union(
        {
            "text": TextBlock,
            "tool_use": ToolUseBlock,
            "server_tool_use": ServerToolUseBlock,
            "thinking": ThinkingBlock,
            "redacted_thinking": RedactedThinkingBlock,
        },
        _unknown_block,
    ),
)
converter.register_unstructure_hook(UnknownBlock, lambda block: block.data)

converter.register_structure_hook(
    ResultType,
    _tagged_union(
        {
            "succeeded": SucceededResult,
            "errored": ErroredResult,
            "canceled": CanceledResult,
            "expired": ExpiredResult,
        },
        _unknown_result,
    ),
)



# The results stream builds millions of these: hand-written hooks for the hot
# classes, about twice as fast as the generated ones. Same rules: unknown keys
# ignored, absent optional fields None.
def _structure_usage(d: Dict[str, Any], _: Any) -> Usage:
    creation = d.get("cache_creation")
    tools = d.get("server_tool_use")
    return Usage(
        input_tokens=d.get("input_tokens") or 0,
        output_tokens=d.get("output_tokens") or 0,
        cache_creation_input_tokens=d.get("cache_creation_input_tokens"),
        cache_read_input_tokens=d.get("cache_read_input_tokens"),
        cache_creation=None if creation is None else CacheCreation(
            creation.get("ephemeral_5m_input_tokens") or 0,
            creation.get("ephemeral_1h_input_tokens") or 0),
        server_tool_use=None if tools is None else converter.structure(tools, ServerToolUsage),
        service_tier=d.get("service_tier"),
        inference_geo=d.get("inference_geo"),
    )


_structure_block = converter.get_structure_hook(ContentBlock)


def _structure_message(d: Dict[str, Any], _: Any = None) -> Message:
    return Message(
        id=d["id"],
        model=d["model"],
        content=[TextBlock(b["text"], b.get("citations"))
                 if b.get("type") == "text" and "text" in b else _structure_block(b, ContentBlock)
                 for b in d["content"]],
        usage=_structure_usage(d.get("usage") or {}, Usage),
        role=d.get("role", "assistant"),
        stop_reason=d.get("stop_reason"),
        stop_sequence=d.get("stop_sequence"),
        type=d.get("type", "message"),
    )


converter.register_structure_hook(Usage, _structure_usage)
converter.register_structure_hook(Message, _structure_message)
_structure_result_type = converter.get_structure_hook(ResultType)


def structure(value: Any, cls: Type[T]) -> T:
    """Parse JSON-shaped ``value`` into ``cls``."""
    return converter.structure(value, cls)


def unstructure(value: Any) -> Any:
    """An attrs model back to JSON-shaped data in the API's field names."""
    return converter.unstructure(value)


structure_message = _structure_message


def structure_result(value: Dict[str, Any]) -> BatchResult:
    """One results line to a BatchResult, built whole (see :mod:`claudebatch._lazy` for
    the hot path of :mod:`claudebatch._results`)."""
    result = value["result"]
    if result.get("type") == "succeeded":
        return BatchResult(value["custom_id"],
                           SucceededResult(_structure_message(result["message"], Message)),
                           value.get("parsed"))
    return BatchResult(value["custom_id"], _structure_result_type(result, ResultType),
                       value.get("parsed"))
