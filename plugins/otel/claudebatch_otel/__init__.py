"""OpenTelemetry for claudebatch: spans of jobs, passes and batches; request and token metrics.

``OpenTelemetry`` is imported when first used, so loading the plugin's command-line
hooks (every ``claudebatch`` command does) does not import opentelemetry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .plugin import OpenTelemetry

__all__ = ["OpenTelemetry"]


def __getattr__(name: str) -> Any:
    if name == "OpenTelemetry":
        from .plugin import OpenTelemetry

        return OpenTelemetry
    raise AttributeError(f"module 'claudebatch_otel' has no attribute {name!r}")
