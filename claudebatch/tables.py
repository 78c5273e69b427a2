"""Tables out: a job's answers as CSV, Parquet or JSON lines, and the columns plugins add.

A table has the input's columns (for a job over rows), then the job's own:
``custom_id``, ``result_type``, ``answer`` (the text of the answer), ``stop_reason``,
``error_type``, ``error_message``, ``input_tokens``, ``output_tokens``,
``cache_creation_input_tokens``, ``cache_read_input_tokens``; then each plugin's
(``table_columns``: the cost plugin's ``cost_usd``, one per top-level field of a
structured-output schema). The format follows the extension: ``.csv``, ``.tsv``,
``.parquet``, ``.jsonl``; any destination may be an fsspec URL.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional

import attrs

#: Kinds a column may be: how a Parquet output types it, and a CSV writes it.
KINDS = ("string", "int", "float", "bool", "json")
#: Table formats by extension.
TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
                 ".jsonl": "jsonl", ".ndjson": "jsonl"}


@attrs.frozen
class Column:
    """One column of a table output: its ``name`` and ``kind`` (one of :data:`KINDS`;
    ``json`` holds any JSON value, written as JSON text in CSV and Parquet)."""

    name: str
    kind: str = attrs.field(default="string")

    @kind.validator
    def _known(self, _: Any, value: str) -> None:
        if value not in KINDS:
            raise ValueError(f"a column's kind is one of {', '.join(KINDS)}, got {value!r}")


#: The job's own columns, after the input's.
ANSWER_COLUMNS = (
    Column("custom_id"), Column("result_type"), Column("answer"), Column("stop_reason"),
    Column("error_type"), Column("error_message"), Column("input_tokens", "int"),
    Column("output_tokens", "int"), Column("cache_creation_input_tokens", "int"),
    Column("cache_read_input_tokens", "int"),
)
_USAGE = ("input_tokens", "output_tokens", "cache_creation_input_tokens",
          "cache_read_input_tokens")


def table_format(path: str) -> Optional[str]:
    """``csv``, ``tsv``, ``parquet`` or ``jsonl`` by ``path``'s extension; None if none."""
    name = path.rstrip("/").rsplit("/", 1)[-1].lower()
    dot = name.rfind(".")
    return TABLE_FORMATS.get(name[dot:]) if dot > 0 else None


def answer_values(value: Optional[Mapping[str, Any]], prefix: str = "") -> Dict[str, Any]:
    """The job's own columns for one result line (a parsed dict; None: no result)."""
    found: Dict[str, Any] = dict.fromkeys(prefix + c.name for c in ANSWER_COLUMNS)
    if not isinstance(value, Mapping):
        return found
    found[prefix + "custom_id"] = value.get("custom_id")
    result = value.get("result")
    if not isinstance(result, Mapping):
        return found
    kind = result.get("type")
    found[prefix + "result_type"] = kind
    if kind == "succeeded":
        message = result.get("message")
        if isinstance(message, Mapping):
            found[prefix + "answer"] = _text_of(message.get("content"))
            found[prefix + "stop_reason"] = message.get("stop_reason")
            usage = message.get("usage")
            if isinstance(usage, Mapping):
                for name in _USAGE:
                    count = usage.get(name)
                    found[prefix + name] = count if isinstance(count, int) \
                        and not isinstance(count, bool) else None
    elif kind == "errored":
        error = result.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("error"), Mapping):
            error = error["error"]  # the API's envelope: {"type": "error", "error": {...}}
        if isinstance(error, Mapping):
            found[prefix + "error_type"] = error.get("type")
            found[prefix + "error_message"] = error.get("message")
    return found


def _text_of(content: Any) -> Optional[str]:
    """The answer's text: every text block, joined (tool calls and thinking left out)."""
    if not isinstance(content, list):
        return None
    parts = [str(block["text"]) for block in content
             if isinstance(block, Mapping) and block.get("type") == "text"
             and isinstance(block.get("text"), str)]
    return "".join(parts) if parts else None


def has_answer_columns(names: Iterable[str]) -> bool:
    """Whether column names hold a table's own columns: ``custom_id``, ``result_type`` and
    ``answer``, with one prefix (``--column-prefix``) or none."""
    names = set(names)
    return any(name.endswith("result_type")
               and {name[:-len("result_type")] + "custom_id",
                    name[:-len("result_type")] + "answer"} <= names
               for name in names)


def _first_keys(path: str) -> Optional[List[str]]:
    """The keys of a JSON lines file's first object (streamed: a line of any length), or
    None when the file does not start with one."""
    import ijson

    keys: List[str] = []
    try:
        with open(path, "rb") as handle:
            for prefix, event, value in ijson.parse(handle, multiple_values=True):
                if prefix == "" and event == "map_key":
                    keys.append(str(value))
                elif prefix == "" and event == "end_map":
                    return keys
                elif prefix == "" and event != "start_map":
                    return None  # a first value that is not an object
    except Exception:  # not JSON
        return None
    return None


def _looks_ours(path: str) -> bool:
    """Whether an existing file holds what claudebatch writes there: result lines, or a
    table with the job's own columns."""
    kind = table_format(path)
    if kind == "parquet":
        try:
            import pyarrow.parquet as pq

            return has_answer_columns(pq.read_schema(path).names)
        except Exception:  # not Parquet at all, or no pyarrow
            return False
    if kind in ("csv", "tsv"):
        import csv

        try:
            with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
                header = next(csv.reader(handle, delimiter="\t" if kind == "tsv" else ","),
                              None)
        except csv.Error:
            return False
        return header is not None and has_answer_columns(header)
    keys = _first_keys(path)
    if keys is None:
        return False
    return {"custom_id", "result"} <= set(keys) or has_answer_columns(keys)


def _has_content(path: str) -> bool:
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(65536)
            if not chunk:
                return False
            if chunk.strip():
                return True


def check_overwrite(path: str) -> None:
    """Refuse to replace a local file that holds something other than what claudebatch
    writes (result lines, a table of answers): an input, a template, a job store. Raises
    :class:`~claudebatch.errors.OutputPathError` saying so; a URL or a new file passes."""
    from ._fs import is_url, local
    from .errors import OutputPathError

    if is_url(path):
        return
    target = local(path)
    try:
        if not os.path.isfile(target) or not _has_content(target):
            return
        ours = _looks_ours(target)
    except OSError:
        return  # unreadable: the write itself will say why
    if not ours:
        raise OutputPathError(
            f"the output {path} exists and does not hold results claudebatch wrote (an "
            "input, a template, a job store?): it is not overwritten; remove it first or "
            "choose another name")


def write_results_table(lines: Iterable[bytes], destination: str, *,
                        storage_options: Optional[Mapping[str, Any]] = None) -> int:
    """Write result lines (JSON, as a results file holds them) to ``destination``: a
    ``.jsonl`` gets the lines as they are; ``.csv``/``.tsv``/``.parquet`` a table of the
    job's own columns. Any fsspec URL; replaced whole, or not at all. Returns the count."""
    from . import _fs
    from ._tablewriter import open_writer

    kind = table_format(destination) or "jsonl"
    count = 0
    if kind == "jsonl":
        with _fs.open_output(destination, storage_options) as handle:
            for line in lines:
                handle.write(line.rstrip(b"\n") + b"\n")
                count += 1
        return count
    with _fs.open_output(destination, storage_options) as handle:
        writer = open_writer(kind, handle, list(ANSWER_COLUMNS), arrow_input=None)
        chunk: List[Dict[str, Any]] = []
        for line in lines:
            chunk.append(answer_values(json.loads(line)))
            if len(chunk) >= 4096:
                writer.write(chunk)
                count += len(chunk)
                chunk = []
        if chunk:
            writer.write(chunk)
            count += len(chunk)
        writer.close()
    return count
