"""The three kinds of schema: a JSON Schema dict, an attrs class, a pydantic model."""

from __future__ import annotations

import datetime as dt
import enum
import re
from typing import Dict, List, Literal, Optional, Tuple, Union

import attrs
import pytest
from claudebatch_structured import attrs_schema, shape_of
from jsonschema import Draft202012Validator

from claudebatch import ConfigurationError


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


@attrs.define
class Customer:
    name: str
    plan: Literal["free", "pro"] = "free"


@attrs.define
class Ticket:
    sentiment: Literal["negative", "neutral", "positive"]
    urgency: int
    customer: Customer
    priority: Priority
    tags: List[str]
    due: Optional[dt.date] = None
    note: Optional[str] = None


def test_an_attrs_class_becomes_a_closed_schema_with_its_required_fields() -> None:
    schema = attrs_schema(Ticket)
    Draft202012Validator.check_schema(schema)
    assert schema["required"] == ["sentiment", "urgency", "customer", "priority", "tags"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["customer"] == {"$ref": "#/$defs/Customer"}
    assert schema["$defs"]["Customer"]["required"] == ["name"]
    assert schema["properties"]["priority"] == {"enum": ["low", "high"]}
    assert schema["properties"]["due"] == {"anyOf": [{"type": "string", "format": "date"},
                                                     {"type": "null"}]}


def test_an_attrs_answer_becomes_an_instance() -> None:
    shape = shape_of(Ticket)
    value = {"sentiment": "positive", "urgency": 2, "customer": {"name": "Ada"},
             "priority": "high", "tags": ["billing"], "due": "2026-12-24"}
    assert not list(shape.validator.iter_errors(value))
    ticket = shape.to_value(value)
    assert ticket == Ticket("positive", 2, Customer("Ada"), Priority.HIGH, ["billing"],
                            dt.date(2026, 12, 24))


def test_a_pydantic_model_is_a_schema_too() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Label(pydantic.BaseModel):  # type: ignore[misc,name-defined]
        label: str
        confidence: float

    shape = shape_of(Label)
    assert shape.kind == "pydantic" and shape.json_schema["additionalProperties"] is False
    assert shape.to_value({"label": "spam", "confidence": 0.9}).label == "spam"


@pytest.mark.parametrize("schema, words", [
    ({"type": "object", "properties": {"a": {"type": "strang"}}},
     "the schema is not a valid JSON Schema at properties/a/type"),
    ("not a schema", "must be a JSON Schema"),
])
def test_a_bad_schema_is_named(schema: object, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        shape_of(schema)


@attrs.define
class Node:
    children: List[Node]


def test_a_recursive_or_untyped_attrs_class_is_refused_by_name() -> None:
    @attrs.define
    class Odd:
        when: complex

    with pytest.raises(ConfigurationError, match="Node refers to itself"):
        shape_of(Node)
    with pytest.raises(ConfigurationError, match=r"Odd.when: the type <class 'complex'>"):
        shape_of(Odd)


@attrs.define
class Scores:
    by_name: Dict[str, float]


@pytest.mark.parametrize("schema, words", [
    (Scores, "the object at $.properties.by_name is open"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/nope"}}},
     "$.properties.a: $ref '#/$defs/nope' points to nothing"),
    ({"$ref": "https://example.com/s.json"}, "refers outside the schema"),
    ({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
     "loops"),
    ({"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#"}}}},
     "is recursive"),
    ({"enum": [float("inf")]}, "JSON has no NaN or Infinity"),
])
def test_schemas_that_would_fail_after_paying_are_refused_up_front(
        schema: object, words: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(words)):
        shape_of(schema)


@attrs.define
class A:
    x: int


@attrs.define
class B:
    x: int


@attrs.define
class Either:
    value: Union[A, B]


@attrs.define
class Pair:
    both: Tuple[int, str]


@attrs.define
class Derived:
    name: str
    length: int = attrs.field(init=False, default=0)


@pytest.mark.parametrize("cls, words", [
    (Either, "Either.value: a union of attrs classes cannot be told apart"),
    (Pair, "Pair.both: a tuple of different types"),
])
def test_attrs_shapes_no_answer_could_fill_are_refused(cls: type, words: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(words)):
        shape_of(cls)


def test_a_field_the_class_computes_itself_is_not_asked_for() -> None:
    shape = shape_of(Derived)
    assert list(shape.json_schema["properties"]) == ["name"]
    assert shape.to_value({"name": "a"}) == Derived("a")
