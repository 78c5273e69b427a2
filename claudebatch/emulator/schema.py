"""The Messages ``params`` schema of the vendored OpenAPI spec, compiled to checks.

The emulator answers what the spec calls invalid (an extra key in ``metadata``,
an unknown ``service_tier`` or content-block type, a tool whose
``input_schema.type`` is not ``object``) with the service's error, and must do
so for every request of a 100,000-request batch: the reachable part of the spec
(about 220 schemas) is compiled once into closures, with tagged unions
dispatched on their discriminator, so a typical request checks in tens of
microseconds. Messages follow the service's (pydantic) wording:
``metadata.extra: Extra inputs are not permitted``.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

#: (path from the checked value, innermost last; message)
Failure = Tuple[List[Union[str, int]], str]
Check = Callable[[Any], Optional[Failure]]

SPEC_FILE = "anthropic-openapi.batches.json"
#: The schemas of one batch request's ``params``: without and with an ``anthropic-beta`` header.
PARAMS_SCHEMA = "CreateMessageParams"
BETA_PARAMS_SCHEMA = "BetaCreateMessageParams"
#: Parameters the official SDK 2.15.0 types but the vendored spec of May 2026 predates:
#: taken as they come (beta ones still need their betas, see ``apirules``).
_NEWER: Dict[str, Any] = {"diagnostics": {}, "user_profile_id": {"type": ["string", "null"]},
                          "container": {}}
SPEC_ADDITIONS: Dict[str, Dict[str, Any]] = {
    PARAMS_SCHEMA: _NEWER,
    BETA_PARAMS_SCHEMA: {**_NEWER, "fallbacks": {}, "fallback_credit_token": {"type": "string"}},
}
#: Tags of union members newer than the vendored spec (SDK 2.15.0: newer tool versions,
#: ``thinking: between_tools``): each is taken, as an object, in a union that holds the
#: sibling named beside it, so only where such a member belongs.
NEWER_TAGS: Dict[str, str] = {
    "web_search_20260318": "web_search_20260209",
    "web_fetch_20260318": "web_fetch_20260309",
    "code_execution_20260521": "code_execution_20260120",
    "browser_toolset_20260801": "web_fetch_20260309",
    "computer_toolset_20260801": "web_fetch_20260309",
    "between_tools": "adaptive",
}

_TYPES: Dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "null": lambda v: v is None,
}
_ABSENT = object()  # the tag of a union option whose tag property may be left out
_TYPE_WORDS = {"string": "a valid string", "object": "a valid dictionary",
               "array": "a valid list", "boolean": "a valid boolean",
               "integer": "a valid integer", "number": "a valid number", "null": "null"}


def _fail(message: str) -> Failure:
    return [], message


def _quoted(values: Sequence[Any]) -> str:
    shown = [repr(v) if isinstance(v, str) else json.dumps(v) for v in values]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


class _Compiler:
    def __init__(self, schemas: Dict[str, Any]):
        self.schemas = schemas
        self.compiled: Dict[str, Check] = {}

    def ref(self, ref: str) -> Check:
        name = ref.rsplit("/", 1)[-1]
        if name not in self.compiled:
            cell: List[Check] = []
            self.compiled[name] = lambda value: cell[0](value)  # a recursive schema
            check = self.node(self.schemas[name])
            cell.append(check)
            self.compiled[name] = check
        return self.compiled[name]

    def resolve(self, node: Dict[str, Any]) -> Dict[str, Any]:
        while "$ref" in node:
            node = self.schemas[node["$ref"].rsplit("/", 1)[-1]]
        return node

    def node(self, node: Dict[str, Any]) -> Check:
        if "$ref" in node:
            return self.ref(node["$ref"])
        checks: List[Check] = []
        if "anyOf" in node or "oneOf" in node:
            checks.append(self.union(node, node.get("anyOf") or node["oneOf"]))
        if "type" in node:
            checks.append(self.type_check(node["type"]))
        if "const" in node:
            checks.append(self.choice([node["const"]]))
        if "enum" in node:
            checks.append(self.choice(node["enum"]))
        checks.extend(self.bounds(node))
        if "properties" in node or node.get("additionalProperties") is False \
                or "required" in node:
            checks.append(self.object(node))
        if "items" in node:
            checks.append(self.array(node["items"]))
        if len(checks) == 1:
            return checks[0]

        def all_of(value: Any) -> Optional[Failure]:
            for check in checks:
                failure = check(value)
                if failure is not None:
                    return failure
            return None
        return all_of

    def type_check(self, kind: Union[str, List[str]]) -> Check:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        tests = [_TYPES[k] for k in kinds]
        words = " or ".join(_TYPE_WORDS[k] for k in kinds)

        def check(value: Any) -> Optional[Failure]:
            for test in tests:
                if test(value):
                    return None
            return _fail(f"Input should be {words}")
        return check

    def choice(self, values: List[Any]) -> Check:
        allowed = [(type(v), v) for v in values]
        message = f"Input should be {_quoted(values)}"

        def check(value: Any) -> Optional[Failure]:
            if (type(value), value) in allowed:  # type: True is not 1
                return None
            return _fail(message)
        return check

    def bounds(self, node: Dict[str, Any]) -> List[Check]:
        checks: List[Check] = []
        number = _TYPES["number"]
        for key, test, word in (
                ("minimum", lambda v, b: v >= b, "greater than or equal to"),
                ("exclusiveMinimum", lambda v, b: v > b, "greater than"),
                ("maximum", lambda v, b: v <= b, "less than or equal to")):
            if key in node:
                bound = node[key]

                def check(value: Any, bound: Any = bound, test: Any = test,
                          word: str = word) -> Optional[Failure]:
                    if number(value) and not test(value, bound):
                        return _fail(f"Input should be {word} {bound}")
                    return None
                checks.append(check)
        for key, measure, word in (("minLength", str, "at least"), ("maxLength", str, "at most"),
                                   ("minItems", list, "at least"), ("maxItems", list, "at most")):
            if key in node:
                limit = node[key]
                unit = "character" if measure is str else "item"
                low = key.startswith("min")

                def sized(value: Any, limit: int = limit, measure: Any = measure,
                          low: bool = low, word: str = word, unit: str = unit
                          ) -> Optional[Failure]:
                    if isinstance(value, measure) and (
                            len(value) < limit if low else len(value) > limit):
                        return _fail(f"Input should have {word} {limit} {unit}"
                                     f"{'' if limit == 1 else 's'}")
                    return None
                checks.append(sized)
        if "pattern" in node:
            # the service's regexes end at ``$`` only at the very end; Python's ``$`` also
            # matches before a final newline ("name\n" would pass), so ``\Z`` is meant
            text = node["pattern"]
            if text.endswith("$") and not text.endswith("\\$"):
                text = text[:-1] + "\\Z"
            pattern, shown = re.compile(text), node["pattern"]

            def matches(value: Any) -> Optional[Failure]:
                if isinstance(value, str) and not pattern.search(value):
                    return _fail(f"String should match pattern '{shown}'")
                return None
            checks.append(matches)
        return checks

    def object(self, node: Dict[str, Any]) -> Check:
        properties = {k: self.node(v) for k, v in node.get("properties", {}).items()}
        required = list(node.get("required", ()))
        extra = node.get("additionalProperties", True)
        closed = extra is False
        extra_check = self.node(extra) if isinstance(extra, dict) and extra else None

        def check(value: Any) -> Optional[Failure]:
            if not isinstance(value, dict):
                return None  # the type check speaks
            for key in required:
                if key not in value:
                    return [key], "Field required"
            for key, item in value.items():
                sub = properties.get(key)
                if sub is None:
                    if closed:
                        return [key], "Extra inputs are not permitted"
                    if extra_check is None:
                        continue
                    sub = extra_check
                failure = sub(item)
                if failure is not None:
                    failure[0].append(key)
                    return failure
            return None
        return check

    def array(self, items: Dict[str, Any]) -> Check:
        item_check = self.node(items)

        def check(value: Any) -> Optional[Failure]:
            if not isinstance(value, list):
                return None
            for index, item in enumerate(value):
                failure = item_check(item)
                if failure is not None:
                    failure[0].append(index)
                    return failure
            return None
        return check

    def union(self, node: Dict[str, Any], options: List[Dict[str, Any]]) -> Check:
        tagged = self.tags(node, options)
        if tagged is not None:
            return self.tagged_union(*tagged)
        checks = [self.node(option) for option in options]

        def check(value: Any) -> Optional[Failure]:
            best: Optional[Failure] = None
            for option in checks:
                failure = option(value)
                if failure is None:
                    return None
                if best is None or len(failure[0]) > len(best[0]):
                    best = failure  # the option that got furthest explains best
            return best
        return check

    def tags(self, node: Dict[str, Any], options: List[Dict[str, Any]]
             ) -> Optional[Tuple[str, Dict[Any, Check]]]:
        """(property, tag -> check) when every option is an object told apart by one
        property's constant: the spec's discriminators, and the tool union, which has none."""
        discriminator = node.get("discriminator", {})
        name = discriminator.get("propertyName", "type")
        by_tag: Dict[Any, Check] = {}
        newer: Dict[Any, Check] = {}
        for option in options:
            target = self.resolve(option)
            prop = target.get("properties", {}).get(name)
            if prop is None:
                return None
            values = self.constants(self.resolve(prop))
            if not values:
                return None
            check = self.node(option)
            for value in values:
                by_tag.setdefault(value, check)
                for tag, sibling in NEWER_TAGS.items():
                    if sibling == value:
                        newer[tag] = self.type_check("object")
            if name not in target.get("required", ()):
                by_tag.setdefault(_ABSENT, check)
        for tag, check in newer.items():
            by_tag.setdefault(tag, check)
        return name, by_tag

    def constants(self, prop: Dict[str, Any]) -> List[Any]:
        """The values a tag property allows: a const, an enum, or an anyOf of those."""
        if "const" in prop:
            return [prop["const"]]
        if "enum" in prop:
            return list(prop["enum"])
        values: List[Any] = []
        for option in prop.get("anyOf", ()):
            option = self.resolve(option)
            if option.get("type") == "null":
                values.append(None)
            else:
                found = self.constants(option)
                if not found:
                    return []
                values.extend(found)
        return values

    def tagged_union(self, name: str, by_tag: Dict[Any, Check]) -> Check:
        expected = _quoted([tag for tag in by_tag if isinstance(tag, str)])
        absent = by_tag.get(_ABSENT)

        def check(value: Any) -> Optional[Failure]:
            if not isinstance(value, dict):
                return _fail("Input should be a valid dictionary")
            if name not in value:
                if absent is None:
                    return [name], "Field required"
                return absent(value)
            tag = value[name]
            option = by_tag.get(tag) if isinstance(tag, (str, type(None))) else None
            if option is None:
                return [name], (f"Input tag {tag!r} found using {name!r} does not match any "
                                f"of the expected tags: {expected}")
            return option(value)
        return check


@lru_cache(maxsize=1)
def _spec_schemas() -> Dict[str, Any]:
    folder = resources.files("claudebatch.emulator").joinpath("spec")
    text = folder.joinpath(SPEC_FILE).read_text("utf-8")
    schemas: Dict[str, Any] = json.loads(text)["components"]["schemas"]
    for name, properties in SPEC_ADDITIONS.items():
        schema = schemas[name]
        schemas[name] = {**schema, "properties": {**schema.get("properties", {}), **properties}}
    return schemas


@lru_cache(maxsize=4)
def params_check(beta: bool) -> Check:
    """The compiled check of one request's ``params`` (the beta schema with ``beta``)."""
    compiler = _Compiler(_spec_schemas())
    return compiler.ref(BETA_PARAMS_SCHEMA if beta else PARAMS_SCHEMA)


def params_error(params: Any, *, beta: bool) -> Optional[str]:
    """``"path.to.field: what is wrong"`` for params the spec refuses, else None."""
    failure = params_check(beta)(params)
    if failure is None:
        return None
    path, message = failure
    where = ".".join(str(part) for part in reversed(path))
    return f"{where}: {message}" if where else message
