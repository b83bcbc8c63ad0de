"""Fixtures for the built-in tool tests: an in-memory file store, a tool context, and real HTTP
servers on loopback for the HTTP backends."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from assistant_kit.server.tools.base import StoredFile, ToolContext


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class MemoryFiles:
    """Stands in for the server's file store: keeps what tools save, hands out ids."""

    data: dict[str, bytes] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def save(self, data: bytes, filename: str, mime_type: str) -> StoredFile:
        file_id = f"file-{next(self._ids)}"
        self.data[file_id] = data
        return StoredFile(id=file_id, filename=filename, mime_type=mime_type, size=len(data))


@pytest.fixture
def files() -> MemoryFiles:
    return MemoryFiles()


@pytest.fixture
def context(files: MemoryFiles) -> ToolContext:
    return ToolContext(thread_id="thread_1", run_id="run_1", save_file=files.save)


@dataclass(frozen=True)
class Seen:
    """One request a loopback server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


#: What a fake endpoint answers: (status, headers, body); a dict or list body is sent as JSON.
Answer = tuple[int, dict[str, str], object]


@dataclass
class LoopbackServer:
    """A real HTTP server on 127.0.0.1 (random port) answering with ``handler``."""

    handler: Callable[[Seen], Answer]
    seen: list[Seen] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def loopback() -> Iterator[Callable[[Callable[[Seen], Answer]], LoopbackServer]]:
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(handler: Callable[[Seen], Answer]) -> LoopbackServer:
        server_record = LoopbackServer(handler)

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                server_record.seen.append(seen)
                status, headers, body = server_record.handler(seen)
                if isinstance(body, (dict, list)):
                    data = json.dumps(body).encode()
                    headers = {"Content-Type": "application/json", **headers}
                else:
                    data = body if isinstance(body, bytes) else str(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        http_server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=http_server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((http_server, thread))
        server_record.url = f"http://127.0.0.1:{http_server.server_address[1]}"
        return server_record

    yield start
    for http_server, thread in servers:
        http_server.shutdown()
        http_server.server_close()
        thread.join()
