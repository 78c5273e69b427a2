"""HTTP for the client: one requests.Session, auth headers, timeouts, retries, error mapping.

The API key lives only in the headers of each outgoing request (never on the
caller's session, never in a message, repr or log line).
"""

from __future__ import annotations

import logging
from typing import (
    IO,
    Any,
    Callable,
    Collection,
    Dict,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)
from urllib.parse import urljoin

import requests

from ._clock import Clock
from ._origin import OriginPolicy, describe
from ._version import __version__
from .apirules import DEFAULT_API_VERSION
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ClaudeBatchError,
    UnexpectedResponseError,
    UnsafeURLError,
    error_class_for,
)
from .hookspecs import GIVE_UP
from .policies import retry_after_seconds

logger = logging.getLogger("claudebatch")

DEFAULT_BASE_URL = "https://api.anthropic.com"
USER_AGENT = f"claudebatch/{__version__} (python-requests/{requests.__version__})"

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

Timeout = Union[float, Tuple[float, float]]
#: Makes the body of one attempt: bytes, or a file rewound by the caller.
BodyFactory = Callable[[], Union[bytes, IO[bytes]]]
#: Called with (attempt, response, error); answers the retry delay or None.
#: Called when an answer was lost; returns the outcome it found, if any.
RecoverPolicy = Callable[[BaseException], Optional[requests.Response]]
DelayPolicy = Callable[[int, Optional[requests.Response], Optional[BaseException]], Optional[float]]


#: Headers that carry credentials: never sent off the API's origin.
CREDENTIAL_HEADERS = frozenset({"x-api-key", "authorization"})
#: Methods that may follow a redirect to another origin (without credentials).
SAFE_METHODS = frozenset({"GET", "HEAD"})


class Transport:
    """Sends requests to the API with auth, retries and error mapping."""

    def __init__(self, *, api_key: Optional[str], base_url: str,
                 session: Optional[requests.Session], timeout: Timeout, max_retries: int,
                 clock: Clock, delay_policy: DelayPolicy, betas: Sequence[str] = (),
                 origins: Optional[OriginPolicy] = None, auth_token: Optional[str] = None,
                 api_version: str = DEFAULT_API_VERSION):
        # Credentials live only here and in each outgoing request's headers.
        self._credentials: Dict[str, str] = {}
        if api_key:
            self._credentials["x-api-key"] = api_key
        if auth_token:
            self._credentials["authorization"] = f"Bearer {auth_token}"
        self.base_url = base_url.rstrip("/")
        self.origins = origins if origins is not None else OriginPolicy(self.base_url)
        self.session = session if session is not None else requests.Session()
        self.timeout = timeout
        self.max_retries = max_retries
        self.clock = clock
        self.delay_policy = delay_policy
        self.betas = tuple(betas)
        self.api_version = api_version

    def __repr__(self) -> str:
        return f"<Transport base_url={self.base_url!r}>"

    def headers(self, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        headers = {
            **self._credentials,
            "anthropic-version": self.api_version,
            "content-type": "application/json",
            "accept": "application/json",
            "user-agent": USER_AGENT,
        }
        if self.betas:
            headers["anthropic-beta"] = ",".join(self.betas)
        if extra:
            headers.update(extra)
        return headers

    def url(self, path: str) -> str:
        return path if "://" in path else f"{self.base_url}{path}"

    def request(self, method: str, path: str, *, params: Optional[Mapping[str, Any]] = None,
                body: Optional[BodyFactory] = None, stream: bool = False,
                headers: Optional[Mapping[str, str]] = None,
                recover: Optional[RecoverPolicy] = None,
                final_statuses: Collection[int] = (),
                ) -> requests.Response:
        """Send, retrying what the delay policy allows; return a 2xx response or raise.

        ``recover`` runs when the outcome is unknown (a connection error,
        timeout or 504 after the request may have been acted on), before any
        retry and before giving up; if it returns a response, that is the
        outcome and nothing more is sent. An answer with a status in
        ``final_statuses`` is raised at once: the caller waits for it its own way.
        """
        url = self.url(path)
        attempt = 0
        while True:
            response: Optional[requests.Response] = None
            error: Optional[ClaudeBatchError] = None
            try:
                response = self._send(method, url, params=params,
                                      data=body() if body else None, stream=stream,
                                      headers=self.headers(headers))
            except requests.Timeout as exc:
                error = APITimeoutError(f"{method} {url} timed out: {type(exc).__name__}")
            except requests.RequestException as exc:
                error = APIConnectionError(f"{method} {url} failed: {_describe(exc)}")

            if response is not None:
                if response.status_code < 400:
                    logger.debug("%s %s -> %s", method, response.url or url,
                                 response.status_code)
                    return response
                error = api_error_from_response(response, now=self.clock.time())
                response.close()
            assert error is not None
            logger.info("%s %s failed (attempt %d): %s", method, url, attempt + 1, error)
            if response is not None and response.status_code in final_statuses:
                raise error

            if recover is not None and (response is None or response.status_code == 504):
                recovered = recover(error)
                if recovered is not None:
                    return recovered
            delay = self.delay_policy(attempt, response, error if response is None else None)
            if attempt >= self.max_retries or delay is None or delay < 0 or delay == GIVE_UP:
                raise error
            self.clock.sleep(delay)
            attempt += 1

    def _send(self, method: str, url: str, *, headers: Dict[str, str],
              **kwargs: Any) -> requests.Response:
        """One HTTP exchange, following redirects by hand under the origin rule.

        Credentials go only to trusted origins, and never again once a hop has
        left them; a request with a body (POST, DELETE) never follows a hop off
        them; a hop that parsers could read as two hosts is never followed.
        """
        if not self.origins.trusts(url):
            raise UnsafeURLError(f"{method} {url}: not sent: the URL is not on the API's "
                                 f"origin {describe(self.origins.base)}")
        first_method, left_origin = method, False
        for _ in range(MAX_REDIRECTS + 1):
            response = self.session.request(method, url, headers=headers,
                                            timeout=self.timeout, allow_redirects=False,
                                            **kwargs)
            location = response.headers.get("location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return response
            response.close()
            target = urljoin(url, location)
            try:
                trusted = self.origins.trusts(target)
            except UnsafeURLError as exc:
                raise UnsafeURLError(f"{first_method} {url} was redirected "
                                     f"({response.status_code}) to a URL not followed: {exc}"
                                     ) from None
            if not trusted and first_method not in SAFE_METHODS:
                raise UnsafeURLError(
                    f"{first_method} {url} was redirected ({response.status_code}) to another "
                    f"origin, {target!r}; not followed: the request carries your data and "
                    "is only sent to the API's origin")
            if not trusted and not left_origin:
                left_origin = True
                headers = {k: v for k, v in headers.items()
                           if k.lower() not in CREDENTIAL_HEADERS}
            logger.debug("%s %s -> %s, to %s", method, url, response.status_code, target)
            url = target
            if response.status_code == 303:
                method, kwargs = "GET", {**kwargs, "data": None}
            kwargs.pop("params", None)  # the Location carries its own query
        raise APIConnectionError(f"{method} {url}: more than {MAX_REDIRECTS} redirects")

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """``request`` and decode the JSON body (with a clear error if it is not JSON)."""
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except RecursionError:
            raise UnexpectedResponseError(
                f"{method} {self.url(path)} answered {response.status_code} with JSON nested "
                "too deeply to read") from None
        except ValueError:
            raise APIConnectionError(
                f"{method} {self.url(path)} answered {response.status_code} with a body "
                f"that is not JSON: {response.text[:200]!r}") from None


def api_error_from_response(response: requests.Response, *, now: float) -> APIStatusError:
    """The exception for an error response, from its body and ``request-id`` header (and
    its ``retry-after``, read at ``now``: an HTTP date counts from then)."""
    request_id = response.headers.get("request-id")
    error_type: Optional[str] = None
    body: Any = None
    message = response.reason or "error"
    try:
        body = response.json()
    except ValueError:
        text = (response.text or "").strip()
        if text:
            message = text[:500]
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            error_type = err.get("type") if isinstance(err.get("type"), str) else None
            if isinstance(err.get("message"), str):
                message = err["message"]
        request_id = request_id or body.get("request_id")
    cls = error_class_for(response.status_code)
    wait = retry_after_seconds(response, now)
    return cls(message, status_code=response.status_code, error_type=error_type,
               request_id=request_id, body=body, retry_after=wait)


def _describe(exc: BaseException) -> str:
    """An exception's text without anything but its type and reason (no headers)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
