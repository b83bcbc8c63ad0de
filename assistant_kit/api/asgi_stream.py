"""An httpx transport onto an ASGI app that hands the response body over as the app sends it.

``httpx.ASGITransport`` waits for the whole response before returning it, so a server-sent event
stream from the in-process server arrives at once. ``StreamingASGITransport`` returns as soon as
the app has sent the response head and yields each body chunk when the app sends it, so an
in-process run streams the way it does from ``kit serve``::

    http = httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://kit/v1")

Closing the response before its end tells the app the client went away (``http.disconnect``)
and stops the app's handler, as a dropped connection would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx

#: Seconds a handler may take to notice a disconnect before it is cancelled.
_DISCONNECT_GRACE = 1.0

_END = object()


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """Like ``httpx.ASGITransport``, but the body streams (see the module docstring).

    The app's lifespan is not run here: enter ``app.router.lifespan_context(app)`` first.
    """

    def __init__(self, app: Any, *, client: tuple[str, int] = ("127.0.0.1", 123)) -> None:
        self.app = app
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for (k, v) in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": self.client,
            "root_path": "",
        }
        loop = asyncio.get_running_loop()
        head: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = loop.create_future()
        chunks: asyncio.Queue[object] = asyncio.Queue()
        gone = asyncio.Event()
        sent_request = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_request
            if not sent_request:
                sent_request = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                if not head.done():
                    head.set_result((int(message["status"]), list(message.get("headers") or [])))
            elif message["type"] == "http.response.body":
                if gone.is_set():
                    raise OSError("the client disconnected")
                data = message.get("body", b"")
                if data and request.method != "HEAD":
                    chunks.put_nowait(bytes(data))
                if not message.get("more_body", False):
                    chunks.put_nowait(_END)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception as exc:
                if not head.done():
                    head.set_exception(exc)
                else:
                    chunks.put_nowait(exc)
            finally:
                if not head.done():
                    head.set_exception(RuntimeError("the app sent no response"))
                chunks.put_nowait(_END)

        task = asyncio.create_task(run())
        try:
            status, headers = await head
        except BaseException:
            await _finish(task, gone)
            raise
        return httpx.Response(status, headers=headers, stream=_Body(chunks, task, gone))


class _Body(httpx.AsyncByteStream):
    def __init__(
        self, chunks: asyncio.Queue[object], task: asyncio.Task[None], gone: asyncio.Event
    ):
        self._chunks = chunks
        self._task = task
        self._gone = gone

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._chunks.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item

    async def aclose(self) -> None:
        await _finish(self._task, self._gone)


async def _finish(task: asyncio.Task[None], gone: asyncio.Event) -> None:
    """Tell the app the client is gone and wait (briefly) for its handler to end."""
    gone.set()
    if task.done():
        return
    try:
        await asyncio.wait_for(asyncio.shield(task), _DISCONNECT_GRACE)
    except asyncio.TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    except asyncio.CancelledError:
        task.cancel()
        raise
    except Exception:  # the handler's own failure was reported through the body already
        pass
