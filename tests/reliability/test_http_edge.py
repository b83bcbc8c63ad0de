"""The HTTP edge of a real ``kit serve``: Host checks against DNS rebinding, half-open
connections, clients that leave mid-body, trailing slashes."""

from __future__ import annotations

import resource
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from kit_processes import KitServe

#: The descriptor limit the attack saw the server freeze at.
NOFILE = 256


def get(port: int, path: str, host: str, key: str = "anything") -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=10) as http:
        return http.get(
            f"http://127.0.0.1:{port}{path}",
            headers={"Host": host, "Authorization": f"Bearer {key}"},
        )


# -- Host ----------------------------------------------------------------------------------------


def test_a_keyless_server_answers_only_loopback_host_names(tmp_path: Path) -> None:
    with KitServe(tmp_path, pass_key=False, args=["--trusted-host", "kit.internal"]) as server:
        port = server.port
        rebound = get(port, "/v1/assistants", f"attacker.example:{port}")
        assert rebound.status_code == 400, rebound.text
        assert rebound.json()["error"]["code"] == "invalid_host"
        made = httpx.post(
            server.url("/api/v1/assistants"),
            headers={"Host": f"attacker.example:{port}", **server.auth},
            json={"model": "m"},
        )
        assert made.status_code == 400 and made.json()["code"] == "InvalidParameter"
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "kit.internal"):
            assert get(port, "/v1/assistants", host).status_code == 200, host


def test_a_server_with_keys_answers_any_host(tmp_path: Path) -> None:
    with KitServe(tmp_path, key="k") as server:
        assert get(server.port, "/v1/assistants", "api.example", key="k").status_code == 200


# -- half-open connections ---------------------------------------------------------------------


class LimitedKitServe(KitServe):
    """``kit serve`` started with a low file descriptor limit, as the attack saw it."""

    def start(self) -> LimitedKitServe:
        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))

        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                self.args,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.folder,
                preexec_fn=limit,
            )
        self.wait_ready()
        return self


@pytest.fixture
def sockets() -> Iterator[Callable[[], socket.socket]]:
    opened: list[socket.socket] = []

    def open_one() -> socket.socket:
        sock = socket.socket()
        sock.settimeout(10)
        opened.append(sock)
        return sock

    yield open_one
    for sock in opened:
        sock.close()


def test_300_half_open_connections_do_not_freeze_the_server(
    tmp_path: Path, sockets: Callable[[], socket.socket]
) -> None:
    (tmp_path / "kit.yaml").write_text(
        "server:\n  connections: {header_timeout_s: 2, body_timeout_s: 2}\n", encoding="utf-8"
    )
    with LimitedKitServe(tmp_path) as server:
        held = []
        for i in range(300):
            sock = sockets()
            try:
                sock.connect(("127.0.0.1", server.port))
            except OSError:
                continue  # refused or reset: the server is shedding them, as it should
            if i % 4 == 3:  # asks to be told to send its body, then never does
                sock.sendall(
                    b"POST /v1/threads HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    + f"Authorization: Bearer {server.key}\r\n".encode()
                    + b"content-type: application/json\r\ncontent-length: 100\r\n"
                    b"expect: 100-continue\r\n\r\n"
                )
            elif i % 3 == 1:  # a request line and half the headers, never finished
                sock.sendall(b"GET /v1/assistants HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            elif i % 3 == 2:  # a whole head with a good key, a body that never comes
                sock.sendall(
                    b"POST /v1/assistants HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    + f"Authorization: Bearer {server.key}\r\n".encode()
                    + b"content-type: application/json\r\ncontent-length: 100\r\n\r\n{"
                )
            held.append(sock)
        with httpx.Client(trust_env=False, timeout=10) as http:
            answer = http.get(server.url("/v1/assistants"), headers=server.auth)
        assert answer.status_code == 200, answer.text
        # every one of them is closed by the server once its deadline passes (2 s)
        deadline = time.monotonic() + 15
        while held and time.monotonic() < deadline:
            sock = held[0]
            sock.settimeout(0.2)
            try:
                if sock.recv(65536) != b"":
                    continue  # an answer to read past; the close comes after it
            except TimeoutError:
                continue
            except OSError:
                pass  # reset: closed
            held.pop(0)
        assert not held, f"{len(held)} half-open connections are still open"
        assert server.process is not None and server.process.poll() is None
    output = server.output()
    assert "Too many open files" not in output and "Traceback" not in output, output[-3000:]


# -- a client that leaves mid-body ---------------------------------------------------------------


def test_a_client_leaving_mid_body_is_no_error_in_the_log(tmp_path: Path) -> None:
    with KitServe(tmp_path, key="k") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/assistants HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer k\r\n"
                b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n"
                b'{"model": "m", "name": "'
            )
            time.sleep(0.3)
        time.sleep(0.5)
        # the server is fine and said nothing alarming
        again = httpx.get(server.url("/v1/assistants"), headers=server.auth)
        assert again.status_code == 200
    output = server.output()
    assert "Traceback" not in output and "unexpected error" not in output, output


# -- trailing slashes ----------------------------------------------------------------------------


def test_a_trailing_slash_gets_401_or_404_never_a_redirect(tmp_path: Path) -> None:
    with (
        KitServe(tmp_path, key="k") as server,
        httpx.Client(trust_env=False, timeout=10, follow_redirects=False) as http,
    ):
        anonymous = http.get(server.url("/v1/assistants/"))
        assert anonymous.status_code == 401 and "location" not in anonymous.headers
        known = http.get(server.url("/api/v1/assistants/"), headers=server.auth)
        assert known.status_code == 404 and known.json()["code"]
