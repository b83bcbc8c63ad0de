"""Who may call the server: the ``Host`` a request names, then its bearer key.

Keys come from ``KIT_SERVER_API_KEYS`` (comma separated) and ``--api-key``. With no key configured
the server accepts any non-empty bearer key, and only on a loopback host: ``check_bind`` refuses
anything else before a socket opens.

A loopback listener is still reachable from any web page through DNS rebinding (the page's own
name resolves to 127.0.0.1, so the browser treats the server as same-origin and sends whatever it
likes). What gives that away is the ``Host`` header, which carries the page's name.
``TrustedHosts`` answers only to loopback names plus the ones configured (``--trusted-host``,
kit.yaml ``server.trusted_hosts``); with API keys and no names configured, any ``Host`` is
accepted (the keys are the guard, and a server behind a proxy sees many names)::

    hosts = TrustedHosts.for_server(api_keys=(), configured=("kit.internal",))
    hosts.allows("127.0.0.1:8900"), hosts.allows("evil.example:8900")    # True, False
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without its port, lower case (``[::1]`` stays bracketed)."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[: end + 1] if end > 0 else header
    name, colon, port = header.rpartition(":")
    return name if colon and port.isdigit() else header


@dataclass(frozen=True, slots=True)
class TrustedHosts:
    """The ``Host`` values a server answers to: loopback names always, ``names`` besides
    (``*`` stands for any name)."""

    names: frozenset[str] = frozenset()

    @classmethod
    def for_server(
        cls, api_keys: Iterable[str], configured: Iterable[str] = ()
    ) -> TrustedHosts | None:
        """The policy of a listening server; ``None`` means any ``Host`` (keys, no names)."""
        names = frozenset(host_name(n) for n in configured if n.strip())
        if "*" in names or (tuple(api_keys) and not names):
            return None
        return cls(names)

    def allows(self, header: str | None) -> bool:
        if not header:
            return False  # every HTTP/1.1 client sends one; a browser always does
        name = host_name(header)
        return is_loopback(name) or name in self.names

    def check(self, header: str | None) -> None:
        """Raise ``ApiError(400)`` unless ``header`` names a trusted host."""
        if not self.allows(header):
            shown = (header or "")[:100]
            raise ApiError(
                400,
                "invalid_host",
                f"This server does not answer to the host {shown!r}; it answers to loopback "
                "names (127.0.0.1, localhost, [::1]) and the ones given with --trusted-host "
                "or kit.yaml server.trusted_hosts.",
            )


class Authenticator:
    """Checks the ``Host`` (when ``hosts`` is given) and ``Authorization: Bearer <key>`` headers
    of a request."""

    def __init__(self, api_keys: Iterable[str], hosts: TrustedHosts | None = None) -> None:
        self._keys = tuple(k.encode() for k in api_keys)
        self.hosts = hosts

    def check_request(self, headers: Mapping[str, str]) -> None:
        """Raise ``ApiError`` (400 for the host, 401 for the key) unless the request may pass."""
        if self.hosts is not None:
            self.hosts.check(headers.get("host"))
        self.check(headers.get("authorization"))

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
