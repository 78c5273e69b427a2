"""The one exception the emulator raises to answer a request with an API error body."""

from __future__ import annotations

from typing import Any, Dict, Optional

#: HTTP status the real service uses for each error type.
STATUS_FOR_TYPE: Dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class ApiError(Exception):
    """An error answer: ``{"type": "error", "error": {"type", "message"}, "request_id"}``.

    ``close`` asks the server to drop the connection after answering (used when the
    request body was left unread, as for a 413).
    """

    def __init__(
        self,
        error_type: str,
        message: str,
        *,
        status: Optional[int] = None,
        headers: Optional[Dict[str, str]] = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status if status is not None else STATUS_FOR_TYPE.get(error_type, 400)
        self.headers = dict(headers or {})
        self.close = close

    def body(self, request_id: Optional[str]) -> Dict[str, Any]:
        return error_body(self.error_type, self.message, request_id)


def error_body(error_type: str, message: str, request_id: Optional[str]) -> Dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }


def invalid(message: str) -> ApiError:
    return ApiError("invalid_request_error", message)


def not_found(message: str) -> ApiError:
    return ApiError("not_found_error", message)
