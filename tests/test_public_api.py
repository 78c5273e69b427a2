"""The first-party plugins live on the public API alone, as a third party's would.

A private import from a plugin means the public API lacks something: add it there.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, List, Tuple

import claudebatch

REPO = Path(__file__).resolve().parent.parent
#: The core modules a plugin may import (besides the package itself).
PUBLIC_MODULES = {"claudebatch", "claudebatch.hookspecs", "claudebatch.models",
                  "claudebatch.errors", "claudebatch.limits", "claudebatch.policies",
                  "claudebatch.tokens", "claudebatch.argtypes", "claudebatch.emulator",
                  "claudebatch.catalog", "claudebatch.context", "claudebatch.apirules",
                  "claudebatch.reuse", "claudebatch.rows", "claudebatch.tables",
                  "claudebatch.store"}


def plugin_sources() -> List[Path]:
    found = sorted(REPO.glob("plugins/*/claudebatch_*/**/*.py"))
    assert len(found) > 20  # the four plugins' modules
    return found


def core_imports(path: Path) -> Iterator[Tuple[int, str, str]]:
    """``(line, module, name)`` for each name a plugin module takes from the core."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "claudebatch":
            for alias in node.names:
                yield node.lineno, node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "claudebatch":
                    yield node.lineno, alias.name, ""


def test_plugins_import_only_public_core_names() -> None:
    private = []
    for path in plugin_sources():
        for line, module, name in core_imports(path):
            where = f"{path.relative_to(REPO)}:{line}"
            if module not in PUBLIC_MODULES or any(p.startswith("_") for p in module.split(".")):
                private.append(f"{where}: module {module}")
            elif module == "claudebatch" and name not in claudebatch.__all__:
                private.append(f"{where}: claudebatch.{name} is not in __all__")
            elif name.startswith("_"):
                private.append(f"{where}: {module}.{name}")
    assert private == []


def test_the_rule_catches_a_private_import(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("from claudebatch._client import BatchClient\n"
                      "from claudebatch.limits import MAX_PASSES\n")
    assert [m for _, m, _ in core_imports(sample)] == ["claudebatch._client", "claudebatch.limits"]


def test_no_plugin_calls_other_plugins_hooks() -> None:
    callers = [f"{p.relative_to(REPO)}" for p in plugin_sources()
               if "subset_hook_caller" in p.read_text(encoding="utf-8")]
    assert callers == []


def test_the_public_modules_are_attributes_of_the_package_as_before_lazy_imports() -> None:
    """``import claudebatch`` then ``claudebatch.errors.RateLimitError`` (or
    ``claudebatch.limits.MAX_PASSES``, as the docs name it) worked while the package
    imported everything at once; PEP 562 laziness must keep it working."""
    import subprocess
    import sys

    names = sorted(module.split(".")[1] for module in PUBLIC_MODULES if "." in module)
    code = ("import claudebatch\n"
            f"for name in {names!r}:\n"
            "    assert getattr(claudebatch, name).__name__ == 'claudebatch.' + name, name\n"
            "assert claudebatch.limits.MAX_PASSES\n"
            "assert not hasattr(claudebatch, 'no_such_module')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
