"""Where a store is when none is named: ``$CLAUDEBATCH_STORE``, else your own store."""

from __future__ import annotations

import os
import sys

#: The environment variable naming the default store, and the default itself.
STORE_ENV = "CLAUDEBATCH_STORE"
DEFAULT_STORE = "claudebatch.db"


def user_store_path() -> str:
    """The per-user store: in the platform's folder for an application's state
    (``$XDG_STATE_HOME`` or ``~/.local/state`` on Linux, ``~/Library/Application
    Support`` on macOS, ``%LOCALAPPDATA%`` on Windows), ``claudebatch/jobs.db``."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Application Support")
    else:
        state = os.environ.get("XDG_STATE_HOME", "")
        # the XDG spec: a relative path is ignored (it would move with the current folder)
        base = state if os.path.isabs(state) else os.path.expanduser("~/.local/state")
    return os.path.join(base, "claudebatch", "jobs.db")


def default_location() -> str:
    """``$CLAUDEBATCH_STORE``, else the per-user store."""
    return os.environ.get(STORE_ENV) or user_store_path()
