"""The ``anthropic-version`` values the service knows (re-exported by :mod:`claudebatch.apirules`;
apart, so building the command line's parser imports no model catalog)."""

from __future__ import annotations

from typing import Tuple

#: The version every request carried until 2026-10-21; it still accepts sampling params.
API_VERSION_2023_06_01 = "2023-06-01"
#: The version released 2026-10-21 and sent by default by the official SDKs since.
API_VERSION_2026_10_21 = "2026-10-21"
API_VERSIONS: Tuple[str, ...] = (API_VERSION_2023_06_01, API_VERSION_2026_10_21)
#: As the official SDK: the latest.
DEFAULT_API_VERSION = API_VERSION_2026_10_21
