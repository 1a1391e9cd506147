"""Which proxy, if any, the client's own session goes through (no I/O but reading the environment).

With ``trust_env=True`` (the default) the proxy comes from ``HTTPS_PROXY`` / ``HTTP_PROXY`` (or
their lower-case forms, by the scheme of the server URL) and ``NO_PROXY``, read through
`urllib.request` as requests and aiohttp do, once, when the client is created. Two differences
from aiohttp's own ``trust_env``, which re-reads the environment (and ``~/.netrc``) in a worker
thread on every request:

- a loopback server (``127.0.0.0/8``, ``::1``, ``localhost``: the local emulator) is never
  proxied, whatever the environment says; a remote proxy cannot reach your loopback;
- credentials in the proxy URL are taken out of it and sent as a ``Proxy-Authorization``
  header, so that no URL, message or log line the client or aiohttp builds can contain them.
"""

from __future__ import annotations

import base64
import re
import urllib.request
from collections.abc import Mapping
from urllib.parse import SplitResult, unquote, urlsplit

import attrs

from .._core import is_loopback
from .._exceptions import InvalidInputError


@attrs.frozen
class Proxy:
    """A forward proxy: its URL without credentials, and the headers that carry them."""

    url: str
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)


def from_environment(server_url: str) -> Proxy | None:
    """The proxy the environment sets for `server_url`, or None to connect directly.

    Raises `InvalidInputError` for a proxy URL this client cannot use (not ``http://``).
    """
    parts = urlsplit(server_url)
    host = parts.hostname or ""
    if is_loopback(host):
        return None
    raw = urllib.request.getproxies().get(parts.scheme)
    if not raw or urllib.request.proxy_bypass(host):
        return None
    return parse(raw, variable=f"{parts.scheme.upper()}_PROXY")


def parse(raw: str, *, variable: str) -> Proxy:
    """Split a proxy URL (``http://user:pass@host:port``; no scheme means http) into a `Proxy`."""
    proxy = _split(raw)
    try:
        port = proxy.port if proxy is not None else -1
    except ValueError:
        port = -1
    if proxy is None or proxy.scheme != "http" or not proxy.hostname or port == -1:
        raise InvalidInputError(
            f"{variable}={redact_url(raw)!r} is not a proxy this client can use (only "
            "http://host:port proxies); unset it, or pass trust_env=False "
            "(command line: --no-proxy-env) to ignore the proxy variables"
        )
    host = f"[{proxy.hostname}]" if ":" in proxy.hostname else proxy.hostname
    url = f"http://{host}:{port or 80}"
    headers: dict[str, str] = {}
    if proxy.username is not None or proxy.password is not None:
        user, password = unquote(proxy.username or ""), unquote(proxy.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers["Proxy-Authorization"] = f"Basic {token}"
    return Proxy(url, headers)


def redact_url(raw: str) -> str:
    """`raw` with any ``user:password@`` replaced by ``***@``."""
    return _USERINFO.sub(lambda m: (m[1] or "") + "***@", raw, count=1)


def environment_secrets() -> list[str]:
    """Credentials found in the proxy variables (raw and decoded), for redacting output."""
    found: list[str] = []
    for raw in urllib.request.getproxies().values():
        match = _USERINFO.match(raw)
        if match:
            userinfo = match[0][len(match[1] or "") : -1]
            password = userinfo.partition(":")[2]
            found += [userinfo, password, unquote(password)]
    return [s for s in dict.fromkeys(found) if s]


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)?[^/?#]*@")


def _split(raw: str) -> SplitResult | None:
    try:
        return urlsplit(raw if "://" in raw else "http://" + raw)
    except ValueError:  # a malformed IPv6 address
        return None
