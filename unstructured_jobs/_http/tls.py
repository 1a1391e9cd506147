"""TLS settings of the client's own session: the ``ssl=`` option, CA bundles, failure messages.

aiohttp's default context is built when aiohttp is imported, so a CA bundle named in the
environment after that is ignored by it. The client builds its own `ssl.SSLContext` instead,
when it is created:

- ``ssl=True`` (default): verify against ``$SSL_CERT_FILE``, else ``$REQUESTS_CA_BUNDLE``, else
  the system's CAs. A bundle replaces the system CAs (as with requests and httpx).
- ``ssl="/path/ca.pem"`` (or a folder of hashed certificates): verify against that bundle only.
- ``ssl=False``: no verification at all (unsafe: anyone on the path can read the API key).
- ``ssl=<SSLContext>``: used as it is.

A bundle that is missing or holds no certificate is an `InvalidInputError` at construction.
"""

from __future__ import annotations

import logging
import os
import ssl
from typing import TypeAlias

from .._constants import LOGGER_NAME
from .._exceptions import InvalidInputError

log = logging.getLogger(LOGGER_NAME)

SSLOption: TypeAlias = "bool | str | os.PathLike[str] | ssl.SSLContext"
"""What ``ssl=`` accepts: True, False, a CA bundle path, or an `ssl.SSLContext`."""

ENV_CA_BUNDLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")  # in order of precedence

_HOST_MISMATCH = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


def build_context(option: SSLOption, *, tls_used: bool = True) -> ssl.SSLContext | bool:
    """Turn ``ssl=`` into what aiohttp's connector takes; read the environment now.

    With `tls_used` False (a plain ``http://`` server) ``ssl=True`` builds nothing: no
    certificate will ever be checked. A path is loaded (and so checked) in every case.
    """
    if isinstance(option, ssl.SSLContext):
        return option
    if option is False:
        log.warning("TLS certificate verification is off (ssl=False): use it only for tests")
        return False
    if option is True:
        if not tls_used:
            return True
        for variable in ENV_CA_BUNDLES:
            path = os.environ.get(variable)
            if path:
                return _load(path, f"${variable}")
        return ssl.create_default_context()
    if isinstance(option, (str, os.PathLike)) and os.fspath(option):
        return _load(os.fspath(option), "ssl=")
    raise InvalidInputError(
        f"ssl must be True, False, a CA bundle path or an ssl.SSLContext, got {option!r:.60}"
    )


def _load(path: str, source: str) -> ssl.SSLContext:
    try:
        if os.path.isdir(path):
            return ssl.create_default_context(capath=path)
        return ssl.create_default_context(cafile=path)
    except FileNotFoundError:
        raise InvalidInputError(f"{source}: no CA bundle at {path}") from None
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise InvalidInputError(f"{source}: cannot load the CA bundle {path}: {reason}") from None


def verify_failure(error: BaseException) -> str:
    """Explain a certificate verification failure: why, and how to trust a private CA."""
    reason = getattr(error, "verify_message", None) or str(error) or type(error).__name__
    hint = ""
    if getattr(error, "verify_code", None) in _HOST_MISMATCH:
        hint = "; check server_url"
    return (
        f"the server's TLS certificate could not be verified ({reason}){hint}. "
        'To trust a private or corporate CA, pass ssl="/path/to/ca.pem", or set SSL_CERT_FILE '
        "or REQUESTS_CA_BUNDLE to that file (command line: --ca-bundle PATH)"
    )
