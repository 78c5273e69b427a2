"""claudebatch: a sync-first SDK for Anthropic's Message Batches API, with pluggy plugins.

The public names are imported when first used (PEP 562), so ``claudebatch --help`` and
a plugin that only needs ``hookimpl`` do not pay for requests, cattrs and the job
machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

from ._version import __version__

if TYPE_CHECKING:
    from ._client import BatchClient
    from ._job import Job, ResumeState
    from ._pending import PendingBatch
    from ._plugins import hookimpl
    from ._report import BatchSummary, JobPlan, JobReport
    from ._results import to_result as parse_result
    from .context import BatchLimits, CallContext, JobContext, Stash, StashKey
    from .errors import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        BatchNotEndedError,
        BillingError,
        ClaudeBatchError,
        ConfigurationError,
        ConflictError,
        GatewayTimeoutError,
        InternalServerError,
        InvalidBatchIdError,
        MissingExtraError,
        NotFoundError,
        OutputError,
        OutputPathError,
        OverloadedError,
        PermissionDeniedError,
        QueueFullError,
        RateLimitError,
        RequestTooLargeError,
        ResultsParseError,
        UnexpectedResponseError,
        UnsafeResultsURLError,
        UnsafeURLError,
        ValidationError,
        WaitTimeoutError,
    )
    from .hookspecs import GIVE_UP
    from .logcontext import LogContext
    from .models import (
        Annotation,
        BatchResult,
        CanceledResult,
        DeletedMessageBatch,
        ErroredResult,
        ExpiredResult,
        Message,
        MessageBatch,
        Request,
        RequestCounts,
        SucceededResult,
        Usage,
    )
    from .reuse import StoredAnswer, answer_key
    from .rows import Rows
    from .tables import Column

#: public name -> (module, name in it)
_WHERE: Dict[str, Tuple[str, str]] = {
    "APIConnectionError": (".errors", "APIConnectionError"),
    "APIStatusError": (".errors", "APIStatusError"),
    "APITimeoutError": (".errors", "APITimeoutError"),
    "Annotation": (".models", "Annotation"),
    "AuthenticationError": (".errors", "AuthenticationError"),
    "BadRequestError": (".errors", "BadRequestError"),
    "BatchClient": ("._client", "BatchClient"),
    "BatchLimits": (".context", "BatchLimits"),
    "BatchNotEndedError": (".errors", "BatchNotEndedError"),
    "BatchResult": (".models", "BatchResult"),
    "BatchSummary": ("._report", "BatchSummary"),
    "BillingError": (".errors", "BillingError"),
    "CallContext": (".context", "CallContext"),
    "CanceledResult": (".models", "CanceledResult"),
    "ClaudeBatchError": (".errors", "ClaudeBatchError"),
    "Column": (".tables", "Column"),
    "ConfigurationError": (".errors", "ConfigurationError"),
    "ConflictError": (".errors", "ConflictError"),
    "DeletedMessageBatch": (".models", "DeletedMessageBatch"),
    "ErroredResult": (".models", "ErroredResult"),
    "ExpiredResult": (".models", "ExpiredResult"),
    "GIVE_UP": (".hookspecs", "GIVE_UP"),
    "GatewayTimeoutError": (".errors", "GatewayTimeoutError"),
    "InternalServerError": (".errors", "InternalServerError"),
    "InvalidBatchIdError": (".errors", "InvalidBatchIdError"),
    "Job": ("._job", "Job"),
    "JobContext": (".context", "JobContext"),
    "JobPlan": ("._report", "JobPlan"),
    "JobReport": ("._report", "JobReport"),
    "LogContext": (".logcontext", "LogContext"),
    "Message": (".models", "Message"),
    "MessageBatch": (".models", "MessageBatch"),
    "MissingExtraError": (".errors", "MissingExtraError"),
    "NotFoundError": (".errors", "NotFoundError"),
    "OutputError": (".errors", "OutputError"),
    "OutputPathError": (".errors", "OutputPathError"),
    "OverloadedError": (".errors", "OverloadedError"),
    "PendingBatch": ("._pending", "PendingBatch"),
    "PermissionDeniedError": (".errors", "PermissionDeniedError"),
    "QueueFullError": (".errors", "QueueFullError"),
    "RateLimitError": (".errors", "RateLimitError"),
    "Request": (".models", "Request"),
    "RequestCounts": (".models", "RequestCounts"),
    "RequestTooLargeError": (".errors", "RequestTooLargeError"),
    "ResultsParseError": (".errors", "ResultsParseError"),
    "ResumeState": ("._job", "ResumeState"),
    "Rows": (".rows", "Rows"),
    "Stash": (".context", "Stash"),
    "StashKey": (".context", "StashKey"),
    "StoredAnswer": (".reuse", "StoredAnswer"),
    "SucceededResult": (".models", "SucceededResult"),
    "UnexpectedResponseError": (".errors", "UnexpectedResponseError"),
    "UnsafeResultsURLError": (".errors", "UnsafeResultsURLError"),
    "UnsafeURLError": (".errors", "UnsafeURLError"),
    "Usage": (".models", "Usage"),
    "ValidationError": (".errors", "ValidationError"),
    "WaitTimeoutError": (".errors", "WaitTimeoutError"),
    "__version__": ("._version", "__version__"),
    "answer_key": (".reuse", "answer_key"),
    "hookimpl": ("._plugins", "hookimpl"),
    "parse_result": ("._results", "to_result"),
}


def __getattr__(name: str) -> Any:
    found = _WHERE.get(name)
    if found is None:
        # a submodule: ``claudebatch.errors`` works after ``import claudebatch``, as it did
        # when the package imported everything at once
        if not name.startswith("__"):
            try:
                return importlib.import_module(f".{name}", __name__)
            except ModuleNotFoundError as exc:
                if exc.name != f"{__name__}.{name}":
                    raise
        raise AttributeError(f"module 'claudebatch' has no attribute {name!r}")
    value = getattr(importlib.import_module(found[0], __name__), found[1])
    globals()[name] = value  # once: later lookups find it without coming here
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_WHERE))


__all__ = [
    "GIVE_UP",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "Annotation",
    "AuthenticationError",
    "BadRequestError",
    "BatchClient",
    "BatchLimits",
    "BatchNotEndedError",
    "BatchResult",
    "BatchSummary",
    "BillingError",
    "CallContext",
    "CanceledResult",
    "ClaudeBatchError",
    "Column",
    "ConfigurationError",
    "ConflictError",
    "DeletedMessageBatch",
    "ErroredResult",
    "ExpiredResult",
    "GatewayTimeoutError",
    "InternalServerError",
    "InvalidBatchIdError",
    "Job",
    "JobContext",
    "JobPlan",
    "JobReport",
    "LogContext",
    "Message",
    "MessageBatch",
    "MissingExtraError",
    "NotFoundError",
    "OutputError",
    "OutputPathError",
    "OverloadedError",
    "PendingBatch",
    "PermissionDeniedError",
    "QueueFullError",
    "RateLimitError",
    "Request",
    "RequestCounts",
    "RequestTooLargeError",
    "ResultsParseError",
    "ResumeState",
    "Rows",
    "Stash",
    "StashKey",
    "StoredAnswer",
    "SucceededResult",
    "UnexpectedResponseError",
    "UnsafeResultsURLError",
    "UnsafeURLError",
    "Usage",
    "ValidationError",
    "WaitTimeoutError",
    "__version__",
    "answer_key",
    "hookimpl",
    "parse_result",
]
