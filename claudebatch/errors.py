"""One exception hierarchy, rooted at :class:`ClaudeBatchError`.

API errors carry what a caller needs to act on them (status, ``error.type``, the
server's message and ``request-id``) and never the API key: messages are built
from the response body only, and the request's headers are never copied in.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Type


class ClaudeBatchError(Exception):
    """Base class of every error this package raises."""


class ConfigurationError(ClaudeBatchError, ValueError):
    """The client was set up wrongly (no API key, a bad base URL, ...)."""


class MissingExtraError(ConfigurationError):
    """An optional library is needed (Parquet, pandas, an object store): ``extra`` names
    the ``claudebatch[...]`` extra that installs it."""

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class ValidationError(ClaudeBatchError, ValueError):
    """Input was refused before anything was sent.

    ``problems`` lists every problem found, each naming where it is (index, line,
    custom_id, field), so a caller can fix all of them in one go.
    """

    def __init__(self, summary: str, problems: Sequence[str] = (), *, total: Optional[int] = None):
        self.problems: List[str] = list(problems)
        self.total = total if total is not None else len(self.problems)
        lines = [summary, *("  - " + p for p in self.problems)]
        hidden = self.total - len(self.problems)
        if hidden > 0:
            lines.append(f"  ... and {hidden} more")
        super().__init__("\n".join(lines))


class InvalidBatchIdError(ClaudeBatchError, ValueError):
    """A string that cannot be a batch id was given where one is needed."""


class UnexpectedResponseError(ClaudeBatchError):
    """The service answered with success but a body that is not what the call returns."""


class OutputError(ClaudeBatchError):
    """The job's output file could not be written (a full disk, a vanished folder, ...).

    Whole result lines written before the failure are kept, with no partial line.
    """


class OutputPathError(OutputError, ValidationError):
    """The output path was refused before anything was sent (a folder, the input itself, ...)."""


class BatchNotEndedError(ClaudeBatchError):
    """Results were asked for before the batch reached ``processing_status == "ended"``."""


class UnsafeURLError(ClaudeBatchError):
    """A URL the client was given or sent to (a redirect, a ``results_url``) was not followed.

    It left the API's origin (and the request carried a body, or the key), or it
    could be read as two different hosts. The API key is only sent to the base
    URL's origin and to origins allowed explicitly (``allowed_origins``).
    """


class UnsafeResultsURLError(UnsafeURLError):
    """``results_url`` points somewhere other than the API's origin (or an allowed one)."""


class ResultsParseError(ClaudeBatchError):
    """A line of a results file was not valid JSON or not a result object."""

    def __init__(self, message: str, *, custom_id: Optional[str] = None,
                 byte_offset: Optional[int] = None):
        self.custom_id = custom_id
        self.byte_offset = byte_offset
        super().__init__(message)


class WaitTimeoutError(ClaudeBatchError, TimeoutError):
    """``wait()`` gave up before the batch ended."""

    def __init__(self, message: str, *, batch: Any = None):
        self.batch = batch
        super().__init__(message)


class QueueFullError(WaitTimeoutError):
    """A job stopped waiting for room in the service's processing queue: its create kept
    being refused (429) past ``queue_patience`` with none of its own batches in flight.
    ``error`` is the service's last refusal. Nothing of the batch was made: run the job
    again later (a job store resumes it)."""

    def __init__(self, message: str, *, error: Any = None):
        self.error = error
        super().__init__(message)


class APIConnectionError(ClaudeBatchError):
    """The service could not be reached, or the connection broke mid-request."""


class APITimeoutError(APIConnectionError):
    """The request timed out (connect or read)."""


class APIStatusError(ClaudeBatchError):
    """The service answered with an error status.

    Attributes: ``status_code``, ``error_type`` (the body's ``error.type``),
    ``message`` (the body's ``error.message``), ``request_id``, ``body``, and
    ``retry_after``: the seconds the service asked to wait (``retry-after-ms`` or
    ``retry-after``), or None.
    """

    status_code: int = 0

    def __init__(self, message: str, *, status_code: int, error_type: Optional[str] = None,
                 request_id: Optional[str] = None, body: Any = None,
                 retry_after: Optional[float] = None):
        self.status_code = status_code
        self.error_type = error_type
        self.message = message
        self.request_id = request_id
        self.body = body
        self.retry_after = retry_after
        parts = [f"HTTP {status_code}"]
        if error_type:
            parts.append(error_type)
        text = f"{' '.join(parts)}: {message}"
        if request_id:
            text += f" (request-id: {request_id})"
        super().__init__(text)


class BadRequestError(APIStatusError):
    """400 invalid_request_error: the request itself is wrong; retrying will not help."""
    status_code = 400


class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong. Check ANTHROPIC_API_KEY."""
    status_code = 401


class BillingError(APIStatusError):
    """402: a billing problem on the account."""
    status_code = 402


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this resource."""
    status_code = 403


class NotFoundError(APIStatusError):
    """404: no such batch (or it belongs to another workspace)."""
    status_code = 404


class ConflictError(APIStatusError):
    """409: a conflicting operation; retried automatically."""
    status_code = 409


class RequestTooLargeError(APIStatusError):
    """413: the request body exceeds 256 MB. Split the batch."""
    status_code = 413


class RateLimitError(APIStatusError):
    """429: rate limited; retried automatically honouring ``retry-after`` (a job's create
    refused for a full processing queue is tried again as the queue frees)."""
    status_code = 429

    @property
    def spend_cap(self) -> bool:
        """True for the usage tier's monthly spend cap (``error.details.error_code`` is
        ``enforced_spend_limit_reached``): a 429 like a rate limit, but no wait short of
        the month's end helps, so a job does not wait it out."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        details = error.get("details") if isinstance(error, dict) else None
        return isinstance(details, dict) and \
            details.get("error_code") == "enforced_spend_limit_reached"


class InternalServerError(APIStatusError):
    """5xx: a server-side failure; retried automatically."""
    status_code = 500


class GatewayTimeoutError(InternalServerError):
    """504 timeout_error."""
    status_code = 504


class OverloadedError(InternalServerError):
    """529 overloaded_error: the service is overloaded (a server error for ``except``)."""
    status_code = 529


_BY_STATUS: Dict[int, Type[APIStatusError]] = {
    cls.status_code: cls
    for cls in (BadRequestError, AuthenticationError, BillingError, PermissionDeniedError,
                NotFoundError, ConflictError, RequestTooLargeError, RateLimitError,
                InternalServerError, GatewayTimeoutError, OverloadedError)
}


def error_class_for(status_code: int) -> Type[APIStatusError]:
    """The most specific class for an HTTP status (any other 5xx is InternalServerError)."""
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    if status_code >= 500:
        return InternalServerError
    return APIStatusError


class ReuseError(ClaudeBatchError, ValueError):
    """An answer a store offered for reuse cannot be used (the store is damaged)."""
