"""What an answer must be: a JSON Schema, built from what the user gives.

Three kinds of ``schema``: a JSON Schema dict (answers stay JSON), an attrs class (its
schema is built from the class's fields, answers are structured into instances with
cattrs), or a pydantic model (``model_json_schema`` / ``model_validate``; the
``pydantic`` extra). Each becomes a :class:`Shape`: the JSON Schema sent to the API,
a validator, and the step from a valid JSON value to the typed value.
"""

from __future__ import annotations

import datetime as dt
import enum
import sys
import typing
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Union

import attrs
import cattrs

from claudebatch import ConfigurationError

from .apischema import api_schema, check_schema

if TYPE_CHECKING:  # imported when a schema is first read: loading the plugin needs neither
    from jsonschema import Draft202012Validator

if sys.version_info >= (3, 10):
    from types import UnionType
else:  # pragma: no cover - Python 3.9
    UnionType = type(Union[int, str])

_SCALARS: Dict[Any, Dict[str, Any]] = {
    str: {"type": "string"}, int: {"type": "integer"}, float: {"type": "number"},
    bool: {"type": "boolean"}, type(None): {"type": "null"},
    dt.datetime: {"type": "string", "format": "date-time"},
    dt.date: {"type": "string", "format": "date"},
}


@attrs.frozen
class Shape:
    """The schema sent, the check of an answer against it, and the typed value of one.

    ``validator`` (jsonschema) is the reference. A schema made only of the keywords both
    read alike is also compiled to Python by fastjsonschema, which passes a valid answer
    some 25 times faster; an answer it refuses is judged by ``validator`` (which names
    the first error, or finds none: then it is valid).
    """

    json_schema: Dict[str, Any]  # the whole schema: every answer is checked against it
    validator: Draft202012Validator = attrs.field(eq=False, repr=False)
    to_value: Callable[[Any], Any] = attrs.field(eq=False, repr=False)
    kind: str = "json"  # "json", "attrs" or "pydantic"
    fast: Optional[Callable[[Any], Any]] = attrs.field(default=None, eq=False, repr=False)
    #: What the API is sent (``apischema.api_schema``): closed, constraints described.
    sent: Dict[str, Any] = attrs.field(factory=dict, eq=False)

    def error(self, value: Any) -> Optional[Tuple[str, str]]:
        """``(JSON path, message)`` of the first place ``value`` breaks the schema, or None."""
        if self.fast is not None:
            try:
                self.fast(value)
                return None
            except Exception:  # refused, or it failed: the reference judges
                pass
        return first_error(self.validator, value)


def shape_of(schema: Any) -> Shape:
    """The :class:`Shape` of a JSON Schema dict, an attrs class or a pydantic model."""
    if isinstance(schema, dict):
        return _shape(dict(schema), "the schema", _same, "json")
    if isinstance(schema, type) and attrs.has(schema):
        built = attrs_schema(schema)
        converter = _converter()
        return _shape(built, schema.__name__,
                      lambda value: converter.structure(value, schema), "attrs")
    if isinstance(schema, type) and hasattr(schema, "model_json_schema") \
            and hasattr(schema, "model_validate"):
        return _shape(_closed(schema.model_json_schema()), schema.__name__,
                      schema.model_validate, "pydantic")
    raise ConfigurationError(
        f"schema must be a JSON Schema (a dict), an attrs class or a pydantic model, got "
        f"{schema!r}")


def _same(value: Any) -> Any:
    return value


def _shape(schema: Dict[str, Any], what: str, to_value: Callable[[Any], Any],
           kind: str) -> Shape:
    validator = _validator(schema, what)
    check_schema(schema, what)
    return Shape(schema, validator, to_value, kind, _fast(schema), api_schema(schema, what))


#: Keywords jsonschema (2020-12) and fastjsonschema (draft-07) read alike; ``format`` is
#: among them because an answer fastjsonschema refuses goes to jsonschema anyway.
_SHARED_KEYWORDS = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "enum", "const",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
    "maxLength", "pattern", "minItems", "maxItems", "uniqueItems", "minProperties",
    "maxProperties", "anyOf", "oneOf", "allOf", "not", "$ref", "$defs", "definitions",
    "description", "title", "default", "examples", "format", "$schema", "$id", "$comment",
    "readOnly", "writeOnly", "deprecated", "nullable"})


def _fast(schema: Dict[str, Any]) -> Optional[Callable[[Any], Any]]:
    """fastjsonschema's compiled check of ``schema``, when it reads it as jsonschema does."""
    if not _shared_only(schema, parent=None):
        return None
    try:
        draft07 = {k: v for k, v in schema.items() if k != "$schema"}
        import fastjsonschema

        compiled: Callable[[Any], Any] = fastjsonschema.compile(draft07)
        return compiled
    except Exception:  # a schema it cannot compile: jsonschema alone judges
        return None


def _shared_only(node: Any, parent: Optional[str]) -> bool:
    if isinstance(node, list):
        return all(_shared_only(item, parent) for item in node)
    if not isinstance(node, dict):
        return True
    if "$ref" in node and parent not in ("properties", "$defs", "definitions") and \
            set(node) - {"$ref", "description", "title", "$comment"}:
        return False  # draft-07 ignores what stands beside a $ref; 2020-12 applies it
    for key, value in node.items():
        if parent in ("properties", "$defs", "definitions"):
            ok = _shared_only(value, None)  # the names of properties and definitions
        elif key not in _SHARED_KEYWORDS:
            return False
        elif key == "multipleOf":
            ok = isinstance(value, int)  # float quotients: the two disagree
        elif key == "$ref":
            ok = isinstance(value, str) and value.startswith("#/")
        elif key in ("enum", "const", "default", "examples", "required"):
            ok = True
        else:
            ok = _shared_only(value, key)
        if not ok:
            return False
    return True


def _validator(schema: Dict[str, Any], what: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "its top"
        raise ConfigurationError(f"{what} is not a valid JSON Schema at {where}: "
                                 f"{exc.message}") from None
    return Draft202012Validator(schema)


def _closed(schema: Dict[str, Any]) -> Dict[str, Any]:
    """Objects closed to extra keys (``additionalProperties: false``), as the API's
    structured outputs want them, where the schema does not say otherwise."""
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: walk(v) for k, v in node.items()}
            if out.get("type") == "object" and "additionalProperties" not in out:
                out["additionalProperties"] = False
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node
    closed: Dict[str, Any] = walk(schema)
    return closed


def attrs_schema(cls: type) -> Dict[str, Any]:
    """The JSON Schema of an attrs class: its fields, required unless they have a default."""
    defs: Dict[str, Dict[str, Any]] = {}
    root = _object_schema(cls, defs, building=())
    if defs:
        root["$defs"] = defs
    return root


def _object_schema(cls: type, defs: Dict[str, Dict[str, Any]],
                   building: Tuple[type, ...]) -> Dict[str, Any]:
    try:
        hints = typing.get_type_hints(cls)
    except NameError as exc:
        raise ConfigurationError(f"{cls.__name__}: a field's type cannot be resolved ({exc}); "
                                 "define the classes it names at module level") from None
    properties: Dict[str, Any] = {}
    required: List[str] = []
    for field in attrs.fields(cls):
        if not field.init:
            continue  # not given to the class: not part of an answer
        kind = hints.get(field.name, field.type)
        properties[field.name] = _type_schema(kind, defs, (*building, cls),
                                              f"{cls.__name__}.{field.name}")
        if field.default is attrs.NOTHING:
            required.append(field.name)
    schema: Dict[str, Any] = {"type": "object", "properties": properties,
                              "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _type_schema(kind: Any, defs: Dict[str, Dict[str, Any]], building: Tuple[type, ...],
                 where: str) -> Dict[str, Any]:
    if kind in _SCALARS:
        return dict(_SCALARS[kind])
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin is Union or (UnionType is not None and isinstance(kind, UnionType)):
        if sum(1 for a in args if isinstance(a, type) and attrs.has(a)) > 1:
            raise ConfigurationError(f"{where}: a union of attrs classes cannot be told apart "
                                     "in an answer; give one class with a tag field")
        return {"anyOf": [_type_schema(a, defs, building, where) for a in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis) \
            and len(set(args)) > 1:
        raise ConfigurationError(f"{where}: a tuple of different types ({kind!r}) has no "
                                 "schema the API takes; use an attrs class")
    if origin in (list, List, tuple, set, frozenset) or kind in (list, tuple, set):
        item = args[0] if args else Any
        return {"type": "array", "items": _type_schema(item, defs, building, where)}
    if origin in (dict, Dict) or kind is dict:
        value = args[1] if len(args) == 2 else Any
        return {"type": "object",
                "additionalProperties": _type_schema(value, defs, building, where)}
    if kind is Any:
        return {}
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return {"enum": [member.value for member in kind]}
    if isinstance(kind, type) and attrs.has(kind):
        if kind in building:
            raise ConfigurationError(f"{where}: {kind.__name__} refers to itself; a "
                                     "recursive attrs class has no JSON Schema here")
        if kind.__name__ not in defs:
            defs[kind.__name__] = {}  # reserved before the walk, filled after it
            defs[kind.__name__] = _object_schema(kind, defs, building)
        return {"$ref": f"#/$defs/{kind.__name__}"}
    raise ConfigurationError(f"{where}: the type {kind!r} has no JSON Schema here (use str, "
                             "int, float, bool, None, list, dict, Literal, Optional, an "
                             "Enum, a date or datetime, or another attrs class)")


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(dt.datetime,
                                      lambda v, _: dt.datetime.fromisoformat(
                                          str(v).replace("Z", "+00:00")))
    converter.register_structure_hook(dt.date, lambda v, _: dt.date.fromisoformat(str(v)))
    return converter


def first_error(validator: Draft202012Validator, value: Any) -> Optional[Tuple[str, str]]:
    """``(JSON path, message)`` of the first place ``value`` breaks the schema, or None."""
    found = next(iter(validator.iter_errors(value)), None)
    if found is None:
        return None
    path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                         for p in found.absolute_path)
    return path, found.message
