"""``python -m claudebatch.emulator``: the same as ``claudebatch emulator``."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
