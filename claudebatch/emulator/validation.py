"""Checks on one request's ``params``, as the service makes them while processing.

A batch is accepted whatever its params hold; a request whose params the Messages
API would reject comes back as that request's ``errored`` result carrying the error
the Messages API would have answered (``invalid_request_error``, or
``not_found_error`` for an unknown model).
"""

from __future__ import annotations

from typing import Any, Dict, FrozenSet, NamedTuple, Optional

from ..apirules import (
    BETA_ONLY_PARAMS,
    DEFAULT_API_VERSION,
    EXTENDED_OUTPUT_BETA,
    EXTENDED_OUTPUT_TOKENS,
    SAMPLING_PARAMS,
    version_problems,
)
from ..catalog import family
from ..limits import BATCH_REFUSED_PARAMS, MIN_MAX_TOKENS
from .catalog import Catalog
from .prompt import TTL_SECONDS, cache_markers
from .schema import params_error


class Dialect(NamedTuple):
    """What a create's headers asked for: its ``anthropic-version`` and ``anthropic-beta``."""

    version: str = DEFAULT_API_VERSION
    betas: FrozenSet[str] = frozenset()
    beta_path: bool = False  # the ?beta=true endpoint: the beta schema, features still gated

    @property
    def beta_schema(self) -> bool:
        return self.beta_path or bool(self.betas)


PLAIN = Dialect()

MAX_CACHE_BREAKPOINTS = 4
_CHOICES = ("auto", "any", "tool", "none")
_THINKING = ("enabled", "disabled", "adaptive", "between_tools")


class ParamError(NamedTuple):
    type: str
    message: str


def _invalid(message: str) -> ParamError:
    return ParamError("invalid_request_error", message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate(
    params: Dict[str, Any], catalog: Catalog, *, dialect: Dialect = PLAIN,
    params_json: Optional[str] = None,
) -> Optional[ParamError]:
    """The error the service would answer for these params, or None if they are fine.

    Checked in turn: what a batch refuses, what the API version refuses, the
    spec's schema (the beta one when the create named any beta), the betas that
    beta parameters need, then the rules no schema says. ``params_json``, the
    params serialised, lets the cache_control checks be skipped when the key
    appears nowhere."""
    for key in params:
        if key in BATCH_REFUSED_PARAMS:
            return _invalid(f"{key}: not supported for Message Batches requests")
    for field, why in version_problems(params, dialect.version):
        if field in SAMPLING_PARAMS:
            return _invalid(f"{field}: Extra inputs are not permitted")
        return _invalid(f"{field}: {why}")
    if "max_tokens" in params and _is_int(params["max_tokens"]) \
            and params["max_tokens"] < MIN_MAX_TOKENS:  # the spec allows 0; a batch does not
        return _invalid(f"max_tokens: Input should be greater than or equal to "
                        f"{MIN_MAX_TOKENS} for Message Batches requests")
    problem = params_error(params, beta=dialect.beta_schema)
    if problem is not None:
        return _invalid(problem)
    for key, enabling in BETA_ONLY_PARAMS.items():
        if params.get(key) is not None \
                and not dialect.betas.intersection(b for b in enabling if b):
            names = ", ".join(b for b in enabling if b)
            return _invalid(f"{key}: this parameter requires the anthropic-beta header "
                            f"to include one of: {names}")

    model = params.get("model")
    if "model" not in params:
        return _invalid("model: Field required")
    if not isinstance(model, str):
        return _invalid("model: Input should be a valid string")

    if "max_tokens" not in params:
        return _invalid("max_tokens: Field required")
    if not _is_int(params["max_tokens"]):
        return _invalid("max_tokens: Input should be a valid integer")
    max_tokens: int = params["max_tokens"]

    error = _check_messages(params)
    if error is not None:
        return error

    if params.get("stream") is True:
        return _invalid("stream: streaming is not supported for Message Batches requests")
    if "stream" in params and not isinstance(params["stream"], bool):
        return _invalid("stream: Input should be a valid boolean")

    system = params.get("system")
    if system is not None and not isinstance(system, (str, list)):
        return _invalid("system: Input should be a valid string or a list of text blocks")
    if isinstance(system, list):
        for i, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text":
                return _invalid(f"system.{i}: Input should be a text block")
            if not isinstance(block.get("text"), str):
                return _invalid(f"system.{i}.text: Input should be a valid string")

    for name, low, high in (("temperature", 0.0, 1.0), ("top_p", 0.0, 1.0)):
        if name in params:
            value = params[name]
            if not _is_number(value):
                return _invalid(f"{name}: Input should be a valid number")
            if not low <= value <= high:
                return _invalid(f"{name}: Input should be between {low:g} and {high:g}")
    if "top_k" in params and (not _is_int(params["top_k"]) or params["top_k"] < 0):
        return _invalid("top_k: Input should be a non-negative integer")

    stops = params.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops)
    ):
        return _invalid("stop_sequences: Input should be a list of non-empty strings")

    if "metadata" in params and not isinstance(params["metadata"], (dict, type(None))):
        return _invalid("metadata: Input should be a valid dictionary")

    error = _check_tools(params)
    if error is not None:
        return error
    error = _check_thinking(params, max_tokens)
    if error is not None:
        return error
    if params_json is None or '"cache_control"' in params_json:
        error = _check_cache_control(params)
        if error is not None:
            return error

    info = catalog.lookup(model)
    if info is None:
        return ParamError("not_found_error", f"model: {model}")
    found = family(model)
    if "inference_geo" in params and params["inference_geo"] is not None \
            and found is not None and not found.inference_geo:
        return _invalid(f"inference_geo: is not supported for model {info.resolved}")
    most = info.max_output
    if EXTENDED_OUTPUT_BETA in dialect.betas and found is not None and found.extended_output:
        most = max(most, EXTENDED_OUTPUT_TOKENS)
    if max_tokens > most:
        return _invalid(
            f"max_tokens: {max_tokens} > {most}, which is the maximum allowed "
            f"number of output tokens for {info.resolved}"
        )
    return None


def _check_messages(params: Dict[str, Any]) -> Optional[ParamError]:
    if "messages" not in params:
        return _invalid("messages: Field required")
    messages = params["messages"]
    if not isinstance(messages, list):
        return _invalid("messages: Input should be a valid list")
    if not messages:
        return _invalid("messages: at least one message is required")
    last = len(messages) - 1
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return _invalid(f"messages.{i}: Input should be a valid dictionary")
        for key in message:
            if key not in ("role", "content"):
                return _invalid(f"messages.{i}.{key}: Extra inputs are not permitted")
        role = message.get("role")
        if role not in ("user", "assistant"):
            return _invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if "content" not in message:
            return _invalid(f"messages.{i}.content: Field required")
        content = message["content"]
        if isinstance(content, str):
            empty = content == ""
        elif isinstance(content, list):
            empty = not content
            for j, block in enumerate(content):
                if not isinstance(block, dict):
                    return _invalid(f"messages.{i}.content.{j}: Input should be a valid dictionary")
                if "type" not in block:
                    return _invalid(f"messages.{i}.content.{j}.type: Field required")
                if block["type"] == "text" and not isinstance(block.get("text"), str):
                    return _invalid(
                        f"messages.{i}.content.{j}.text: Input should be a valid string"
                    )
        else:
            return _invalid(f"messages.{i}.content: Input should be a valid string or list")
        if empty and not (i == last and role == "assistant"):
            return _invalid(
                f"messages.{i}: all messages must have non-empty content except for the "
                "optional final assistant message"
            )
    return None


def _check_tools(params: Dict[str, Any]) -> Optional[ParamError]:
    tools = params.get("tools")
    names = set()
    if tools is not None:
        if not isinstance(tools, list):
            return _invalid("tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                return _invalid(f"tools.{i}: Input should be a valid dictionary")
            name = tool.get("name")
            if not isinstance(name, str):
                continue  # a tool without a name (mcp_toolset): the schema said what it needs
            if name in names:
                return _invalid(f"tools: Tool names must be unique ({name!r} appears twice)")
            names.add(name)
            if "type" not in tool and not isinstance(tool.get("input_schema"), dict):
                return _invalid(f"tools.{i}.input_schema: Field required")
    choice = params.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in _CHOICES:
            return _invalid("tool_choice: Input should be auto, any, tool or none")
        if choice["type"] == "tool" and choice.get("name") not in names:
            return _invalid(f"tool_choice.name: no tool named {choice.get('name')!r} in tools")
        if choice["type"] == "any" and not names:
            return _invalid("tool_choice: 'any' requires at least one tool")
    return None


def _check_thinking(params: Dict[str, Any], max_tokens: int) -> Optional[ParamError]:
    thinking = params.get("thinking")
    if thinking is None:
        return None
    if not isinstance(thinking, dict) or thinking.get("type") not in _THINKING:
        return _invalid("thinking: Input should be enabled, disabled, adaptive or between_tools")
    if thinking["type"] == "enabled":
        if not _is_int(thinking.get("budget_tokens")):
            return _invalid("thinking.enabled.budget_tokens: Field required")
        budget: int = thinking["budget_tokens"]
        if budget < 1024:
            return _invalid(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            )
        if max_tokens <= budget:
            return _invalid("`max_tokens` must be greater than `thinking.budget_tokens`")
    return None


def _check_cache_control(params: Dict[str, Any]) -> Optional[ParamError]:
    markers = cache_markers(params)
    seen_5m = False
    for marker in markers:
        if not isinstance(marker, dict) or marker.get("type") != "ephemeral":
            return _invalid("cache_control.type: Input should be 'ephemeral'")
        ttl = marker.get("ttl", "5m")
        if ttl not in TTL_SECONDS:
            return _invalid("cache_control.ttl: Input should be '5m' or '1h'")
        if ttl == "5m":
            seen_5m = True
        elif seen_5m:
            return _invalid(
                "a cache_control block with ttl='1h' cannot come after one with ttl='5m'"
            )
    if len(markers) > MAX_CACHE_BREAKPOINTS:
        return _invalid(
            f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(markers)}."
        )
    return None
