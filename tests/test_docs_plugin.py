"""The persistence plugin of docs/hooks.md, run from the page's own code: a third party can
write a store on the public hooks alone, and a job killed with SIGKILL resumes with no batch
sent twice and every result written once."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, List

import pytest

from claudebatch import BatchClient
from claudebatch.emulator import Emulator

REPO = Path(__file__).resolve().parent.parent
REQUESTS = 60
PER_BATCH = 20  # three batches


def plugin_source() -> str:
    """The code block of docs/hooks.md that starts with ``# jsonl_store.py``."""
    text = (REPO / "docs" / "hooks.md").read_text(encoding="utf-8")
    start = text.index("```python\n# jsonl_store.py\n") + len("```python\n")
    return text[start:text.index("\n```", start)] + "\n"


def rows() -> List[Any]:
    return [{"custom_id": f"r-{i}", "params": {
        "model": "claude-haiku-4-5", "max_tokens": 8,
        "messages": [{"role": "user", "content": f"q {i}"}]}} for i in range(REQUESTS)]


CHILD = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from jsonl_store import JsonlStore
from claudebatch import BatchClient, hookimpl

where, url, store, source, output = sys.argv[2:7]
calls = {}

def hit(name, at):
    calls[name] = calls.get(name, 0) + 1
    if where == name and calls[name] == at:
        os.kill(os.getpid(), signal.SIGKILL)

class Killer:
    @hookimpl(tryfirst=True)  # before the store records anything of this call
    def after_submit(self):
        hit("after_submit", 2)  # the second create: sent, its answer never recorded

    @hookimpl(trylast=True)
    def on_poll(self):
        hit("on_poll", 2)

    @hookimpl(trylast=True)
    def on_result(self):
        hit("on_result", 25)  # mid second batch

client = BatchClient(api_key="k", base_url=url, poll_interval=0.01, load_entry_points=False,
                     plugins=[JsonlStore(store), Killer()])
client.run(source, name="nightly", output=output, max_batch_requests=PER_BATCH)
sys.exit(3)  # not killed: the test's kill point was never reached
""".replace("PER_BATCH", str(PER_BATCH))


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "jsonl_store.py").write_text(plugin_source(), encoding="utf-8")
    return folder


def load_store(folder: Path) -> Any:
    spec = importlib.util.spec_from_file_location("jsonl_store", folder / "jsonl_store.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.JsonlStore


def test_the_plugin_is_short_and_typed(plugin_dir: Path) -> None:
    assert len(plugin_source().splitlines()) < 150
    checked = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                              str(plugin_dir / "jsonl_store.py")],
                             capture_output=True, text=True, cwd=REPO)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("where", ["after_submit", "on_poll", "on_result"])
def test_a_killed_job_resumes_from_the_jsonl_store(tmp_path: Path, plugin_dir: Path,
                                                   where: str) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows()))
    store, output = tmp_path / "jobs.jsonl", tmp_path / "out.jsonl"
    with Emulator(rate=2000.0, seed=11) as emu:
        killed = subprocess.run(
            [sys.executable, "-c", CHILD, str(plugin_dir), where, emu.url, str(store),
             str(source), str(output)], capture_output=True, text=True, timeout=120)
        assert killed.returncode == -9, killed.stderr
        client = BatchClient(api_key="k", base_url=emu.url, poll_interval=0.01,
                             load_entry_points=False, plugins=[load_store(plugin_dir)(store)])
        report = client.run(str(source), name="nightly", output=str(output),
                            max_batch_requests=PER_BATCH)
        assert emu.batches_created == REQUESTS // PER_BATCH  # no batch sent twice
    assert report.complete
    ids = [json.loads(line)["custom_id"] for line in output.read_text().splitlines()]
    assert sorted(ids) == sorted(r["custom_id"] for r in rows())  # each exactly once
