"""A slow, dead or broken model backend ends runs (failed with ``last_error``), never leaves them
stuck: the OpenAI backend pointed at loopback servers that refuse, hang, trickle or misbehave."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kit_fuzz_http import ApiUnderTest
from kit_processes import free_port

ACTIVE = ("queued", "in_progress", "requires_action", "cancelling")


class Upstream:
    """A loopback 'chat completions' server that misbehaves in one chosen way."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections.append(conn)
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            conn.recv(65536)
            if self.mode == "hang":
                self.stop.wait()
            elif self.mode == "close":
                conn.close()
            elif self.mode in ("500", "429"):
                body = b'{"error": {"message": "upstream is unhappy"}}'
                head = f"HTTP/1.1 {self.mode} Oops\r\ncontent-type: application/json\r\n"
                conn.sendall(head.encode() + f"content-length: {len(body)}\r\n\r\n".encode() + body)
            elif self.mode == "garbage":
                body = b"<html>not json</html>"
                head = b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n"
                conn.sendall(head + f"content-length: {len(body)}\r\n\r\n".encode() + body)
            elif self.mode in ("cut", "cut-chunked"):
                # 96 characters of a longer reply, then the upstream dies: no finish_reason,
                # no [DONE]. "cut" closes as a connection: close stream ends (a clean EOF);
                # "cut-chunked" drops the connection inside a chunked body.
                chunked = self.mode == "cut-chunked"
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    + (b"transfer-encoding: chunked\r\n" if chunked else b"connection: close\r\n")
                    + b"\r\n"
                )
                for _ in range(8):
                    delta = {"choices": [{"index": 0, "delta": {"content": "twelve chars"}}]}
                    event = f"data: {json.dumps(delta)}\n\n".encode()
                    conn.sendall(
                        f"{len(event):x}\r\n".encode() + event + b"\r\n" if chunked else event
                    )
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            elif self.mode in ("stall-mid-stream", "trickle"):
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"transfer-encoding: chunked\r\n\r\n"
                )
                chunk = b'data: {"choices": [{"index": 0, "delta": {"content": "a"}}]}\n\n'
                framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
                conn.sendall(framed)
                while self.mode == "trickle" and not self.stop.wait(0.3):
                    conn.sendall(framed)
                self.stop.wait()
        except OSError:
            pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        for conn in self.connections:
            conn.close()
        self.thread.join(5)


def dead_port() -> int:
    return free_port()  # bound once, then released: nothing listens there


@pytest.fixture
def upstreams() -> Iterator[dict[str, Upstream]]:
    modes = ["hang", "close", "500", "429", "garbage", "stall-mid-stream", "trickle"]
    servers = {mode: Upstream(mode) for mode in modes}
    yield servers
    for server in servers.values():
        server.close()


def wait_terminal(api: ApiUnderTest, runs: dict[str, dict[str, str]], limit: float) -> dict:
    deadline = time.monotonic() + limit
    final: dict[str, dict] = {}
    while time.monotonic() < deadline and len(final) < len(runs):
        for name, run in runs.items():
            if name in final:
                continue
            got = api.send("GET", f"/v1/threads/{run['thread_id']}/runs/{run['id']}").json()
            if got["status"] not in ACTIVE:
                final[name] = got
        time.sleep(0.1)
    stuck = sorted(set(runs) - set(final))
    assert not stuck, f"runs still active after {limit}s: {stuck}"
    return final


def test_every_broken_backend_ends_its_run_with_last_error(
    tmp_path: Path, upstreams: dict[str, Upstream]
) -> None:
    models = {
        name: {"backend": "openai", "base_url": server.url, "model": "m", "timeout": 1}
        for name, server in upstreams.items()
    }
    models["refused"] = {
        "backend": "openai",
        "base_url": f"http://127.0.0.1:{dead_port()}/v1",
        "timeout": 1,
    }
    # trickle never times out a read; the run's expiry ends it
    api = ApiUnderTest(tmp_path / "kit.db", {"models": models, "run_expiry_s": 4})
    try:
        runs = {}
        for name in models:
            assistant = api.send("POST", "/v1/assistants", json={"model": name}).json()
            body = {"assistant_id": assistant["id"], "thread": {"messages": [{"content": "hi"}]}}
            prefix = "/api/v1" if len(runs) % 2 else "/v1"
            made = api.send("POST", f"{prefix}/threads/runs", json=body)
            assert made.status_code == 200, made.text
            run = made.json()
            runs[name] = {"id": run["id"], "thread_id": run["thread_id"]}
        final = wait_terminal(api, runs, limit=20)
    finally:
        api.close()
    for name, run in final.items():
        if name == "trickle":
            assert run["status"] == "expired", run
            continue
        assert run["status"] == "failed", (name, run)
        error = run["last_error"]
        assert error and error["message"], (name, run)
        expected = "rate_limit_exceeded" if name == "429" else "server_error"
        assert error["code"] == expected, (name, error)
    assert "timed out" in final["hang"]["last_error"]["message"]


def streamed_runs(api: ApiUnderTest, content: str) -> dict[str, str]:
    """The SSE text of a streamed thread-and-run in each dialect (a new assistant)."""
    assistant = api.send("POST", "/v1/assistants", json={"model": "m"}).json()
    texts = {}
    for prefix in ("/v1", "/api/v1"):
        body = {
            "assistant_id": assistant["id"],
            "thread": {"messages": [{"content": content}]},
            "stream": True,
        }
        streamed = api.send("POST", f"{prefix}/threads/runs", json=body)
        assert streamed.status_code == 200
        texts[prefix] = streamed.text
    return texts


def test_a_dead_backend_fails_a_streamed_run_and_closes_the_stream(tmp_path: Path) -> None:
    models = {"default": {"backend": "openai", "base_url": f"http://127.0.0.1:{dead_port()}/v1"}}
    api = ApiUnderTest(tmp_path / "kit.db", {"models": models})
    try:
        started = time.monotonic()
        texts = streamed_runs(api, "hi")
        assert time.monotonic() - started < 30
        for text in texts.values():
            assert "thread.run.failed" in text and text.rstrip().endswith("[DONE]")
    finally:
        api.close()


@pytest.mark.parametrize("mode", ["cut", "cut-chunked"])
@pytest.mark.parametrize("prefix", ["/v1", "/api/v1"])
def test_a_reply_cut_off_mid_stream_fails_the_run_and_never_completes_its_message(
    tmp_path: Path, mode: str, prefix: str
) -> None:
    upstream = Upstream(mode)
    models = {"default": {"backend": "openai", "base_url": upstream.url, "model": "m"}}
    api = ApiUnderTest(tmp_path / "kit.db", {"models": models})
    try:
        assistant = api.send("POST", "/v1/assistants", json={"model": "m"}).json()
        body = {"assistant_id": assistant["id"], "thread": {"messages": [{"content": "hi"}]}}
        run = api.send("POST", f"{prefix}/threads/runs", json=body).json()
        final = wait_terminal(api, {"run": run}, limit=20)["run"]
        messages = api.send("GET", f"/v1/threads/{run['thread_id']}/messages").json()["data"]
    finally:
        api.close()
        upstream.close()
    assert final["status"] == "failed", final
    assert final["last_error"]["code"] == "server_error"
    replies = [m for m in messages if m["role"] == "assistant"]
    assert all(m["status"] != "completed" for m in replies), replies


def test_a_scripted_cut_stream_fails_the_streamed_run(tmp_path: Path) -> None:
    script = tmp_path / "cut.yaml"
    script.write_text(
        "rules:\n  - {user: story, reply: 'Once upon a time there was a model', cut_after: 9}\n",
        encoding="utf-8",
    )
    models = {"default": {"backend": "scripted", "script": str(script)}}
    api = ApiUnderTest(tmp_path / "kit.db", {"models": models})
    try:
        for text in streamed_runs(api, "a story").values():
            assert "thread.run.failed" in text and "thread.run.completed" not in text, text
            assert "thread.message.completed" not in text
            assert "cut off after 9 characters" in text
    finally:
        api.close()
