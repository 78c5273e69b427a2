"""Rows and a prompt template in, one request per row: no hand-built request files.

``client.run(Rows("reviews.csv", template="Classify: {{ text }}", model=...),
output="reviews.parquet")``. The rows may be a CSV/TSV, JSONL or Parquet file
(local or any fsspec URL), a pandas or polars DataFrame, a pyarrow Table or
dataset, a Hugging Face ``datasets.Dataset``, or any iterable of mappings; they
are read a chunk at a time, so memory stays flat in the number of rows.

Each row's custom_id is its ``id_column`` value when that fits the API's pattern
(``[a-zA-Z0-9_-]{1,64}``), else a stable hash of it (``key-...``); without an id
column, a stable hash of the row (``row-...``; an identical row again gets
``-2``, ``-3``...). Two rows with the same id value are refused, both named. A
table output carries the input columns beside each answer, so the user's own key
is there whatever the custom_id is.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import operator
import os
import pickle
import tempfile
from typing import IO, Any, Dict, Iterator, List, Mapping, Optional, Set, Tuple, Union

from ._compactset import DigestTable
from ._inputs import SourceProblem
from ._rowsource import RowReader, open_rows
from .errors import ValidationError
from .limits import CUSTOM_ID_PATTERN

#: Parameters the template and the options make; ``params`` must not hold them.
MADE_HERE = ("messages", "system", "model", "max_tokens")

_MISSING = object()
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

TemplateText = Union[str, "os.PathLike[str]"]


def _read_template(value: Optional[TemplateText], what: str) -> Tuple[Optional[str], str]:
    """``(text, name for messages)``; a path is read, a str is the template itself."""
    if value is None:
        return None, what
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read(), path
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"cannot read {what} {path}: "
                                  f"{getattr(exc, 'strerror', None) or exc}") from None
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be text or a path, got {type(value).__name__}")
    return value, what


class Rows:
    """A table of rows and how each becomes a request: pass it to ``client.run``.

    ``template`` (the user message) and ``system`` are Jinja2 templates, as text or
    as a ``pathlib.Path`` to read; each row's columns are their variables (and
    ``row``, the whole row). ``params`` are any other request parameters
    (``temperature``, ``tools``, ``metadata``...). ``format`` names the file format
    when the extension does not (``csv``, ``tsv``, ``jsonl``, ``parquet``);
    ``storage_options`` go to fsspec for a URL.
    """

    def __init__(self, data: Any, *, template: TemplateText, model: str,
                 max_tokens: int = 1024, system: Optional[TemplateText] = None,
                 params: Optional[Mapping[str, Any]] = None, id_column: Optional[str] = None,
                 format: Optional[str] = None,
                 storage_options: Optional[Mapping[str, Any]] = None) -> None:
        from ._template import Template  # jinja2, imported only when rows are made

        text, name = _read_template(template, "the template")
        if not text or not text.strip():
            raise ValidationError("the template is empty: it makes each row's user message")
        system_text, sys_name = _read_template(system, "the system template")
        self.template = Template(text, name=name)
        self.system = Template(system_text, name=sys_name) if system_text is not None else None
        if not isinstance(model, str) or not model:
            raise ValidationError("rows need a model for their requests (--model / model=)")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValidationError(f"max_tokens must be a whole number >= 1, got {max_tokens!r}")
        self.model = model
        self.max_tokens = max_tokens
        self.params = dict(params or {})
        clash = [key for key in MADE_HERE if key in self.params]
        if clash:
            raise ValidationError(f"params must not hold {', '.join(clash)}: the template and "
                                  "the model and max_tokens options make them")
        self.id_column = None if id_column is None else str(id_column)  # columns are text
        id_column = self.id_column
        self.data = data
        self.path = os.fspath(data) if isinstance(data, (str, os.PathLike)) else None
        self.reader: RowReader = open_rows(data, format=format,
                                           storage_options=storage_options)
        if id_column is not None and self.reader.columns is not None \
                and id_column not in self.reader.columns:
            raise ValidationError(
                f"the id column {id_column!r} is not a column of {self.reader.name} (its "
                f"columns: {', '.join(self.reader.columns[:20])})")
        #: Column names in the order first seen (known up front for files with a header).
        self.columns: Dict[str, None] = dict.fromkeys(self.reader.columns or ())
        #: The Python types seen in each column, where no Arrow schema says: a Parquet
        #: output types its columns from them.
        self.kinds: Dict[str, Set[type]] = {}

    def __repr__(self) -> str:
        return f"<Rows {self.reader.name} model={self.model!r}>"

    @property
    def schema(self) -> Any:
        """The input's Arrow schema, when it has one."""
        return self.reader.schema

    @property
    def name(self) -> str:
        return self.path or self.reader.name

    def options(self) -> Dict[str, Any]:
        """What decides the requests made from the rows (a store compares it on resume)."""
        def digest(text: Optional[str]) -> Optional[str]:
            return None if text is None else hashlib.sha256(text.encode()).hexdigest()[:16]

        return {"template": digest(self.template.text),
                "system": digest(self.system.text if self.system else None),
                "model": self.model, "max_tokens": self.max_tokens,
                "params": digest(json.dumps(self.params, sort_keys=True, default=str)),
                "id_column": self.id_column}

    def requests(self, spool: Optional[RowsSpool] = None) -> Iterator[Tuple[str, Any]]:
        """``(where, request or SourceProblem)`` per row, in order; rows go to ``spool``."""
        seen = DigestTable()
        repeats: Dict[int, int] = {}
        reader = self.reader
        track = self.schema is None
        for positions, rows in reader.chunks():
            ids: List[str] = []
            kept: List[Dict[str, Any]] = []
            for number, row in zip(positions, rows):
                where = reader.label(number)
                if isinstance(row, SourceProblem):
                    yield where, row
                    continue
                if track:
                    self._track(row)
                elif len(self.columns) < len(row):
                    self.columns.update(dict.fromkeys(map(str, row)))
                custom_id, problem = self._custom_id(row, number, seen, repeats)
                if problem is not None:
                    yield where, SourceProblem(problem)
                    continue
                item, problem = self._request(row, custom_id)
                yield where, (item if problem is None else SourceProblem(problem))
                ids.append(custom_id)
                kept.append(row)
            if spool is not None:
                spool.append(ids, kept)

    def _track(self, row: Mapping[str, Any]) -> None:
        columns, kinds = self.columns, self.kinds
        for key, value in row.items():
            found = kinds.get(key)
            if found is None:
                found = kinds[key] = set()
                columns[key] = None
            kind = type(value)
            if kind is int and not _INT64_MIN <= value <= _INT64_MAX:
                kind = str  # past 64 bits: the column is written as text
            found.add(kind)

    def _custom_id(self, row: Mapping[str, Any], number: int, seen: DigestTable,
                   repeats: Dict[int, int]) -> Tuple[str, Optional[str]]:
        column = self.id_column
        if column is None:
            text = json.dumps(row, sort_keys=True, default=str, ensure_ascii=False)
            digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
            short = int.from_bytes(digest[:8], "big")
            base = "row-" + digest[:16].hex()
            if seen.add(short, number) is None:
                return base, None
            count = repeats[short] = repeats.get(short, 1) + 1
            return f"{base}-{count}", None
        value = row.get(column, _MISSING)
        if value is _MISSING:
            return "", f"the row has no id column {column!r}"
        key = _key_text(value)
        if key is None:
            return "", (f"the id column {column!r} holds {value!r}: an id must be text or a "
                        "whole number")
        if not key:
            return "", f"the id column {column!r} is empty"
        custom_id = key if CUSTOM_ID_PATTERN.fullmatch(key) else "key-" + hashlib.sha256(
            key.encode("utf-8", "surrogatepass")).digest()[:16].hex()
        # unique by the custom_id made, so an id that spells another's hash is caught too
        made = hashlib.sha256(custom_id.encode("ascii")).digest()
        earlier = seen.add(int.from_bytes(made[:8], "big"), number)
        if earlier is None:
            return custom_id, None
        if custom_id == key:
            return "", (f"the id {key!r} (column {column!r}) is also the id of "
                        f"{self.reader.label(earlier)}: ids must be unique")
        return "", (f"the id {key!r} (column {column!r}) makes the custom_id {custom_id!r}, "
                    f"which {self.reader.label(earlier)} makes too: ids must be unique")

    def _request(self, row: Mapping[str, Any], custom_id: str
                 ) -> Tuple[Dict[str, Any], Optional[str]]:
        text, problem = self.template.render(row)
        if problem is not None or text is None:
            return {}, problem
        if not text.strip():
            return {}, f"{self.template.name} made an empty message for this row"
        params: Dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens}
        if self.system is not None:
            system, problem = self.system.render(row)
            if problem is not None or system is None:
                return {}, problem
            if system.strip():
                params["system"] = system
        params["messages"] = [{"role": "user", "content": text}]
        params.update(self.params)
        return {"custom_id": custom_id, "params": params}, None


def _key_text(value: Any) -> Optional[str]:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):  # numpy's integers too
        return str(operator.index(value))
    if isinstance(value, numbers.Real):
        whole = float(value)
        if math.isfinite(whole) and whole.is_integer():
            return str(int(whole))  # a whole number a DataFrame made a float
    return None


class RowsSpool:
    """The rows a job read (or only their custom_ids), in order, on disk: for the table.

    Pickled a chunk at a time into an unlinked temporary file: the values keep their
    Python types (dates, decimals, bytes) for a Parquet output.
    """

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="claudebatch-rows-")
        self.count = 0
        self._ids: List[str] = []  # custom_ids awaiting a chunk (requests without rows)

    def append(self, ids: List[str], rows: Optional[List[Dict[str, Any]]]) -> None:
        pickle.dump((ids, rows), self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.count += len(ids)

    def add_id(self, custom_id: str) -> None:
        """One request's custom_id (a job of requests has no other columns)."""
        self._ids.append(custom_id)
        if len(self._ids) >= 4096:
            self.flush()

    def flush(self) -> None:
        if self._ids:
            self.append(self._ids, None)
            self._ids = []

    def chunks(self) -> Iterator[Tuple[List[str], Optional[List[Dict[str, Any]]]]]:
        """Each chunk as appended: ``(custom_ids, rows or None)``."""
        self.flush()
        handle = self._file
        end = handle.tell()
        handle.seek(0)
        try:
            while handle.tell() < end:
                yield pickle.load(handle)
        finally:
            handle.seek(end)

    def close(self) -> None:
        self._file.close()
