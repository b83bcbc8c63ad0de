"""Bearer-key authentication of every route.

Keys come from ``KIT_SERVER_API_KEYS`` (comma separated) and ``--api-key``. With no key configured
the server accepts any non-empty bearer key, and only on a loopback host: ``check_bind`` refuses
anything else before a socket opens.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Mapping

from assistant_kit.errors import ApiError, ConfigError

#: The variable that lists the accepted keys, comma separated.
KEYS_ENV = "KIT_SERVER_API_KEYS"


def keys_from_env(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The keys named in ``KIT_SERVER_API_KEYS``, blanks dropped."""
    return tuple(k.strip() for k in environ.get(KEYS_ENV, "").split(",") if k.strip())


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_keys: Iterable[str]) -> None:
    """Refuse to serve a non-loopback host without keys (raises ``ConfigError``)."""
    if not tuple(api_keys) and not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host} without an API key: set {KEYS_ENV} or pass "
            "--api-key (with no key, only a loopback host such as 127.0.0.1 is allowed)"
        )


class Authenticator:
    """Checks the ``Authorization: Bearer <key>`` header of a request."""

    def __init__(self, api_keys: Iterable[str]) -> None:
        self._keys = tuple(k.encode() for k in api_keys)

    def check(self, authorization: str | None) -> None:
        """Raise ``ApiError(401)`` unless the header carries an accepted key."""
        scheme, _, key = (authorization or "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise ApiError(
                401,
                "invalid_api_key",
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
            )
        if not self._keys:
            return
        given = key.encode()
        if not any(hmac.compare_digest(given, k) for k in self._keys):
            raise ApiError(401, "invalid_api_key", "Incorrect API key provided.")
