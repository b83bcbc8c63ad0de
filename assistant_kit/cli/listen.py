"""What `kit serve` does around uvicorn: the socket, TLS, the banner, draining on a stop signal.

The socket is bound before anything is printed, so a busy port is one clear error (exit 2) and
not a banner followed by uvicorn's traceback. The banner's ``export`` lines work as they are
when pasted into a shell. On SIGINT / SIGTERM the server says it is draining, gives requests and
open streams the grace period, ends the streams still open with a final event and exits 0;
a second Ctrl-C stops at once, still without a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import ssl
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import click
import uvicorn

from assistant_kit.errors import ConfigError

__all__ = ["LOCAL_PLACEHOLDER_KEY", "DrainingServer", "banner", "bind", "check_tls"]

#: The key the banner suggests for a keyless loopback server (which accepts any non-empty key).
LOCAL_PLACEHOLDER_KEY = "kit-local"


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (as uvicorn binds it); ``ConfigError`` when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} is in use (another kit serve?); pass --port") from exc
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def check_tls(certfile: Path | None, keyfile: Path | None) -> None:
    """Load the certificate and key once, so a wrong pair is a clear error before serving."""
    if certfile is None and keyfile is None:
        return
    if certfile is None:
        raise click.UsageError("--ssl-keyfile needs --ssl-certfile")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"cannot use the TLS certificate {certfile}"
            f"{f' with the key {keyfile}' if keyfile else ''}: {exc}"
        ) from exc


def banner(
    *,
    base: str,
    database: str,
    routes: Mapping[str, str] | None,
    keys: Sequence[str],
    keys_from_env: bool,
    root_path: str,
) -> list[str]:
    """The lines `kit serve` prints once it can listen."""
    lines = [f"assistant-kit server, store {database}"]
    if routes:
        lines.append("  models: " + ", ".join(f"{n} -> {k}" for n, k in sorted(routes.items())))
    lines.append(f"  DashScope: {base}/api/v1")
    lines.append(f"  OpenAI:    {base}/v1")
    lines.append("  Health:    /health (liveness), /ready (store reachable), no key needed")
    if root_path:
        lines.append(
            f"  behind a reverse proxy under {root_path}: "
            f"the SDKs use https://YOUR-HOST{root_path}/v1 and .../api/v1"
        )
    if not keys:
        key = LOCAL_PLACEHOLDER_KEY
        note = "No API key configured: any non-empty key is accepted (loopback only)."
    elif keys_from_env and len(keys) == 1:
        key, note = '"$KIT_SERVER_API_KEYS"', ""
    else:
        key = "YOUR-KEY"
        note = "Use one of the keys given with --api-key / KIT_SERVER_API_KEYS as YOUR-KEY."
    lines.append("Point the SDKs at it (paste into a shell):")
    lines.append(f"  export OPENAI_BASE_URL={base}/v1 OPENAI_API_KEY={key}")
    lines.append(f"  export DASHSCOPE_HTTP_BASE_URL={base}/api/v1 DASHSCOPE_API_KEY={key}")
    if note:
        lines.append(note)
    lines.append("Press Ctrl+C to stop.")
    return lines


class DrainingServer(uvicorn.Server):
    """uvicorn's server, telling the app to end its open streams on the first stop signal."""

    def __init__(self, config: uvicorn.Config, streams: Any, grace_s: float) -> None:
        super().__init__(config)
        self.streams = streams
        self.grace_s = grace_s

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            open_streams = self.streams.drain(self.grace_s) if self.streams is not None else 0
            click.echo(
                f"Draining: requests and {open_streams} open stream(s) get up to "
                f"{self.grace_s:g} s to finish; streams still open then end with a final event "
                "(Ctrl+C again to stop at once)...",
                err=True,
            )
        elif sig == signal.SIGINT and not self.force_exit:
            click.echo("Stopping now.", err=True)
            if self.streams is not None:
                self.streams.drain(0)  # no more grace: the final events go out now
        sys.stderr.flush()
        super().handle_exit(sig, frame)  # a second SIGINT sets force_exit: no more waiting

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets=sockets)
        if self.force_exit:
            # let the streams write their final events (a second at most), then do the app's
            # shutdown, which uvicorn skips when forced (its lifespan task would then die
            # cancelled with a traceback): the runs stop and the store is closed all the same
            for _ in range(20):
                if self.streams is None or not self.streams.open:
                    break
                await asyncio.sleep(0.05)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.lifespan.shutdown(), timeout=5)
