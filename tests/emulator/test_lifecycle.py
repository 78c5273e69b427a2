"""Starting, stopping, and bad settings."""

from __future__ import annotations

import os
import socket
from typing import Any, Dict

import pytest
import requests

from claudebatch.emulator import Emulator

HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


def test_start_serve_stop_cleans_up() -> None:
    emu = Emulator(seed=1)
    with pytest.raises(RuntimeError):
        _ = emu.url
    with emu:
        assert emu.url.startswith("http://127.0.0.1:")
        session = requests.Session()  # keeps its connection alive across requests
        assert session.get(f"{emu.url}/v1/messages/batches", headers=HEADERS).ok
        spool = emu.spool_dir
        assert os.path.isdir(spool)
    assert not os.path.exists(spool)


def test_stop_cuts_open_keep_alive_connections() -> None:
    emu = Emulator(seed=1).start()
    session = requests.Session()
    url = f"{emu.url}/v1/messages/batches"
    assert session.get(url, headers=HEADERS).ok
    emu.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(url, headers=HEADERS, timeout=5)


def test_a_busy_port_raises_and_leaves_nothing_behind() -> None:
    with Emulator(seed=1) as first:
        second = Emulator(port=first.port)
        with pytest.raises(OSError):
            second.start()
        assert not os.path.exists(second.spool_dir)


@pytest.mark.parametrize("kwargs", [
    {"rate": 0}, {"expiry": 0}, {"counts": "sometimes"}, {"cache_hit_rate": 2},
    {"answer_tokens": (0, 5)}, {"answer_tokens": (9, 3)}, {"max_requests": 0},
])
def test_bad_settings_are_refused(kwargs: Dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Emulator(**kwargs)


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        emu = Emulator(host="::1", seed=1).start()
    except OSError:
        pytest.skip("cannot bind ::1 here")
    try:
        assert emu.url.startswith("http://[::1]:")
        assert requests.get(f"{emu.url}/v1/messages/batches", headers=HEADERS, timeout=5).ok
    finally:
        emu.stop()
