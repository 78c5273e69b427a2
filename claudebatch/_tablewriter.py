"""Writing a table a chunk at a time: CSV/TSV, JSON lines, Parquet (a row group a chunk).

Columns come in order (the input's, then the job's, then plugins'). Parquet types
each column from the input's Arrow schema when there is one, else from the Python
types seen in it (one kind: that type; a mix, or nested values: JSON text), so a
table is typed as the data was, and a column never changes type between chunks.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import io
import json
import numbers
from typing import IO, Any, Dict, List, Mapping, Optional, Sequence, Set

from ._extras import need
from .errors import OutputError
from .tables import Column

_SIMPLE = {bool: "bool", int: "int", float: "float", str: "string"}


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    return str(value)


def json_text(value: Any) -> Optional[str]:
    return None if value is None else json.dumps(value, ensure_ascii=False,
                                                 default=_json_default)


def cell_text(value: Any) -> str:
    """A value as a CSV cell: empty for None, JSON for nested values, ISO for dates."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, decimal.Decimal)):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        return json_text(value) or ""
    return str(_json_default(value))


def _plain(kind: type) -> type:
    """numpy's scalars (and other registered numbers) as the Python type they stand for."""
    if kind in _SIMPLE or kind is type(None):
        return kind
    if issubclass(kind, numbers.Integral):
        return int
    if issubclass(kind, numbers.Real):
        return float
    if kind.__name__ == "bool_":
        return bool
    return kind


def kind_of(types: Set[type]) -> str:
    """The column kind for the Python types seen in an input column (no Arrow schema)."""
    seen = {_plain(t) for t in types if t is not type(None)}
    if not seen:
        return "string"
    if seen <= {int, float} and float in seen:
        return "float"
    if len(seen) == 1:
        only = next(iter(seen))
        if only in _SIMPLE:
            return _SIMPLE[only]
        if only in (dt.datetime, dt.date, bytes):
            return only.__name__
    if seen & {dict, list, tuple}:
        return "json"
    return "text"  # a mix of plain values: each as its text


class Shape:
    """A table's columns: names in order, and for Parquet the Arrow type of each."""

    def __init__(self, input_columns: Sequence[str], added: Sequence[Column], *,
                 input_schema: Any = None,
                 input_kinds: Optional[Mapping[str, Set[type]]] = None) -> None:
        self.input_columns = list(input_columns)
        self.added = list(added)
        self.names = [*self.input_columns, *(c.name for c in self.added)]
        self.input_schema = input_schema
        self.kinds: Dict[str, str] = {}
        for name in self.input_columns:
            if input_schema is not None and name in input_schema.names:
                self.kinds[name] = "arrow"
            else:
                self.kinds[name] = kind_of(set((input_kinds or {}).get(name, ())))
        for column in self.added:
            self.kinds[column.name] = column.kind
        #: Columns whose values a Parquet output writes as JSON text, or as plain text.
        self.as_json = [name for name, kind in self.kinds.items() if kind == "json"]
        self.as_text = [name for name, kind in self.kinds.items() if kind == "text"]

    def arrow_schema(self) -> Any:
        pa = need("pyarrow", "a Parquet output")
        types = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(),
                 "bool": pa.bool_(), "json": pa.string(), "text": pa.string(),
                 "datetime": pa.timestamp("us"), "date": pa.date32(), "bytes": pa.binary()}
        fields = []
        for name in self.names:
            kind = self.kinds[name]
            if kind == "arrow":
                fields.append(self.input_schema.field(name))
            else:
                fields.append(pa.field(name, types[kind]))
        return pa.schema(fields)


class Writer:
    def write(self, records: List[Dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the file (a Parquet footer); the handle stays open."""

    def release(self) -> None:
        """Hand back memory a library keeps for reuse (Arrow's pool), between chunks."""


class CsvWriter(Writer):
    def __init__(self, handle: IO[bytes], shape: Shape, delimiter: str) -> None:
        # a lone surrogate (no UTF-8 holds it) is written as its escape, \ud800
        self.text = io.TextIOWrapper(handle, encoding="utf-8", errors="backslashreplace",
                                     newline="", write_through=True)
        self.names = shape.names
        self.writer = csv.writer(self.text, delimiter=delimiter, lineterminator="\n")
        self.writer.writerow(self.names)

    def write(self, records: List[Dict[str, Any]]) -> None:
        names = self.names
        self.writer.writerows([cell_text(record.get(name)) for name in names]
                              for record in records)

    def close(self) -> None:
        self.text.flush()
        self.text.detach()  # the caller closes the handle


class JsonlWriter(Writer):
    def __init__(self, handle: IO[bytes], shape: Shape) -> None:
        self.handle = handle
        self.names = shape.names

    def write(self, records: List[Dict[str, Any]]) -> None:
        names = self.names
        lines = [json.dumps({name: record.get(name) for name in names}, ensure_ascii=False,
                            default=_json_default) for record in records]
        text = "\n".join(lines) + "\n"
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: those lines as JSON escapes
            data = ("\n".join(_ascii_if_needed(line) for line in lines) + "\n").encode("utf-8")
        self.handle.write(data)


class ArrowMaker:
    """Records -> Arrow tables of one schema (for Parquet, and ``report.to_arrow()``)."""

    def __init__(self, shape: Shape) -> None:
        self.pa = need("pyarrow", "an Arrow table")
        self.shape = shape
        self.schema = shape.arrow_schema()

    def table(self, records: List[Dict[str, Any]]) -> Any:
        """The records as an Arrow table of the shape's schema, or OutputError naming
        the column whose values do not fit its type."""
        pa = self.pa
        as_json, as_text = set(self.shape.as_json), set(self.shape.as_text)
        arrays = []
        for field in self.schema:
            name = field.name
            values = [record.get(name) for record in records]
            if name in as_json:
                values = [json_text(value) for value in values]
            elif name in as_text:
                values = [None if value is None else cell_text(value) for value in values]
            try:
                arrays.append(pa.array(values, type=field.type))
                continue
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError,
                    OverflowError, UnicodeEncodeError) as exc:
                problem = exc
            if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                try:  # text no UTF-8 holds: written as its escapes
                    arrays.append(pa.array([_clean_text(v) for v in values], type=field.type))
                    continue
                except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
                    problem = exc
            raise OutputError(f"the column {name!r} holds a value that is not "
                              f"{field.type}: {problem}")
        return pa.Table.from_arrays(arrays, schema=self.schema)


def _ascii_if_needed(line: str) -> str:
    try:
        line.encode("utf-8")
        return line
    except UnicodeEncodeError:
        return json.dumps(json.loads(line), ensure_ascii=True)


def _clean_text(value: Any) -> Any:
    """A str no UTF-8 can hold (a lone surrogate) as its escapes; anything else as is."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


class ParquetWriter(Writer):
    """A row group per chunk."""

    def __init__(self, handle: IO[bytes], shape: Shape) -> None:
        parquet = need("pyarrow.parquet", "a Parquet output")
        self.maker = ArrowMaker(shape)
        self.writer = parquet.ParquetWriter(handle, self.maker.schema)

    def write(self, records: List[Dict[str, Any]]) -> None:
        self.writer.write_table(self.maker.table(records))

    def release(self) -> None:
        self.maker.pa.default_memory_pool().release_unused()

    def close(self) -> None:
        self.writer.close()


def open_writer(kind: str, handle: IO[bytes], columns: List[Column], *,
                arrow_input: Any = None, shape: Optional[Shape] = None) -> Writer:
    """A writer of ``kind`` (csv, tsv, jsonl, parquet) on an open binary handle."""
    shape = shape if shape is not None else Shape([], columns, input_schema=arrow_input)
    if kind == "parquet":
        return ParquetWriter(handle, shape)
    if kind == "jsonl":
        return JsonlWriter(handle, shape)
    return CsvWriter(handle, shape, "\t" if kind == "tsv" else ",")
