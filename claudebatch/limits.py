"""The numbers a job lives within: the service's batch limits and the job's own bounds.

Public, so plugins that size, price or store requests count the way the core
does (``json_bytes`` is the byte count the body limit applies to).
"""

from __future__ import annotations

import re
from typing import Any

from . import _json

#: The service's limits for one batch: requests, and bytes of request body. "256 MB" is
#: taken as 256,000,000 bytes: no source settles MB against MiB, and a body over the real
#: limit is refused whole (413), so the smaller reading is the safe one.
MAX_REQUESTS_PER_BATCH = 100_000
MAX_BATCH_BYTES = 256_000_000
#: Every batched request must generate: ``max_tokens`` of at least this (0 is refused).
MIN_MAX_TOKENS = 1
#: Parameters the service refuses inside a batch (``stream`` when true); late 2026.
BATCH_REFUSED_PARAMS = ("speed", "store", "previous_thread_event_id", "cache_hint",
                        "context_hint", "research_preview_2026_02")
#: Fraction of the byte limit a job keeps free by default (plugins may grow requests).
DEFAULT_SAFETY_MARGIN = 0.02
#: The service's rule for a custom_id (use ``fullmatch``), unique within its batch.
CUSTOM_ID_PATTERN = re.compile(r"[a-zA-Z0-9_-]{1,64}")

#: A job keeps at most this many of its requests waiting in the service's processing queue
#: (the workspace limit the service enforces with 429; 100,000 to 500,000 by tier). The
#: smallest tier's, so a default job never meets the limit alone; raise it to your tier's.
DEFAULT_MAX_IN_FLIGHT = 100_000
#: A create the service refuses for a full queue is tried again for this long while none of
#: the job's own batches is in flight (others' batches fill the queue; every batch ends
#: within 24 hours). While its own are in flight, the job waits for them without limit.
DEFAULT_QUEUE_PATIENCE = 24 * 3600.0

#: A job stops asking for further passes after this many, whatever plugins say.
MAX_PASSES = 10
#: Waiting gives up this long after a batch's ``expires_at`` (the service ends every
#: batch within 24 hours; this is the margin for its clock and ours).
EXPIRY_GRACE_SECONDS = 3600.0
#: The service deletes a batch's results this long after the batch was created.
RESULTS_KEPT_SECONDS = 29 * 24 * 3600.0

#: When the answer to a create is lost, batches created this long before the attempt
#: still count as candidates (clock skew between us and the service)...
AMBIGUOUS_CREATE_SKEW_SECONDS = 120.0
#: ... and a batch created this long after it is not taken for it (a resume may come
#: days later, when other batches of the same size exist).
ADOPTION_WINDOW_SECONDS = 3600.0

#: Times a broken results download is tried (with backoff, resuming where it broke)
#: before its remaining requests count as missing; a rerun fetches them.
RESULT_STREAM_ATTEMPTS = 5


def json_bytes(value: Any) -> bytes:
    """Compact JSON as a request body carries it: the bytes the size limit counts
    (the same bytes with orjson installed or not)."""
    return _json.dumps(value)
