"""A job's table: the rows as read, each joined to its answer, written when the job ends.

The job writes result lines to its results file as they stream (resumable, never
rewritten); the table is made from them at the end, in the input's order: the
rows (spooled as planned) a chunk at a time, each chunk's lines looked up in an
index on disk. A table that cannot be written leaves the results file whole.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Mapping, Optional, Set, Tuple

from .. import _fs
from .._output import check_output
from .._resultindex import ResultIndex
from .._tablewriter import ArrowMaker, Shape, open_writer
from ..errors import ConfigurationError, OutputError, OutputPathError, ValidationError
from ..rows import Rows, RowsSpool
from ..tables import ANSWER_COLUMNS, Column, answer_values, table_format

if TYPE_CHECKING:
    from .run import Job


def results_path_for(table: str, name: str) -> str:
    """Where a job writing ``table`` keeps its result lines: beside a local table
    (``out.parquet`` -> ``out.parquet.results.jsonl``: two tables never share one); for a
    URL, in the current folder, named after the URL (``out.parquet-3f2a9c1e.results.jsonl``)."""
    if _fs.is_url(table):
        tag = hashlib.sha256(table.encode("utf-8")).hexdigest()[:8]
        return os.path.join(os.getcwd(), f"{_fs.basename(table) or name}-{tag}.results.jsonl")
    path = os.path.abspath(_fs.local(table))
    return f"{path}.results.jsonl"


def route_output(source: Any, output: Optional[str], results: Optional[str], name: str
                 ) -> Tuple[Optional[str], Optional[str]]:
    """``(table, result lines file)`` for a job's ``output`` and ``results`` options.

    A job over rows, or an ``output`` that is a table by its extension or a URL, writes
    a table there and its result lines to ``results`` (by default named after the
    table); any other ``output`` is the result lines file itself, as it always was.
    """
    if results is not None and _fs.is_url(results):
        raise ConfigurationError(f"the result lines go to a local file (the job appends to "
                                 f"it as results stream, and resumes from it), not {results}; "
                                 "the table may be a URL")
    if output is not None and (isinstance(source, Rows) or _fs.is_url(output)
                               or table_format(output) in ("csv", "tsv", "parquet")):
        return output, results or results_path_for(output, name)
    if results is not None:
        raise ConfigurationError("--results / results= names the result lines' file of a "
                                 "job that writes a table; this job writes its result lines "
                                 f"to {output!r}")
    return None, None if output is None else _fs.local(output)  # file://...


def _refuse_clash(columns: Iterable[str], taken: Set[str]) -> None:
    clash = [name for name in columns if name in taken]
    if clash:
        raise ValidationError(
            f"the input column(s) {', '.join(map(repr, clash))} have the name of a column "
            "the table adds; rename them, or prefix the added columns (--column-prefix llm_ "
            "/ column_prefix=)")


class TablePlan:
    """The table a job writes to ``destination`` (a path or fsspec URL)."""

    def __init__(self, job: Job, destination: Optional[str], *,
                 storage_options: Optional[Mapping[str, Any]] = None,
                 column_prefix: str = "") -> None:
        self.job = job
        self.destination = destination
        self.storage_options = storage_options
        self.prefix = column_prefix
        self.spool: Optional[RowsSpool] = None
        self.kind: Optional[str] = None
        if destination is None:
            return  # in memory only (report.to_arrow())
        kind = table_format(destination)
        rows = isinstance(job.source, Rows)
        if kind is None:
            raise OutputPathError(
                f"cannot tell the table format of {destination}: name it .csv, .tsv, "
                ".parquet or .jsonl")
        #: ``lines``: a job of requests writing JSONL copies its result lines as they are.
        self.kind = kind if rows or kind != "jsonl" else "lines"

    def added_columns(self) -> List[Column]:
        """The job's columns and the plugins', prefixed."""
        columns = [Column(self.prefix + c.name, c.kind) for c in ANSWER_COLUMNS]
        for group in self.job.hook.table_columns(context=self.job.context):
            columns.extend(Column(self.prefix + c.name, c.kind) for c in group or ())
        return columns

    def check(self) -> None:
        """Before anything is sent: the destination is writable, the format's library
        is installed, and no column of the input has the name of one the job adds."""
        source = self.job.source
        path = source.path if isinstance(source, Rows) else source
        destination = self.destination
        assert destination is not None
        if _fs.is_url(destination):
            _fs.check_destination(destination, self.storage_options, path)
        else:  # the checks of any local output: folder, input, writable, overwrite
            check_output(_fs.local(destination), path)
        if not _fs.is_url(destination) and os.path.abspath(_fs.local(destination)) \
                == self.job.output:
            raise OutputPathError(f"the table {self.destination} is the results file "
                                  f"{self.job.output}: give them different names")
        if self.kind == "parquet":
            from .._extras import need

            need("pyarrow.parquet", f"the Parquet output {self.destination}")
        added = self.added_columns()
        names = [c.name for c in added]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValidationError(f"the table would have two columns named {repeated[0]!r} "
                                  "(the job's own and a plugin's, or two plugins')")
        if isinstance(source, Rows):  # a header known before reading: refused at once
            _refuse_clash(source.reader.columns or (), set(names))

    def new_spool(self) -> RowsSpool:
        self.spool = RowsSpool()
        return self.spool

    def check_columns(self) -> None:
        """After planning, before sending: the columns found while reading (JSONL, dicts
        have no header) must not clash with the ones the table adds."""
        source = self.job.source
        if isinstance(source, Rows):
            _refuse_clash(source.columns, {c.name for c in self.added_columns()})

    def shape(self) -> Shape:
        source = self.job.source
        added = self.added_columns()
        if isinstance(source, Rows):
            self.check_columns()
            return Shape(list(source.columns), added, input_schema=source.schema,
                         input_kinds=source.kinds)
        return Shape([], added)

    def records(self) -> Iterator[List[Dict[str, Any]]]:
        """The table a chunk at a time: each row as read, then its answer's columns."""
        hook = self.job.hook
        plugins = bool(hook.table_values.get_hookimpls())
        context = self.job.context
        prefix = self.prefix
        index = ResultIndex(self.job.output)
        try:
            for ids, rows in self._chunks():
                lines = index.find(ids)
                records = []
                for position, custom_id in enumerate(ids):
                    record: Dict[str, Any] = dict(rows[position]) if rows else {}
                    line = lines.get(custom_id)
                    value = json.loads(line) if line is not None else None
                    record.update(answer_values(value, prefix))
                    record[prefix + "custom_id"] = custom_id
                    if plugins:
                        for part in hook.table_values(value=value, context=context):
                            for name, cell in (part or {}).items():
                                record[prefix + name] = cell
                    records.append(record)
                yield records
        finally:
            index.close()

    def _chunks(self) -> Iterator[Tuple[List[str], Optional[List[Dict[str, Any]]]]]:
        if self.spool is not None:
            yield from self.spool.chunks()
            return
        # No spool (a dry run, or a report of a job of requests): the results' own order.
        ids: List[str] = []
        with open(self.job.output, "rb") as handle:
            for line in handle:
                if line.strip():
                    ids.append(str(json.loads(line).get("custom_id")))
                    if len(ids) >= 4096:
                        yield ids, None
                        ids = []
        if ids:
            yield ids, None

    def write(self) -> None:
        """Write the whole table to the destination, replacing it; or raise OutputError
        saying the results file is intact."""
        assert self.destination is not None and self.kind is not None
        try:
            if self.kind == "lines":
                with _fs.open_output(self.destination, self.storage_options) as handle, \
                        open(self.job.output, "rb") as lines:
                    for line in lines:
                        handle.write(line)
                return
            shape = self.shape()
            with _fs.open_output(self.destination, self.storage_options) as handle:
                writer = open_writer(self.kind, handle, [], shape=shape)
                try:
                    for count, records in enumerate(self.records()):
                        writer.write(records)
                        if count % 8 == 7:
                            writer.release()
                finally:
                    writer.close()
        except (OutputError, ValidationError) as exc:
            raise OutputError(f"cannot write the table {self.destination}: {exc}. The "
                              f"results are whole in {self.job.output}; run the same command "
                              "again to write the table") from None
        except Exception as exc:  # a library's own error on a value: named, never a trace
            raise OutputError(f"cannot write the table {self.destination}: "
                              f"{type(exc).__name__}: {exc}. The results are whole in "
                              f"{self.job.output}; run the same command again to write the "
                              "table") from None

    def to_arrow(self) -> Any:
        """The whole table as one Arrow table (in memory: the caller asked for it)."""
        maker = ArrowMaker(self.shape())
        tables = [maker.table(records) for records in self.records()]
        return maker.pa.concat_tables(tables) if tables else maker.schema.empty_table()
