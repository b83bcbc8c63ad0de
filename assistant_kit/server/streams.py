"""Open SSE streams: keep-alive comments while a run is quiet, a last event when draining.

Proxies (nginx, load balancers) cut a response that sends nothing for a while (nginx: 60 s), and
a model can think longer than that; every ``keepalive_s`` of silence a stream sends the SSE
comment ``: keep-alive``, which every SSE client ignores. When the server stops
(``drain(grace_s)``), each open stream gets the grace period to finish by itself, then sends its
dialect's final frames (an error saying the server is going away, then ``done``) and ends, so
clients see a clean end instead of a cut connection; the runs themselves are stored and resume
when the server starts again::

    control = StreamControl(keepalive_s=15)
    StreamingResponse(control.wrap(body, final=lambda: b"event: done\\ndata: [DONE]\\n\\n"))
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

__all__ = ["KEEPALIVE", "StreamControl"]

#: The comment line sent while a stream is quiet.
KEEPALIVE = b": keep-alive\n\n"


class StreamControl:
    """Keeps the app's open streams alive and ends them on ``drain()``."""

    def __init__(self, keepalive_s: float = 15.0) -> None:
        self.keepalive_s = keepalive_s
        self.open = 0
        self._draining = False
        self._wakers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    @property
    def draining(self) -> bool:
        return self._draining

    def drain(self, grace_s: float = 0.0) -> int:
        """Give every open stream ``grace_s`` seconds to end by itself, then end it with its
        final frames (a stream opened meanwhile ends at once); returns how many were open.
        Safe from a signal handler or another thread."""
        self._draining = True
        for loop, waker in list(self._wakers):
            loop.call_soon_threadsafe(loop.call_later, grace_s, waker.set)
        return self.open

    async def wrap(
        self, body: AsyncIterator[bytes], final: Callable[[], bytes]
    ) -> AsyncIterator[bytes]:
        """``body``'s chunks, with keep-alive comments in its silences, cut short by a drain."""
        if self._draining:
            yield final()
            return
        waker = asyncio.Event()
        entry = (asyncio.get_running_loop(), waker)
        self._wakers.add(entry)
        self.open += 1
        chunks = body.__aiter__()
        pending: asyncio.Future[bytes] = asyncio.ensure_future(chunks.__anext__())
        woken: asyncio.Future[Any] = asyncio.ensure_future(waker.wait())
        try:
            while True:
                waiting: set[asyncio.Future[Any]] = {pending, woken}
                done, _ = await asyncio.wait(
                    waiting,
                    timeout=self.keepalive_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if pending in done:
                    try:
                        chunk = pending.result()
                    except StopAsyncIteration:
                        return
                    yield chunk
                    pending = asyncio.ensure_future(chunks.__anext__())
                elif woken in done:
                    yield final()
                    return
                else:
                    yield KEEPALIVE
        finally:
            self.open -= 1
            self._wakers.discard(entry)
            woken.cancel()
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                    await pending
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
