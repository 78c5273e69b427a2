"""A user's JSON Schema, checked and made into what the API's structured outputs take.

Checked up front, so nothing fails after the batches are paid for: every ``$ref``
points inside the schema (``#/...``) and resolves, no chain of references loops, no
number is NaN or infinite, and the schema is not recursive (the API refuses recursive
schemas).

The API takes a subset of JSON Schema: objects closed with ``additionalProperties:
false``, and no numeric (``minimum``, ``maximum``, ``multipleOf``...), string
(``minLength``, ``maxLength``) or array (``maxItems``, ``minItems`` above 1)
constraints. As the official SDK does, :func:`api_schema` sends a copy with those
constraints moved into each node's ``description``; the plugin still checks every
answer against the whole schema, so an answer that breaks one is a
``schema_violation`` and is repaired. An object left open on purpose
(``additionalProperties`` true or a schema) has no API form: it is refused, naming
where.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Set, Tuple

from claudebatch import ConfigurationError

#: Constraints the API's structured outputs refuse, moved into the description.
MOVED = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
         "minLength", "maxLength", "maxItems", "uniqueItems", "minProperties",
         "maxProperties")


def check_schema(schema: Dict[str, Any], what: str) -> None:
    """Refuse what would fail only once answers come back, naming where."""
    for path, value in _numbers(schema, "$"):
        if not math.isfinite(value):
            raise ConfigurationError(f"{what}: {path} is {value!r}: JSON has no NaN or "
                                     "Infinity")
    refs = list(_refs(schema, "$"))
    for path, ref in refs:
        if not ref.startswith("#"):
            raise ConfigurationError(f"{what}: {path} refers outside the schema ({ref!r}); "
                                     "put the definition in $defs and refer to it with '#/...'")
        _resolve(schema, ref, f"{what}: {path}")
    for path, ref in refs:
        _follow(schema, ref, f"{what}: {path}", seen=[])
    if _recursive(schema):
        raise ConfigurationError(f"{what} is recursive (a $ref reaches the node it is in): "
                                 "the API's structured outputs take no recursive schema")


def api_schema(schema: Dict[str, Any], what: str) -> Dict[str, Any]:
    """The copy sent to the API: objects closed, refused constraints in descriptions."""
    def walk(node: Any, path: str, parent: str) -> Any:
        if isinstance(node, list):
            return [walk(item, f"{path}[{i}]", parent) for i, item in enumerate(node)]
        if not isinstance(node, dict):
            return node
        if parent in ("properties", "$defs", "definitions"):  # names, not schemas
            return {k: walk(v, f"{path}.{k}", "") for k, v in node.items()}
        out: Dict[str, Any] = {}
        moved: List[str] = []
        for key, value in node.items():
            if key in MOVED or (key == "minItems" and isinstance(value, int) and value > 1):
                moved.append(f"{key}: {value}")
            elif key in ("enum", "const", "default", "examples", "required"):
                out[key] = value
            else:
                out[key] = walk(value, f"{path}.{key}", key)
        if _is_object(out):
            extra = out.get("additionalProperties", False)
            if extra is not False:
                raise ConfigurationError(
                    f"{what}: the object at {path} is open (additionalProperties "
                    f"{extra!r}); the API's structured outputs take only closed objects: "
                    "list its properties")
            out["additionalProperties"] = False
        if moved:
            note = "; ".join(moved)
            out["description"] = f"{out['description']} ({note})" \
                if isinstance(out.get("description"), str) else f"({note})"
        return out
    sent: Dict[str, Any] = walk(schema, "$", "")
    return sent


def _is_object(node: Dict[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind) or \
        ("properties" in node and "type" not in node)


def _numbers(node: Any, path: str) -> Any:
    if isinstance(node, float):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _numbers(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _numbers(value, f"{path}[{i}]")


def _refs(node: Any, path: str) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                if not isinstance(value, str):
                    raise ConfigurationError(f"{path}.$ref must be a string, got {value!r}")
                yield path, value
            elif key not in ("enum", "const", "default", "examples"):
                yield from _refs(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _refs(value, f"{path}[{i}]")


def _resolve(schema: Dict[str, Any], ref: str, where: str) -> Any:
    target: Any = schema
    for part in ref[1:].lstrip("/").split("/") if ref not in ("#", "#/") else ():
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            raise ConfigurationError(f"{where}: $ref {ref!r} points to nothing in the schema")
    return target


def _follow(schema: Dict[str, Any], ref: str, where: str, seen: List[str]) -> None:
    """A chain of nodes that are only a $ref must end somewhere."""
    if ref in seen:
        chain = " -> ".join([*seen, ref])
        raise ConfigurationError(f"{where}: $ref {ref!r} loops ({chain})")
    target = _resolve(schema, ref, where)
    if isinstance(target, dict) and isinstance(target.get("$ref"), str):
        _follow(schema, target["$ref"], where, [*seen, ref])


def _recursive(schema: Dict[str, Any]) -> bool:
    """True when following $refs from the root reaches a node already on the way."""
    def visit(node: Any, stack: Tuple[int, ...], seen: Set[Tuple[int, ...]]) -> bool:
        if isinstance(node, list):
            return any(visit(v, stack, seen) for v in node)
        if not isinstance(node, dict):
            return False
        if id(node) in stack:
            return True
        stack = (*stack, id(node))
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                if visit(_resolve(schema, value, "$ref"), stack, seen):
                    return True
            elif key not in ("enum", "const", "default", "examples", "$defs", "definitions"):
                if visit(value, stack, seen):
                    return True
        return False
    return visit(schema, (), set())
