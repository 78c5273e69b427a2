"""The one origin rule: where the API key (and the prompts) may go.

A URL is read with the parser that makes the connection (urllib3's, which
requests uses), and refused when another parser could read it differently:
userinfo (``user@host``) or a backslash in the authority, or a host or port on
which ``urllib.parse`` disagrees. ``http://127.0.0.2:1\\@127.0.0.1:2/`` is the
classic: ``urlsplit`` reads host 127.0.0.1, the connection goes to 127.0.0.2.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Tuple
from urllib.parse import urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from .errors import UnsafeURLError

#: (scheme, host, port): what must match for a URL to be "the API's".
Origin = Tuple[str, str, int]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> Origin:
    """The origin a connection to ``url`` would reach; raise UnsafeURLError if ambiguous."""
    if any(ord(c) < 0x21 or c == "\x7f" for c in url):
        raise UnsafeURLError(f"{url!r} holds whitespace or control characters")
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise UnsafeURLError(f"{url!r} is not an absolute http(s) URL")
    authority = rest
    for stop in "/?#":
        authority = authority.split(stop, 1)[0]
    if "\\" in authority:
        raise UnsafeURLError(f"{url!r} has a backslash in its host part, which parsers read "
                             "differently")
    if "@" in authority:
        raise UnsafeURLError(f"{url!r} carries a user name or password before its host")
    try:
        parsed = parse_url(url)
    except LocationParseError as exc:
        raise UnsafeURLError(f"{url!r} does not parse: {exc}") from None
    scheme = (parsed.scheme or "").lower()
    if scheme not in _DEFAULT_PORTS:
        raise UnsafeURLError(f"{url!r} is not http:// or https://")
    host = (parsed.host or "").lower()
    if not host:
        raise UnsafeURLError(f"{url!r} has no host")
    port = parsed.port or _DEFAULT_PORTS[scheme]
    try:
        check = urlsplit(url)
        other = ((check.hostname or "").lower(), check.port or _DEFAULT_PORTS[scheme])
    except ValueError as exc:
        raise UnsafeURLError(f"{url!r} does not parse: {exc}") from None
    if other != (host.strip("[]"), port):
        raise UnsafeURLError(f"{url!r} names two different hosts to different parsers")
    return scheme, host, port


def describe(origin: Origin) -> str:
    scheme, host, port = origin
    shown = host if port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{shown}"


def is_loopback(host: str) -> bool:
    """True for this machine's own addresses (localhost, 127.0.0.0/8, ::1)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class OriginPolicy:
    """The origins the API key may travel to: the base URL's, plus any allowed explicitly."""

    def __init__(self, base_url: str, allowed: Iterable[str] = (), *,
                 allow_http: bool = False) -> None:
        self.base = origin_of(base_url)
        self.allowed = frozenset([self.base, *(origin_of(u) for u in allowed)])
        for origin in self.allowed:
            scheme, host, _ = origin
            if scheme == "http" and not is_loopback(host) and not allow_http:
                raise UnsafeURLError(
                    f"{describe(origin)} uses plain http:// to a host that is not this "
                    "machine: the API key and every prompt would cross the network "
                    "unencrypted. Use https://, or opt in with allow_http=True "
                    "(--allow-http) if the network is yours.")

    def trusts(self, url: str) -> bool:
        """True when ``url`` is unambiguous and on an allowed origin (raises if ambiguous)."""
        return origin_of(url) in self.allowed
