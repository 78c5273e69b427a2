"""On the command line the plugin is on once installed: with no OpenTelemetry SDK set up
(``opentelemetry-instrument``, or an SDK configured by the program), its spans and metrics
go nowhere and cost next to nothing."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, List, Optional

from claudebatch import hookimpl

if TYPE_CHECKING:  # imported when a job runs: opentelemetry is not needed for --help
    from .plugin import OpenTelemetry


@hookimpl
def plugins_from_cli(args: argparse.Namespace) -> Optional[List[OpenTelemetry]]:
    if getattr(args, "dry_run", False):
        return None  # nothing is sent: nothing to trace
    from .plugin import OpenTelemetry

    return [OpenTelemetry()]
