"""A local HTTP server that behaves like Anthropic's Message Batches API.

For demos, tests, benchmarks and users' own CI: the six endpoints, validation and error
bodies, processing over (injectable) time, all four result types, prompt-cache usage,
and seeded fault injection. See ``docs/emulator.md``.
"""

from __future__ import annotations

from .clock import ManualClock, SystemClock
from .emulator import Emulator, RequestRecord
from .faults import Faults

__all__ = ["Emulator", "Faults", "ManualClock", "RequestRecord", "SystemClock"]
