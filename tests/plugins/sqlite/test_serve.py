"""``claudebatch serve``: the page and its JSON, over real HTTP on loopback."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator, Tuple

import pytest
from claudebatch_sqlite import SQLiteStore

from claudebatch import BatchClient
from claudebatch.emulator import Emulator
from claudebatch.store._serve import address, make_server

from .helpers import dataset


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Tuple[str, SQLiteStore, Emulator]]:
    store = SQLiteStore(tmp_path / "s.db")
    with Emulator(rate=5000.0, seed=2) as emu:
        client = BatchClient(api_key="emulator", base_url=emu.url, load_entry_points=False,
                             plugins=[store])
        client.run(dataset(6), name="shown", output=str(tmp_path / "o.jsonl"),
                   poll_interval=0.005, max_batch_requests=4)
        server = make_server(store)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        host, port = address(server)
        try:
            yield f"http://{host}:{port}", store, emu
        finally:
            server.shutdown()
            server.server_close()


def get(url: str) -> Tuple[int, str, Any]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.headers.get("Content-Type", ""), answer.read()


def test_the_page_is_self_contained_and_on_loopback(served: Any) -> None:
    url, _, _ = served
    assert url.startswith("http://127.0.0.1:")
    status, kind, body = get(url + "/")
    page = body.decode()
    assert status == 200 and kind.startswith("text/html")
    assert "jobs.json" in page and "setInterval(load" in page  # it refreshes itself
    assert "src=" not in page and "href=" not in page  # no assets from anywhere


def test_jobs_json_lists_each_job_with_batches_and_their_deletion_day(served: Any) -> None:
    url, _, emu = served
    status, kind, body = get(url + "/jobs.json")
    document = json.loads(body)
    assert status == 200 and kind == "application/json"
    (job,) = document["jobs"]
    assert job["name"] == "shown" and job["state"] == "done"
    assert job["counts"] == {"succeeded": 6} and job["missing"] == 0
    assert sorted(b["batch_id"] for b in job["batches"]) == sorted(emu.batch_ids)
    for batch in job["batches"]:
        assert batch["results_deleted_at"] == pytest.approx(batch["created_at"] + 29 * 86400)


def test_it_is_read_only_and_answers_404_elsewhere(served: Any) -> None:
    url, _, _ = served
    for method in ("POST", "PUT", "DELETE"):
        request = urllib.request.Request(url + "/jobs.json", method=method, data=b"{}")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 405
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url + "/../s.db", timeout=10)
    assert caught.value.code == 404


def test_a_page_under_another_name_cannot_read_the_jobs(served: Any) -> None:
    """DNS rebinding: a site whose name now points at 127.0.0.1 is refused by its Host."""
    url, _, _ = served
    request = urllib.request.Request(url + "/jobs.json", headers={"Host": "evil.example:80"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 403
    port = url.rsplit(":", 1)[1]
    request = urllib.request.Request(url + "/jobs.json", headers={"Host": f"localhost:{port}"})
    assert urllib.request.urlopen(request, timeout=10).status == 200


def test_the_page_refreshes_as_often_as_asked(tmp_path: Path) -> None:
    from claudebatch.store._serve import page

    assert "const REFRESH = 5;" in page() and "const REFRESH = 0.2;" in page(0.2)
    store = SQLiteStore(tmp_path / "s.db")
    server = make_server(store, refresh=0.5)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = address(server)
    try:
        _, _, body = get(f"http://{host}:{port}/")
        assert "const REFRESH = 0.5;" in body.decode()
    finally:
        server.shutdown()
        server.server_close()
        store.close()


def test_serve_refuses_a_refresh_interval_out_of_bounds(
        install_cli: Callable[..., None], capsys: pytest.CaptureFixture[str]) -> None:
    import claudebatch_sqlite.plugin as sqlite_plugin

    from claudebatch.cli import main

    install_cli(sqlite_plugin)
    for bad in ("0", "nan", "inf", "soon"):
        with pytest.raises(SystemExit) as exited:
            main(["serve", "--refresh", bad])
        assert exited.value.code == 2
        assert "--refresh: expected seconds from 0.1 to 3600.0" in capsys.readouterr().err
