"""The command-line side: ``--cache``, ``--cache-ttl`` and ``--cache-prime`` on run and demo.

Registered through the ``claudebatch`` entry point, so installing claudebatch-cache
adds the options. ``claudebatch run`` caches only when asked (any of the options);
``claudebatch demo`` runs with the plugin on and its defaults unless ``--no-cache``.
"""

from __future__ import annotations

import argparse
from typing import Any, List, Optional

from claudebatch import hookimpl

from .placement import TTLS
from .plugin import PromptCache


@hookimpl
def add_cli_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("prompt cache (claudebatch-cache)")
    group.add_argument("--cache", action="store_true",
                       help="mark the prefix requests share with cache_control (on under demo)")
    group.add_argument("--cache-ttl", choices=TTLS, default=None,
                       help="lifetime of the breakpoints (default 1h); implies --cache")
    group.add_argument("--cache-prime", action="store_true",
                       help="send one request per shared prefix first and wait for it, so "
                            "the batch reads the cache instead of racing to write it; "
                            "implies --cache")
    group.add_argument("--no-cache", action="store_true",
                       help="leave the requests' cache_control as they are (demo)")


@hookimpl
def plugins_from_cli(args: argparse.Namespace) -> Optional[List[Any]]:
    if getattr(args, "no_cache", False):
        return None
    ttl = getattr(args, "cache_ttl", None)
    prime = bool(getattr(args, "cache_prime", False))
    wanted = getattr(args, "cache", False) or ttl is not None or prime
    if not (wanted or getattr(args, "demo", False)):
        return None
    return [PromptCache(ttl=ttl or "1h", prime=prime)]
