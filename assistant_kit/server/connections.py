"""Connection limits for ``kit serve``: header and body deadlines, a cap on open connections.

uvicorn waits for a request's head and body as long as the client likes, and accepts connections
until the process runs out of file descriptors: a few hundred unauthenticated half-open
connections (a request line and no more, or nothing at all) then freeze the server. The
``guarded_protocol`` wrapper around uvicorn's HTTP protocol enforces:

* ``header_timeout_s``: a connection that opens, or starts a new request, must finish the
  request's head within this time;
* ``body_timeout_s``: after the head, the server must be able to start answering (the body has
  arrived) within this time;
* ``max_connections``: at most this many open connections (by default what the process's file
  descriptor limit leaves after a reserve for the store, the sandbox and the model, and room for
  the accept bursts below). A new connection over the cap closes the oldest one still waiting for
  its request; when every connection is busy answering (streams), the new one is closed at once.
* ``backlog``: the listen backlog. asyncio accepts up to this many pending connections in one go
  before any of them reaches the protocol, so a burst can go past the cap by a few backlogs;
  the default cap leaves room for three, and the process never runs out of descriptors (which
  would stop it accepting anything, with a traceback per attempt).

A connection closed by a deadline gets no answer: it never sent a whole request. Once the server
writes its answer, the deadlines are off until the client starts its next request; idle
keep-alive connections are closed by uvicorn's own ``timeout_keep_alive``.

    limits = ConnectionLimits.for_process(header_timeout_s=10)
    uvicorn.Config(app, http=guarded_protocol(limits), backlog=limits.backlog, ...)
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any, cast

log = logging.getLogger("assistant_kit.server")

#: File descriptors kept for everything but connections (SQLite, sandbox pipes, the model).
FD_RESERVE = 64
#: The cap when the descriptor limit allows more (or is unlimited).
DEFAULT_MAX_CONNECTIONS = 1024
_HEAD_END = b"\r\n\r\n"
_CONTINUE = b"HTTP/1.1 100 "


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The deadlines and the cap of ``guarded_protocol``."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    backlog: int = 2048

    @classmethod
    def for_process(
        cls,
        *,
        header_timeout_s: float = 10.0,
        body_timeout_s: float = 30.0,
        max_connections: int | None = None,
    ) -> ConnectionLimits:
        """Limits that fit this process's file descriptor limit (``RLIMIT_NOFILE``)."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        room = 1 << 20 if soft == resource.RLIM_INFINITY else max(soft - FD_RESERVE, 32)
        backlog = max(4, min(2048, room // 8))
        fitting = max(4, min(DEFAULT_MAX_CONNECTIONS, room - 3 * backlog))
        cap = fitting if max_connections is None else max(1, min(max_connections, fitting))
        return cls(header_timeout_s, body_timeout_s, cap, backlog)


class _Transport:
    """The transport as uvicorn's protocol sees it: writes mark the request as answered."""

    def __init__(self, guard: _Guarded, transport: asyncio.Transport) -> None:
        self._guard = guard
        self._transport = transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not bytes(data[:13]).startswith(_CONTINUE):  # "send your body" is no answer yet
            self._guard.answering()
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Guarded(asyncio.Protocol):
    """uvicorn's HTTP protocol (``inner``) behind the deadlines and the cap."""

    inner_class: type[asyncio.Protocol]
    limits: ConnectionLimits
    open: dict[_Guarded, None]  # insertion order = age; shared by every connection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.inner = self.inner_class(*args, **kwargs)
        self.transport: asyncio.Transport | None = None
        self.waiting = True  # for a request (its head or its body), not answering one
        self.in_head = True
        self.tail = b""
        self.timer: asyncio.TimerHandle | None = None
        self.since = time.monotonic()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one
        self.transport = cast(asyncio.Transport, transport)
        transport = self.transport
        if len(self.open) >= self.limits.max_connections and not self._evict():
            log.warning(
                "refused a connection: %d connections are open and answering (the cap)",
                len(self.open),
            )
            transport.abort()
            return
        self.open[self] = None
        self._arm(self.limits.header_timeout_s)
        self.inner.connection_made(_Transport(self, transport))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self not in self.open:
            return
        if not self.waiting:  # the next request on a kept-alive connection
            self.waiting, self.in_head, self.tail = True, True, b""
            self._arm(self.limits.header_timeout_s)
        if self.in_head:
            seen = self.tail + data
            if _HEAD_END in seen:
                self.in_head = False
                self._arm(self.limits.body_timeout_s)
            else:
                self.tail = seen[-3:]
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.open.pop(self, False) is not False:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # -- the guard ---------------------------------------------------------------------------

    def answering(self) -> None:
        if self.waiting:
            self.waiting = False
            self._disarm()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self.since = time.monotonic()
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expired(self) -> None:
        self.timer = None
        if self.transport is not None and self.waiting:
            what = "its request head" if self.in_head else "its request body"
            log.info("closed a connection that did not send %s in time", what)
            self.transport.abort()

    def _evict(self) -> bool:
        """Close the oldest connection waiting for its request; False when there is none."""
        for other in self.open:
            if other.waiting and other.transport is not None:
                log.info("closed the oldest connection waiting for its request (the cap)")
                other.transport.abort()
                self.open.pop(other, None)
                other._disarm()
                other.inner.connection_lost(None)
                return True
        return False


def guarded_protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (``http="auto"``) under ``limits``, for ``uvicorn.Config(http=)``."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    return type(
        "GuardedHTTPProtocol",
        (_Guarded,),
        {"inner_class": AutoHTTPProtocol, "limits": limits, "open": {}},
    )
