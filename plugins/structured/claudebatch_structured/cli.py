"""``--schema FILE [--repair N]`` for ``claudebatch run`` (and ``demo``).

Registered through the ``claudebatch`` entry point, so installing the distribution
adds the options; the plugin is active when ``--schema`` is given.
"""

from __future__ import annotations

import argparse
import json
from typing import List, Optional

from claudebatch import ConfigurationError, hookimpl
from claudebatch.argtypes import bounded

from .plugin import MAX_REPAIR_PASSES, StructuredOutput

_passes = bounded(int, what="a whole number of passes", low=0, high=MAX_REPAIR_PASSES)


@hookimpl
def add_cli_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "structured outputs (claudebatch-structured)",
        "Ask every request for JSON of a schema, check every answer, send the invalid "
        "ones again.")
    group.add_argument("--schema", metavar="FILE", default=None,
                       help="a JSON Schema file every answer must follow")
    group.add_argument("--repair", type=_passes, metavar="N", default=None,
                       help="extra passes for answers that fail the schema (default 1; "
                            "0: only report them)")


def load_schema(path: str) -> object:
    """The JSON Schema in ``path``, or a ConfigurationError naming what is wrong there."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigurationError(f"--schema {path}: cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"--schema {path}: not UTF-8 text") from None
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"--schema {path}: not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise ConfigurationError(f"--schema {path}: a JSON Schema is an object, got "
                                 f"{type(schema).__name__}")
    return schema


@hookimpl
def plugins_from_cli(args: argparse.Namespace) -> Optional[List[StructuredOutput]]:
    path = getattr(args, "schema", None)
    repair = getattr(args, "repair", None)
    if path is None:
        if repair is not None:
            raise ConfigurationError("--repair needs --schema FILE")
        return None
    schema = load_schema(path)
    try:
        return [StructuredOutput(schema, repair_passes=1 if repair is None else repair)]
    except ConfigurationError as exc:
        raise ConfigurationError(f"--schema {path}: {exc}") from None
