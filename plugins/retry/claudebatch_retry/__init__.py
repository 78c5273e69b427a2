"""claudebatch-retry: resubmit what can succeed, never what cannot, and configure HTTP retries.

``RetryPolicy(passes=2)`` in ``BatchClient(plugins=[...])``, or ``--resubmit N`` on
``claudebatch run``. See docs/plugins/retry.md.
"""

from __future__ import annotations

from .classify import (
    PERMANENT_ERROR_TYPES,
    RETRYABLE_ERROR_TYPES,
    Classification,
    Verdict,
    classify,
    is_retryable_error,
)
from .failures import FailedForGood, Failure
from .http_policy import HttpRetry
from .policy import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "PERMANENT_ERROR_TYPES",
    "RETRYABLE_ERROR_TYPES",
    "Classification",
    "FailedForGood",
    "Failure",
    "HttpRetry",
    "RetryPolicy",
    "Verdict",
    "__version__",
    "classify",
    "is_retryable_error",
]
