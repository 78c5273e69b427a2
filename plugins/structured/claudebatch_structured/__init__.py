"""claudebatch-structured: every answer checked against a schema, typed, and repaired.

>>> from claudebatch import BatchClient
>>> from claudebatch_structured import StructuredOutput
>>> structured = StructuredOutput({"type": "object", "properties": {"label": {"type": "string"}},
...                                "required": ["label"]})
>>> client = BatchClient(plugins=[structured])                   # doctest: +SKIP
>>> report = client.run("rows.jsonl", output="labels.jsonl")     # doctest: +SKIP
>>> structured.parsed, structured.invalid, structured.repaired   # doctest: +SKIP
"""

from .check import CLASSES, INVALID_JSON, REFUSAL, SCHEMA_VIOLATION, TRUNCATED, Checked, Problem
from .plugin import Failure, StructuredOutput
from .schemas import Shape, attrs_schema, shape_of

__version__ = "0.1.0"

__all__ = [
    "CLASSES",
    "INVALID_JSON",
    "REFUSAL",
    "SCHEMA_VIOLATION",
    "TRUNCATED",
    "Checked",
    "Failure",
    "Problem",
    "Shape",
    "StructuredOutput",
    "__version__",
    "attrs_schema",
    "shape_of",
]
