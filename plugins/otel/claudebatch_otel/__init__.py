"""OpenTelemetry for claudebatch: spans of jobs, passes and batches; request and token metrics."""

from .plugin import OpenTelemetry

__all__ = ["OpenTelemetry"]
