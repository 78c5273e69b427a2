"""A plugin that only watches results, for ``job_speed.py --only claudebatch,watch``.

Its ``on_result`` does nothing, so what it adds over no plugins is what the core charges
any result-watching plugin (a typed ``BatchResult`` per line, the hook call): the floor
under the figure of each first-party plugin that sums usage (cost, cache, sqlite).
"""

from __future__ import annotations

from typing import Any

from claudebatch import hookimpl


class ResultWatcher:
    @hookimpl
    def on_result(self, result: Any) -> None:
        pass
