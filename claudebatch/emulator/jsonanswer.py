"""JSON answers for requests that ask for a JSON schema (``output_config.format``).

The stand-in model answers with a value built from the schema, the same for the same
request and seed: every required property, some optional ones, values within the
schema's enums, bounds and lengths. The answer faults turn a share of them into what a
real job meets: text that is not JSON, JSON that breaks the schema, an answer cut at
``max_tokens``, a refusal.
"""

from __future__ import annotations

import json
import math
import random
import re
from typing import Any, Dict, Optional, Tuple

from ..apirules import output_format

_WORDS = ("alpha", "beta", "gamma", "delta", "amber", "river", "stone", "cedar", "quartz",
          "harbor", "meadow", "signal", "ledger", "north", "copper", "willow")
_FORMATS = {"date": "2026-12-01", "date-time": "2026-12-01T09:30:00Z", "time": "09:30:00",
            "email": "someone@example.com", "uri": "https://example.com/item",
            "uuid": "3f1c2a54-8b0e-4f6a-9d2c-1e7b5a9c0d11"}
_MAX_DEPTH = 12
_MAX_NODES = 2000


def requested_schema(params: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The JSON schema the request asks its answer to follow, if any."""
    fmt = output_format(params)
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" \
            and isinstance(fmt.get("schema"), dict):
        return fmt["schema"]  # type: ignore[no-any-return]
    return None


def sample(schema: Dict[str, Any], seed: int) -> Any:
    """A value that follows ``schema``, determined by ``seed``."""
    return _Sampler(schema, random.Random(seed)).value(schema, 0)


def broken(schema: Dict[str, Any], value: Any) -> Any:
    """JSON that parses but breaks ``schema``: a required property left out, or, where
    none is required, a value of another type."""
    required = schema.get("required") if isinstance(schema, dict) else None
    if isinstance(value, dict) and isinstance(required, list) and required:
        return {k: v for k, v in value.items() if k != required[0]}
    return ["not", "what", "the", "schema", "asks"] if not isinstance(value, list) \
        else "not what the schema asks"


def not_json(text: str) -> str:
    """Text that does not parse as JSON: prose before it, and its end missing."""
    return "Here is the JSON you asked for: " + text[: max(1, len(text) - 1)]


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


#: Constraints the API refuses in a schema, which clients move into the description as
#: "(minimum: 1; maximum: 5)" (the official SDK, claudebatch-structured): the stand-in
#: model reads them there, as the real one reads the description.
_DESCRIBED = re.compile(r"\b(minimum|maximum|exclusiveMinimum|exclusiveMaximum|minLength|"
                        r"maxLength|minItems|maxItems): (-?[0-9.]+(?:[eE][-+]?[0-9]+)?)")


def _with_described(node: Dict[str, Any]) -> Dict[str, Any]:
    text = node.get("description")
    if not isinstance(text, str) or ":" not in text:
        return node
    found = {key: float(number) if "." in number or "e" in number.lower() else int(number)
             for key, number in _DESCRIBED.findall(text)}
    return {**found, **node} if found else node


def _bounds(node: Dict[str, Any]) -> Tuple[float, float]:
    """The closed range a number may take (an exclusive bound moved a little inside)."""
    def number(key: str) -> Optional[float]:
        value = node.get(key)
        return float(value) if isinstance(value, (int, float)) and \
            not isinstance(value, bool) else None
    low, high = number("minimum"), number("maximum")
    above, below = number("exclusiveMinimum"), number("exclusiveMaximum")
    step = 1.0 if node.get("type") == "integer" else 0.001
    if above is not None:
        low = max(low if low is not None else above + step, above + step)
    if below is not None:
        high = min(high if high is not None else below - step, below - step)
    low = low if low is not None else (high - 100 if high is not None else 0.0)
    high = high if high is not None else low + 100
    return low, max(low, high)


class _Sampler:
    def __init__(self, root: Dict[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.nodes = 0  # a recursive schema's answer stops growing at _MAX_NODES

    def resolve(self, node: Dict[str, Any]) -> Dict[str, Any]:
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 32:
            ref = node["$ref"]
            target: Any = self.root
            if not ref.startswith("#"):
                return {}
            for part in ref.lstrip("#/").split("/"):
                if not part:
                    continue
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part) if isinstance(target, dict) else None
            node = target if isinstance(target, dict) else {}
            seen += 1
        return node if isinstance(node, dict) else {}

    def value(self, node: Any, depth: int) -> Any:
        node = _with_described(self.resolve(node) if isinstance(node, dict) else {})
        rng = self.rng
        if "const" in node:
            return node["const"]
        if isinstance(node.get("enum"), list) and node["enum"]:
            return rng.choice(node["enum"])
        for key in ("anyOf", "oneOf"):
            options = node.get(key)
            if isinstance(options, list) and options:
                usable = [o for o in options
                          if not (isinstance(o, dict) and o.get("type") == "null")] or options
                return self.value(rng.choice(usable), depth)
        if isinstance(node.get("allOf"), list) and node["allOf"]:
            merged: Dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
            for part in node["allOf"]:
                part = self.resolve(part)
                props = {**merged.get("properties", {}), **part.get("properties", {})}
                required = [*merged.get("required", []), *part.get("required", [])]
                merged.update(part)
                if props:
                    merged["properties"] = props
                if required:
                    merged["required"] = list(dict.fromkeys(required))
            return self.value(merged, depth)
        self.nodes += 1
        kind = node.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"] or kind
            kind = kinds[0] if kinds else None
        if kind is None:
            kind = "object" if "properties" in node else "string"
        if depth >= _MAX_DEPTH or self.nodes > _MAX_NODES:
            return None if kind not in ("string", "integer", "number", "boolean") else \
                {"string": "", "integer": 0, "number": 0.0, "boolean": False}[kind]
        if kind == "object":
            return self.obj(node, depth)
        if kind == "array":
            low = node.get("minItems", 1) if isinstance(node.get("minItems"), int) else 1
            high = node.get("maxItems", low + 2) if isinstance(node.get("maxItems"), int) \
                else low + 2
            low = min(low, high)
            count = rng.randint(low, max(low, min(high, low + 3)))
            return [self.value(node.get("items", {}), depth + 1) for _ in range(count)]
        if kind in ("integer", "number"):
            low, high = _bounds(node)
            if kind == "integer":
                first, last = math.ceil(low), math.floor(high)
                return rng.randint(first, max(first, last))
            return round(rng.uniform(low, max(low, high)), 3)
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "null":
            return None
        return self.text(node)

    def obj(self, node: Dict[str, Any], depth: int) -> Dict[str, Any]:
        given = node.get("properties")
        props: Dict[str, Any] = given if isinstance(given, dict) else {}
        listed = node.get("required")
        required = [k for k in listed if isinstance(k, str)] if isinstance(listed, list) else []
        out: Dict[str, Any] = {}
        for name, spec in props.items():
            if name in required or self.rng.random() < 0.5:
                out[name] = self.value(spec, depth + 1)
        for name in required:
            if name not in out:
                out[name] = self.value(props.get(name, {}), depth + 1)
        return out

    def text(self, node: Dict[str, Any]) -> str:
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS:
            return _FORMATS[fmt]
        words = " ".join(self.rng.choice(_WORDS) for _ in range(self.rng.randint(1, 4)))
        shortest, longest = node.get("minLength"), node.get("maxLength")
        low = shortest if isinstance(shortest, int) else 0
        high = longest if isinstance(longest, int) else None
        while len(words) < low:
            words += " " + self.rng.choice(_WORDS)
        return words[:high] if high is not None else words
