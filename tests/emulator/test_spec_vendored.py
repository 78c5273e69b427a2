"""The OpenAPI spec the conformance tests validate against is the repository's own copy.

``claudebatch/emulator/spec/anthropic-openapi.batches.json`` (trimmed by
``tools/trim_spec.py``) must hold the six batch operations and every schema the tests use,
ship as package data, and be what the ``validate`` fixture loads; and no code in the
repository may read a spec (or anything else) from a ``shared/`` folder beside it.
"""

from __future__ import annotations

import configparser
import fnmatch
import importlib.resources
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Tuple

import pytest

if TYPE_CHECKING:
    from conftest import Api, SpecValidator

REPO = Path(__file__).resolve().parents[2]
SPEC = "spec/anthropic-openapi.batches.json"
REF = "#/components/schemas/"

#: The six operations: (method, path below /v1/messages/batches, the kind conftest's Api
#: uses to pick the schema of a 200 body).
OPERATIONS: Tuple[Tuple[str, str, str], ...] = (
    ("post", "", ""),
    ("get", "", ""),
    ("get", "/{message_batch_id}", "id"),
    ("delete", "/{message_batch_id}", "id"),
    ("post", "/{message_batch_id}/cancel", "cancel"),
    ("get", "/{message_batch_id}/results", "results"),
)

#: Every schema a test validates a body against by name (conftest's Api, test_conformance).
VALIDATED = (
    "MessageBatch",
    "ListResponse_MessageBatch_",
    "DeleteMessageBatchResponse",
    "MessageBatchIndividualResponse",
    "ErrorResponse",
)
#: What those are made of, which the docs and the spec's README name.
PARTS = (
    "RequestCounts",
    "MessageBatchIndividualRequestParams",
    "SucceededResult",
    "ErroredResult",
    "CanceledResult",
    "ExpiredResult",
    "Message",
    "Usage",
    "CacheCreation",
    "CacheControlEphemeral",
)


def load_vendored() -> Dict[str, Any]:
    resource = importlib.resources.files("claudebatch.emulator").joinpath(SPEC)
    return json.loads(resource.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def spec() -> Dict[str, Any]:
    return load_vendored()


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_the_validate_fixture_loads_the_packaged_copy(
        validate: SpecValidator, spec: Dict[str, Any]) -> None:
    assert importlib.resources.files("claudebatch.emulator").joinpath(SPEC).is_file()
    assert validate.spec == spec


def test_the_spec_ships_as_package_data() -> None:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg", encoding="utf-8")
    patterns = config["options.package_data"]["claudebatch"].split()
    assert any(fnmatch.fnmatch("emulator/" + SPEC, p) for p in patterns), patterns


def test_the_six_batch_operations_and_their_beta_twins(
        spec: Dict[str, Any], api: Api) -> None:
    schemas = {**api.SCHEMA, ("GET", "results"): "MessageBatchIndividualResponse"}
    paths = spec["paths"]
    assert spec["openapi"].startswith("3.1")
    for method, path, kind in OPERATIONS:
        full = "/v1/messages/batches" + path
        operation = paths[full][method]
        ok = operation["responses"]["200"]["content"]
        media = "application/x-jsonl" if kind == "results" else "application/json"
        assert ok[media]["schema"] == {"$ref": REF + schemas[(method.upper(), kind)]}
        error = operation["responses"]["4XX"]["content"]["application/json"]["schema"]
        assert error == {"$ref": REF + "ErrorResponse"}
        assert method in paths[full + "?beta=true"], (full, method)
    assert sum(len(item) for item in paths.values()) == 2 * len(OPERATIONS)
    assert all(p.startswith("/v1/messages/batches") for p in paths)


def test_the_schemas_the_tests_need_are_there_and_every_ref_resolves(
        spec: Dict[str, Any], api: Api) -> None:
    schemas = spec["components"]["schemas"]
    assert set(api.SCHEMA.values()) <= set(VALIDATED)
    missing = [name for name in (*VALIDATED, *PARTS) if name not in schemas]
    assert not missing
    dangling = {r for r in refs(spec) if not (r.startswith(REF) and r[len(REF):] in schemas)}
    assert not dangling


# A path that climbs out of the repository into a sibling "shared" folder, however spelt: the
# spec's old place (shared, then spec, joined by a slash), or a parent-directory part ("..")
# followed by "shared", in one string or as separate path parts (the spellings below).
OUTSIDE = re.compile(r"""shared[/\\]spec|\.\.[/\\]shared\b|\.\.['"]\s*[,/]\s*['"]shared['"]""")
SCANNED = ("tests", "benchmarks", "claudebatch", "plugins", "tools")


def python_files() -> List[Path]:
    files = [p for top in SCANNED for p in sorted((REPO / top).rglob("*.py"))]
    return [p for p in files if not {"__pycache__", "build", ".venv"} & set(p.parts)]


def test_the_pattern_catches_reads_outside_the_repository() -> None:
    spellings = [
        'REPO / ".." / "SHARED" / "spec" / "anthropic-openapi.json"',
        "os.path.join(ROOT, '..', 'SHARED', 'spec')",
        'Path("../SHARED/spec/anthropic-openapi.json")',
        'open("SHARED/spec/x.json")',
    ]
    for text in spellings:
        assert OUTSIDE.search(text.replace("SHARED", "shared")), text
    assert not OUTSIDE.search('"the shared system prompt", "shared", cache="shared"')


def test_no_code_reads_a_shared_folder_outside_the_repository() -> None:
    files = python_files()
    assert len(files) > 50 and Path(__file__).resolve() in files
    hits = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not hits, "\n".join(hits)
