"""Reading rows from whatever holds them, a chunk at a time: memory flat in the row count.

Files (CSV/TSV, JSONL, Parquet; local or any fsspec URL), pandas and polars
DataFrames, pyarrow Tables, batches and datasets, Hugging Face datasets, and any
iterable of mappings. Each chunk carries a label per row for messages: a text
file's line (``reviews.csv line 8``), or a row's 0-based position (``row 7``,
as ``df.iloc`` counts). The libraries are imported only when such data is given.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import zlib
from typing import IO, Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

from . import _fs
from ._extras import need
from ._inputs import SourceProblem, iter_jsonl_lines
from .errors import ValidationError
from .limits import MAX_BATCH_BYTES

#: Rows per chunk: enough to amortize per-chunk work, small enough to keep memory flat.
CHUNK_ROWS = 4096
#: The formats a file may be, by extension (``format=`` names one for other names).
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".parquet": "parquet", ".pq": "parquet"}

Chunk = Tuple[List[int], List[Any]]  # numbers (lines or rows), rows (a dict or a SourceProblem)


def file_format(path: str, given: Optional[str] = None) -> Optional[str]:
    """The format of a data file by its extension (``.gz`` looked through), or ``given``."""
    if given:
        return given
    name = _fs.basename(path).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return FORMATS.get(os.path.splitext(name)[1])


def _library(value: Any) -> str:
    return type(value).__module__.split(".")[0]


class RowReader:
    """One source of rows; ``chunks()`` reads it (again, when it can be read twice)."""

    #: An Arrow schema of the input columns when the source has one (Parquet, Arrow,
    #: DataFrames, datasets): a Parquet output keeps the input's types.
    schema: Any = None
    #: The column names, when known before the first row (a header, a schema).
    columns: Optional[List[str]] = None
    #: What a chunk's numbers count: a text file's ``line`` (1-based) or a ``row`` (0-based).
    unit = "row"

    def __init__(self, name: str) -> None:
        self.name = name

    def label(self, number: int) -> str:
        """Where row ``number`` is, for a message: ``reviews.csv line 8``, ``DataFrame row 7``."""
        return f"{self.name} {self.unit} {number}"

    def chunks(self) -> Iterator[Chunk]:
        raise NotImplementedError


def open_rows(data: Any, *, format: Optional[str] = None,
              storage_options: Optional[Mapping[str, Any]] = None) -> RowReader:
    """A RowReader for ``data``, or a ValidationError saying what it cannot read."""
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        kind = file_format(path, format)
        if kind == "parquet" and path.lower().endswith(".gz"):
            raise ValidationError(f"{path}: a gzipped Parquet file is not read (Parquet "
                                  "compresses its own columns): gunzip it first")
        if kind is None:
            raise ValidationError(
                f"cannot tell the format of {path} from its name: name it .csv, .tsv, "
                ".jsonl or .parquet, or give the format (--format / format=)")
        if kind not in ("csv", "tsv", "jsonl", "parquet"):
            raise ValidationError(f"unknown row format {kind!r} for {path}: csv, tsv, "
                                  "jsonl or parquet")
        if kind == "parquet":
            return ParquetRows(path, storage_options)
        if kind == "jsonl":
            return JsonlRows(path, storage_options)
        return CsvRows(path, storage_options, delimiter="\t" if kind == "tsv" else ",")
    library = _library(data)
    if library == "pandas" and hasattr(data, "iloc"):
        return PandasRows(data)
    if library == "polars":
        if not hasattr(data, "iter_slices"):
            raise ValidationError("a polars LazyFrame is not rows yet: .collect() it first")
        return PolarsRows(data)
    if library == "pyarrow":
        return ArrowRows(data)
    if library == "datasets" and hasattr(data, "with_format") and hasattr(data, "features"):
        return HuggingFaceRows(data)
    if isinstance(data, (bytes, Mapping)) or not isinstance(data, Iterable):
        raise ValidationError(f"rows must be a file, a DataFrame, an Arrow table or dataset, "
                              f"a Hugging Face dataset, or an iterable of mappings; got "
                              f"{type(data).__name__}")
    return IterableRows(data)


def _text(handle: IO[bytes]) -> IO[str]:
    """Text over a binary handle: UTF-8, a byte-order mark skipped, newlines as written."""
    return io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")


def _maybe_gunzip(handle: IO[bytes], path: str) -> IO[bytes]:
    if path.lower().endswith(".gz"):
        import gzip

        return gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[return-value]
    return handle


class CsvRows(RowReader):
    """A CSV (or TSV) file with a header line; every value is text, as written."""

    unit = "line"

    def __init__(self, path: str, options: Optional[Mapping[str, Any]], *,
                 delimiter: str = ",") -> None:
        super().__init__(_fs.basename(path))
        self.path = path
        self.options = options
        self.delimiter = delimiter
        if csv.field_size_limit() < MAX_BATCH_BYTES:  # a long document in one cell
            csv.field_size_limit(MAX_BATCH_BYTES)
        self.columns = self._header()

    def _reader(self, raw: IO[bytes]) -> Any:
        # strict: an unterminated quote is an error, not the rest of the file in one cell
        return csv.reader(_text(_maybe_gunzip(raw, self.path)), delimiter=self.delimiter,
                          strict=True)

    def _unreadable(self, exc: Exception, line: int) -> str:
        """Where and why the file cannot be read: a decode error's own line, found again."""
        if isinstance(exc, UnicodeDecodeError):
            found = _bad_utf8(self.path, self.options)
            if found is not None:
                return f"{self.name} line {found[0]}: {found[1]}"
        if isinstance(exc, (EOFError, OSError, zlib.error)):
            return f"{self.name}: cannot read the file: {exc or type(exc).__name__}"
        return f"{self.name} line {max(line, 1)}: {exc}"

    def _header(self) -> List[str]:
        with _fs.open_input(self.path, self.options) as raw:
            reader = self._reader(raw)
            try:
                header = next(reader, None)
            except (UnicodeDecodeError, csv.Error, EOFError, OSError, zlib.error) as exc:
                raise ValidationError(f"cannot read {self.path}: "
                                      f"{self._unreadable(exc, reader.line_num)}") from None
        if not header or not any(name.strip() for name in header):
            raise ValidationError(f"{self.path} is empty: a CSV of rows starts with a header "
                                  "line naming its columns")
        seen: Dict[str, int] = {}
        for number, name in enumerate(header, start=1):
            if not name.strip():
                raise ValidationError(f"{self.path} line 1: column {number} has no name")
            if name in seen:
                raise ValidationError(f"{self.path} line 1: the column {name!r} appears twice "
                                      f"(columns {seen[name]} and {number})")
            seen[name] = number
        return list(header)

    def chunks(self) -> Iterator[Chunk]:
        columns = self.columns or []
        width = len(columns)
        with _fs.open_input(self.path, self.options) as raw:
            reader = self._reader(raw)
            labels: List[int] = []
            rows: List[Any] = []
            start = 1
            try:
                next(reader, None)  # the header, checked already
                while True:
                    start = reader.line_num + 1  # a quoted cell may span lines
                    values = next(reader, None)
                    if values is None:
                        break
                    if not values:
                        continue  # a blank line
                    if len(values) != width:
                        rows.append(SourceProblem(
                            f"the row has {len(values)} values and the header {width} "
                            "columns"))
                    else:
                        rows.append(dict(zip(columns, values)))
                    labels.append(start)
                    if len(rows) >= CHUNK_ROWS:
                        yield labels, rows
                        labels, rows = [], []
            except (UnicodeDecodeError, csv.Error, EOFError, OSError, zlib.error) as exc:
                where = self._unreadable(exc, start)
                labels.append(start)
                rows.append(SourceProblem(f"cannot read the file from here on ({where})"))
            if rows:
                yield labels, rows


def _bad_utf8(path: str, options: Optional[Mapping[str, Any]]) -> Optional[Tuple[int, str]]:
    """The line of a file's first byte that is not UTF-8, read again line by line."""
    with _fs.open_input(path, options) as raw:
        for number, line in enumerate(_maybe_gunzip(raw, path), start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, (f"not valid UTF-8: byte 0x{line[exc.start]:02x} at byte "
                                f"{exc.start + 1} of the line")
    return None


class JsonlRows(RowReader):
    """A JSONL file of rows: one JSON object a line."""

    unit = "line"

    def __init__(self, path: str, options: Optional[Mapping[str, Any]]) -> None:
        super().__init__(_fs.basename(path))
        self.path = path
        self.options = options

    def chunks(self) -> Iterator[Chunk]:
        with _fs.open_input(self.path, self.options) as raw:
            handle = _maybe_gunzip(raw, self.path)
            pairs = iter_jsonl_lines(handle, self.name)
            last = 0
            while True:
                try:
                    part = list(itertools.islice(pairs, CHUNK_ROWS))
                except (EOFError, OSError, zlib.error) as exc:  # a broken .gz
                    yield [last + 1], [SourceProblem(
                        f"cannot read the file from here on: {exc or type(exc).__name__}")]
                    return
                if not part:
                    return
                numbers = [int(where.rsplit(" ", 1)[1]) for where, _ in part]
                last = numbers[-1]
                yield numbers, [_object_row(row) for _, row in part]


def _object_row(value: Any) -> Any:
    if isinstance(value, (dict, SourceProblem)):
        return value
    return SourceProblem(f"a row must be a JSON object (its columns), got "
                         f"{'null' if value is None else type(value).__name__}")


def _arrow_chunks(batches: Iterable[Any], start: int = 0) -> Iterator[Chunk]:
    """Chunks from Arrow record batches (or tables), each row a dict of Python values."""
    position = start
    for batch in batches:
        rows = batch.to_pylist()
        if not rows:
            continue
        yield list(range(position, position + len(rows))), rows
        position += len(rows)


class ParquetRows(RowReader):
    def __init__(self, path: str, options: Optional[Mapping[str, Any]]) -> None:
        super().__init__(_fs.basename(path))
        self.path = path
        self.options = options
        parquet = need("pyarrow.parquet", f"reading {path}")
        with _fs.open_input(path, options) as handle:
            try:
                self.schema = parquet.ParquetFile(handle).schema_arrow
            except Exception as exc:  # pyarrow's own errors: not a Parquet file
                raise ValidationError(f"cannot read {path} as Parquet: {exc}") from None
        self.columns = list(self.schema.names)
        self._parquet = parquet

    def chunks(self) -> Iterator[Chunk]:
        # One thread, no read-ahead of whole row groups, and the Arrow pool's unused memory
        # handed back as it goes: a million rows read in about a third of the peak memory.
        pool = need("pyarrow", "Parquet").default_memory_pool()
        with _fs.open_input(self.path, self.options) as handle:
            try:
                batches = self._parquet.ParquetFile(handle, pre_buffer=False).iter_batches(
                    batch_size=CHUNK_ROWS, use_threads=False)
                for count, chunk in enumerate(_arrow_chunks(batches)):
                    yield chunk
                    if count % 8 == 7:
                        pool.release_unused()
            except OSError as exc:
                raise ValidationError(f"cannot read {self.path}: {exc}") from None


class ArrowRows(RowReader):
    """A pyarrow Table, RecordBatch, RecordBatchReader or ``pyarrow.dataset.Dataset``."""

    def __init__(self, data: Any) -> None:
        super().__init__(type(data).__name__)
        self.data = data
        self.schema = data.schema
        self.columns = list(self.schema.names)
        if hasattr(data, "read_next_batch"):  # a reader: read once
            self.name = "RecordBatchReader"

    def chunks(self) -> Iterator[Chunk]:
        data = self.data
        if hasattr(data, "read_next_batch"):
            batches: Iterable[Any] = data
        elif hasattr(data, "to_batches"):
            try:
                batches = data.to_batches(max_chunksize=CHUNK_ROWS)
            except TypeError:  # a dataset names it batch_size
                batches = data.to_batches(batch_size=CHUNK_ROWS)
        else:  # a RecordBatch
            batches = [data]
        yield from _arrow_chunks(batches)


class PandasRows(RowReader):
    """A pandas DataFrame; a missing value (NaN, NaT, NA) is None."""

    def __init__(self, data: Any) -> None:
        super().__init__("DataFrame")
        self.data = data
        self.columns = [str(c) for c in data.columns]
        repeated = sorted({c for c in self.columns if self.columns.count(c) > 1})
        if repeated:
            raise ValidationError(f"the DataFrame has more than one column named "
                                  f"{', '.join(map(repr, repeated))}")
        try:
            import pyarrow

            self.schema = pyarrow.Schema.from_pandas(data, preserve_index=False)
        except Exception:  # no pyarrow, or a column Arrow cannot type: inferred later
            self.schema = None

    def chunks(self) -> Iterator[Chunk]:
        pandas = need("pandas", "a pandas DataFrame")
        frame = self.data
        for start in range(0, len(frame), CHUNK_ROWS):
            part = frame.iloc[start:start + CHUNK_ROWS]
            part = part.astype(object).where(pandas.notna(part), None)
            rows = [{str(k): v for k, v in row.items()} for row in part.to_dict("records")]
            yield list(range(start, start + len(rows))), rows


class PolarsRows(RowReader):
    def __init__(self, data: Any) -> None:
        super().__init__("DataFrame")
        self.data = data
        self.columns = list(data.columns)
        try:
            self.schema = data.head(0).to_arrow().schema
        except Exception:  # no pyarrow
            self.schema = None

    def chunks(self) -> Iterator[Chunk]:
        position = 0
        for part in self.data.iter_slices(n_rows=CHUNK_ROWS):
            rows = part.to_dicts()
            yield list(range(position, position + len(rows))), rows
            position += len(rows)


class HuggingFaceRows(RowReader):
    """A ``datasets.Dataset``: read through its Arrow table, a chunk at a time."""

    def __init__(self, data: Any) -> None:
        super().__init__("Dataset")
        self.data = data
        self.columns = list(data.column_names)
        try:
            self.schema = data.features.arrow_schema
        except Exception:
            self.schema = None

    def chunks(self) -> Iterator[Chunk]:
        yield from _arrow_chunks(self.data.with_format("arrow").iter(batch_size=CHUNK_ROWS))


class IterableRows(RowReader):
    """Any iterable of mappings (a list of dicts, a generator, an IterableDataset)."""

    def __init__(self, data: Iterable[Any]) -> None:
        super().__init__("rows")
        self.data = data

    def chunks(self) -> Iterator[Chunk]:
        items = iter(self.data)
        position = 0
        while True:
            part = list(itertools.islice(items, CHUNK_ROWS))
            if not part:
                return
            rows: List[Any] = []
            for item in part:
                if isinstance(item, Mapping):
                    row = item if type(item) is dict else dict(item)
                    if not all(type(key) is str for key in row):  # columns are named by text
                        row = {str(key): value for key, value in row.items()}
                    rows.append(row)
                else:
                    rows.append(SourceProblem(f"a row must be a mapping of column to value, "
                                              f"got {type(item).__name__}"))
            yield list(range(position, position + len(rows))), rows
            position += len(rows)

