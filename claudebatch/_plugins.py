"""The plugin manager: one per client, so plugins given to one client never act on another.

Plugins come from two places: the ``plugins=`` argument, and the ``claudebatch``
entry-point group (installed distributions such as claudebatch-sqlite). Set
``CLAUDEBATCH_DISABLE_PLUGIN_AUTOLOAD=1`` to skip the entry points (tests,
reproducible runs), as pytest and datasette allow.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, List

import pluggy

from . import hookspecs

hookimpl = pluggy.HookimplMarker("claudebatch")

ENTRY_POINT_GROUP = "claudebatch"
DISABLE_AUTOLOAD_ENV = "CLAUDEBATCH_DISABLE_PLUGIN_AUTOLOAD"


def autoload_enabled() -> bool:
    return os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in {"1", "true", "yes"}


def make_plugin_manager(plugins: Iterable[Any] = (), *, load_entry_points: bool = True
                        ) -> pluggy.PluginManager:
    """A fresh manager with the hookspecs, the defaults, entry-point plugins and ``plugins``."""
    from .policies import DefaultPolicies

    pm = pluggy.PluginManager("claudebatch")
    pm.add_hookspecs(hookspecs)
    pm.register(DefaultPolicies(), name="claudebatch.policies")
    if load_entry_points and autoload_enabled():
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in plugins:
        if pm.is_registered(plugin):
            continue
        pm.register(plugin)
    pm.check_pending()
    return pm


def plugin_names(pm: pluggy.PluginManager) -> List[str]:
    """Registered plugins other than the built-in defaults, by name."""
    return [name for name, _ in pm.list_name_plugin() if name != "claudebatch.policies"]
