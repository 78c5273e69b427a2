"""``run --template ...``: the command-line options that make requests from rows."""

from __future__ import annotations

import argparse
import json
import pathlib
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from .argtypes import bounded
from .errors import ConfigurationError, ValidationError

if TYPE_CHECKING:  # imported when used: building the parser needs neither
    from .rows import Rows

#: Options that only mean something with --template.
ROW_OPTIONS = ("system", "model", "params_file", "params", "id_column", "format",
               "column_prefix")


def add_row_options(parser: argparse.ArgumentParser, *, model_default: Optional[str] = None
                    ) -> None:
    group = parser.add_argument_group(
        "rows", "INPUT as a table (CSV/TSV, JSONL of rows, Parquet; a path or an fsspec URL): "
                "a request per row from a template (docs/datasets.md).")
    group.add_argument("--template", metavar="FILE",
                       help="Jinja2 template of each row's user message; the row's columns "
                            "are its variables (row[\"name with spaces\"] too)")
    group.add_argument("--system", metavar="FILE", help="Jinja2 template of the system prompt")
    group.add_argument("--model", default=model_default,
                       help="model of every request" + (f" (default {model_default})"
                                                        if model_default else ""))
    group.add_argument("--max-tokens", type=bounded(int, what="a whole number", low=1),
                       default=1024, help="max_tokens of every request (default 1024)")
    group.add_argument("--param", action="append", default=[], dest="params",
                       metavar="KEY=VALUE",
                       help="another request parameter; VALUE is JSON when it parses "
                            "(temperature=0.2, metadata='{\"user_id\": \"u1\"}'), else text; "
                            "repeatable")
    group.add_argument("--params", dest="params_file", metavar="FILE",
                       help="a JSON object of request parameters (--param wins)")
    group.add_argument("--id-column", metavar="COLUMN",
                       help="the column holding each row's id (default: a hash of the row)")
    group.add_argument("--format", choices=("csv", "tsv", "jsonl", "parquet"),
                       help="INPUT's format when its extension does not say")
    group.add_argument("--column-prefix", default="", metavar="PREFIX",
                       help="prefix of the columns the table adds (answer, stop_reason...), "
                            "when the input has columns of those names")
    group.add_argument("--results", metavar="FILE",
                       help="where the result lines go when -o is a table (default: beside "
                            "it, NAME.results.jsonl)")


def _params(args: argparse.Namespace) -> Dict[str, Any]:
    found: Dict[str, Any] = {}
    if args.params_file:
        try:
            with open(args.params_file, encoding="utf-8") as handle:
                value = json.load(handle)
        except OSError as exc:
            raise ValidationError(f"cannot read {args.params_file}: {exc.strerror}") from None
        except ValueError as exc:
            raise ValidationError(f"{args.params_file} is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ValidationError(f"{args.params_file} must hold a JSON object of parameters")
        found.update(value)
    for item in args.params:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"--param {item!r}: give KEY=VALUE")
        try:
            found[key] = json.loads(text)
        except ValueError:
            found[key] = text
    return found


def rows_from_args(args: argparse.Namespace, data: Any) -> Optional[Rows]:
    """A Rows for ``run``'s input when --template is given; None for requests."""
    from ._rowsource import file_format
    from .rows import Rows

    if not args.template:
        given = [name for name in ROW_OPTIONS if getattr(args, name, None)]
        if given:
            flag = "--" + given[0].replace("_", "-").replace("params-file", "params")
            raise ConfigurationError(f"{flag} makes requests from rows: it needs --template")
        kind = file_format(str(data), args.format) if isinstance(data, str) else None
        if kind in ("csv", "tsv", "parquet"):
            raise ConfigurationError(f"{data} holds rows, not requests: give --template FILE "
                                     "(and --model) to make a request from each row")
        return None
    if not args.model:
        raise ConfigurationError("--template needs --model: the model of every request")
    return Rows(data, template=pathlib.Path(args.template), model=args.model,
                max_tokens=args.max_tokens,
                system=pathlib.Path(args.system) if args.system else None,
                params=_params(args), id_column=args.id_column, format=args.format)


def job_options(args: argparse.Namespace) -> Dict[str, Any]:
    """``client.run`` options the row options imply."""
    options: Dict[str, Any] = {}
    if getattr(args, "results", None):
        options["results"] = args.results
    if getattr(args, "column_prefix", ""):
        options["column_prefix"] = args.column_prefix
    if getattr(args, "max_batch_requests", None):
        options["max_batch_requests"] = args.max_batch_requests
    return options


__all__: List[str] = ["add_row_options", "job_options", "rows_from_args"]
