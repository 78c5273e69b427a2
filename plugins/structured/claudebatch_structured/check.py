"""One answer against the schema: parsed, or which way it failed.

The classes a user acts on differently: ``refusal`` (the model declined: sending it
again gets the same), ``truncated`` (cut at ``max_tokens``: send it again with more),
``invalid_json`` (the text does not parse), ``schema_violation`` (it parses, but breaks
the schema, at the JSON path named).
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

import attrs

from claudebatch import BatchResult

from .schemas import Shape

REFUSAL = "refusal"
TRUNCATED = "truncated"
INVALID_JSON = "invalid_json"
SCHEMA_VIOLATION = "schema_violation"
#: The answer is no text to check: a tool call (``tool_use``) or a paused turn.
NO_TEXT = "no_text"
CLASSES = (INVALID_JSON, SCHEMA_VIOLATION, TRUNCATED, REFUSAL, NO_TEXT)
#: What a repair pass sends again: not a refusal.
REPAIRABLE = frozenset({INVALID_JSON, SCHEMA_VIOLATION, TRUNCATED})


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@attrs.frozen
class Problem:
    """Why an answer is not a value of the schema."""

    kind: str  # one of CLASSES
    message: str
    path: Optional[str] = None  # the JSON path of a schema violation ("$.items[2].price")

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"class": self.kind, "message": self.message}
        if self.path is not None:
            out["path"] = self.path
        return out

    @classmethod
    def from_dict(cls, value: Any) -> Problem:
        if not isinstance(value, dict) or value.get("class") not in CLASSES:
            return cls(INVALID_JSON, "unreadable structured_error field")
        path = value.get("path")
        return cls(str(value["class"]), str(value.get("message", "")),
                   path if isinstance(path, str) else None)


@attrs.frozen
class Checked:
    """An answer checked: ``value`` (JSON) and ``typed`` when it is one, else ``problem``."""

    value: Any = None
    typed: Any = None
    problem: Optional[Problem] = None


def check(result: BatchResult, shape: Shape) -> Optional[Checked]:
    """The check of a succeeded result's answer; None for a result with no answer."""
    if result.type != "succeeded":
        return None
    message = result.result.message  # type: ignore[union-attr]
    if message.stop_reason == "refusal":
        return Checked(problem=Problem(REFUSAL, "the model declined to answer"))
    if message.stop_reason in ("tool_use", "pause_turn"):
        return Checked(problem=Problem(NO_TEXT, f"stopped with {message.stop_reason}: no "
                                                "text answer to check"))
    text = message.text
    cut = message.stop_reason == "max_tokens"
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        if cut:
            return Checked(problem=Problem(TRUNCATED, f"cut at max_tokens after "
                                                      f"{len(text):,} characters"))
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return Checked(problem=Problem(INVALID_JSON, f"not JSON: {why}"))
    try:
        error = shape.error(value)
    except Exception as exc:  # one answer never stops a job
        return Checked(problem=Problem(SCHEMA_VIOLATION,
                                       f"could not be checked: {type(exc).__name__}", "$"))
    if error is not None:
        if cut:
            return Checked(problem=Problem(TRUNCATED, "cut at max_tokens: " + error[1],
                                           error[0]))
        return Checked(problem=Problem(SCHEMA_VIOLATION, error[1], error[0]))
    try:
        typed = shape.to_value(value)
    except Exception as exc:  # the typed step refused what the schema let through
        return Checked(problem=Problem(SCHEMA_VIOLATION,
                                       f"not a {shape.kind} value: {exc}", "$"))
    return Checked(value=value, typed=typed)
