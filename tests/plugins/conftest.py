"""Shared fixtures for the first-party plugins' tests."""

from __future__ import annotations

from typing import Any, Callable

import pytest

import claudebatch.cli


@pytest.fixture
def install_cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make the CLI see exactly these plugin modules as installed (autoload is off in tests)."""

    def install(*modules: Any) -> None:
        manager = claudebatch.cli.cli_plugin_manager(modules, load_entry_points=False)
        monkeypatch.setattr(claudebatch.cli, "cli_plugins", lambda: manager)

    return install
