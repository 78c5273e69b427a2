"""Trim Anthropic's OpenAPI spec to what the Message Batches endpoints reach.

A maintainer script (no test runs it). It reads the full spec and writes a copy holding:

- the paths under ``/v1/messages/batches`` (every method, and the ``?beta=true`` twins);
- the schemas this project's tests name (:data:`NAMED_SCHEMAS`, plus any ``--schema``);
- everything those reach, transitively: each ``$ref`` and each ``discriminator.mapping``
  target (a mapping names a schema by reference too);
- the other top-level keys (``openapi``, ``info``, ``servers``, ...) unchanged, except
  ``webhooks``, which the batch endpoints do not use and which is dropped.

Key order is the original's; the output is compact JSON (UTF-8, not ASCII-escaped) with a
trailing newline. Refresh the vendored copy with::

    python tools/trim_spec.py path/to/anthropic-openapi.json \\
        claudebatch/emulator/spec/anthropic-openapi.batches.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple
from urllib.parse import unquote

PREFIX = "/v1/messages/batches"

#: The schemas the tests validate against by name (``tests/emulator/conftest.py``), and the
#: ones ``docs/emulator.md`` and the spec's README point a reader to: kept even if no path
#: reached them.
NAMED_SCHEMAS: Tuple[str, ...] = (
    "MessageBatch",
    "RequestCounts",
    "ListResponse_MessageBatch_",
    "DeleteMessageBatchResponse",
    "MessageBatchIndividualRequestParams",
    "MessageBatchIndividualResponse",
    "SucceededResult",
    "ErroredResult",
    "CanceledResult",
    "ExpiredResult",
    "ErrorResponse",
    "Message",
    "Usage",
    "CacheCreation",
    "CacheControlEphemeral",
)

#: Top-level keys left out of the copy.
DROPPED_KEYS = frozenset({"webhooks"})

Component = Tuple[str, str]  # (section, name), e.g. ("schemas", "MessageBatch")


def is_batch_path(path: str) -> bool:
    """``/v1/messages/batches`` itself, anything below it, and its ``?beta=true`` twins."""
    return path == PREFIX or path.startswith((PREFIX + "/", PREFIX + "?"))


def parse_ref(ref: str) -> Component:
    """``#/components/schemas/Name`` as ``("schemas", "Name")``; anything else is an error."""
    parts = ref.split("/")
    if len(parts) != 4 or parts[0] != "#" or parts[1] != "components":
        raise ValueError(f"unsupported reference (only #/components/<section>/<name>): {ref!r}")
    section, name = (unquote(p).replace("~1", "/").replace("~0", "~") for p in parts[2:])
    return section, name


def references(node: Any) -> Iterator[str]:
    """Every reference in ``node``: ``$ref`` values and ``discriminator.mapping`` targets."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            elif key == "discriminator" and isinstance(value, dict):
                mapping = value.get("mapping")
                if isinstance(mapping, dict):
                    yield from (t for t in mapping.values() if isinstance(t, str))
            yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def closure(components: Dict[str, Any], roots: Sequence[Any],
            named: Sequence[Component]) -> Set[Component]:
    """The components reachable from ``roots`` and ``named``, ``named`` included."""
    seen: Set[Component] = set()
    todo: List[Component] = list(named)
    todo.extend(parse_ref(ref) for root in roots for ref in references(root))
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        section, name = key
        target = components.get(section, {}).get(name)
        if target is None:
            raise KeyError(f"#/components/{section}/{name} is referenced but not defined")
        seen.add(key)
        todo.extend(parse_ref(ref) for ref in references(target))
    return seen


def trim(spec: Dict[str, Any], extra: Sequence[str] = ()) -> Dict[str, Any]:
    """The trimmed copy of ``spec`` (which is left unchanged)."""
    paths = {p: item for p, item in spec.get("paths", {}).items() if is_batch_path(p)}
    if not paths:
        raise ValueError(f"the spec has no paths under {PREFIX}")
    components: Dict[str, Any] = spec.get("components", {})
    named = [("schemas", name) for name in (*NAMED_SCHEMAS, *extra)]
    keep = closure(components, list(paths.values()), named)

    out: Dict[str, Any] = {}
    for key, value in spec.items():
        if key in DROPPED_KEYS:
            continue
        if key == "paths":
            out[key] = paths
        elif key == "components":
            out[key] = {
                section: {n: s for n, s in entries.items() if (section, n) in keep}
                for section, entries in value.items()
                if any((section, n) in keep for n in entries)
            }
        else:
            out[key] = value
    check(out)
    return out


def check(spec: Dict[str, Any]) -> None:
    """Fail unless every reference in the trimmed ``spec`` resolves inside it."""
    components: Dict[str, Any] = spec.get("components", {})
    for ref in references(spec):
        section, name = parse_ref(ref)
        if name not in components.get(section, {}):
            raise AssertionError(f"dangling reference after trimming: {ref}")


def dump(spec: Dict[str, Any]) -> str:
    return json.dumps(spec, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("source", type=Path, help="the full spec (JSON)")
    parser.add_argument("output", type=Path, help="where to write the trimmed copy")
    parser.add_argument("--schema", action="append", default=[], metavar="NAME",
                        help="another schema to keep (with its closure); repeatable")
    args = parser.parse_args(argv)

    source: Path = args.source
    output: Path = args.output
    spec = json.loads(source.read_text(encoding="utf-8"))
    trimmed = trim(spec, args.schema)
    text = dump(trimmed)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")

    schemas = trimmed.get("components", {}).get("schemas", {})
    operations = sum(len(item) for item in trimmed["paths"].values())
    print(f"{output}: {len(text.encode('utf-8')):,} bytes "
          f"(from {source.stat().st_size:,}); {len(trimmed['paths'])} paths, "
          f"{operations} operations, {len(schemas)} of "
          f"{len(spec.get('components', {}).get('schemas', {}))} schemas")
    return 0


if __name__ == "__main__":
    sys.exit(main())
