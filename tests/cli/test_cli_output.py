"""How every command prints: colour rules, plain lines when piped, visible retries, failing fast
on a refused loopback target, and `-v` / KIT_LOG with secrets redacted.

The remote target here is a small OpenAI-dialect endpoint on 127.0.0.1 started by the test: it
answers the list and create calls `kit plan` / `kit apply` make, failing the first N with 503.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from assistant_kit.cli.logs import level_for
from assistant_kit.cli.output import want_color

SENTINEL = "sk-cliout-SENTINEL-4b1d9e"

SPEC = """\
name: {name}
model: qwen-max
instructions: |
  You are {name}. {extra}
"""


class FakeTarget(ThreadingHTTPServer):
    """An Assistants v2 endpoint on loopback holding assistants in memory."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.failures = failures
        self.requests: list[tuple[str, str, str]] = []  # method, path, authorization
        self.assistants: list[dict[str, object]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: FakeTarget

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append((method, self.path, self.headers.get("Authorization", "")))
        if self.server.failures > 0:
            self.server.failures -= 1
            error = {
                "error": {"message": "overloaded", "type": "server_error", "code": "overloaded"}
            }
            self._send(503, error, {"Retry-After": "0"})
            return
        if method == "GET":
            data = self.server.assistants
            self._send(200, {"object": "list", "data": data, "has_more": False})
            return
        created = {
            "id": f"asst_{len(self.server.assistants) + 1}",
            "object": "assistant",
            "created_at": 1,
            "tools": [],
            **body,
        }
        self.server.assistants.append(created)
        self._send(200, created)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")


@pytest.fixture
def target() -> Iterator[FakeTarget]:
    server = FakeTarget()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def project(folder: Path, base_url: str, extra: str = "") -> Path:
    (folder / "kit.yaml").write_text(
        "default_target: remote\ntargets:\n"
        f"  remote: {{provider: openai, base_url: '{base_url}', api_key_env: CLIOUT_KEY}}\n",
        encoding="utf-8",
    )
    (folder / "assistants").mkdir()
    for name in ("alpha", "beta"):
        (folder / "assistants" / f"{name}.yaml").write_text(
            SPEC.format(name=name, extra=extra), encoding="utf-8"
        )
    return folder


def kit(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``kit ARGS`` piped (stdout is not a terminal), as in CI."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NO_COLOR", "FORCE_COLOR", "KIT_LOG") and "PROXY" not in k.upper()
    }
    environ.update(CLIOUT_KEY=SENTINEL, NO_PROXY="127.0.0.1", **env)
    return subprocess.run(
        [sys.executable, "-m", "assistant_kit", *args],
        cwd=folder,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- colour -------------------------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("choice", "env", "tty", "expected"),
    [
        pytest.param("auto", {}, True, True, id="terminal"),
        pytest.param("auto", {}, False, False, id="piped"),
        pytest.param("auto", {"TERM": "dumb"}, True, False, id="dumb-terminal"),
        pytest.param("auto", {"NO_COLOR": "1"}, True, False, id="NO_COLOR"),
        pytest.param("auto", {"FORCE_COLOR": "1"}, False, True, id="FORCE_COLOR-piped"),
        pytest.param("auto", {"NO_COLOR": "1", "FORCE_COLOR": "1"}, True, False, id="both"),
        pytest.param("always", {"NO_COLOR": "1"}, False, True, id="always-beats-NO_COLOR"),
        pytest.param("never", {"FORCE_COLOR": "1"}, True, False, id="never-beats-FORCE"),
    ],
)
def test_the_colour_decision(choice: str, env: dict[str, str], tty: bool, expected: bool) -> None:
    stream = _Tty() if tty else io.StringIO()
    assert want_color(choice, env, stream) is expected


def test_the_text_can_move_to_stderr_when_stdout_carries_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from assistant_kit.cli.output import configure, reset

    ui = configure(text_on_stderr=True)
    try:
        ui.print_lines('  + assistant "a"', {"+": "green"})
        ui.line("done")
    finally:
        reset()
    out, err = capsys.readouterr()
    assert (out, err) == ("", '  + assistant "a"\ndone\n')


def test_plan_is_plain_when_piped_and_coloured_by_symbol_with_force_color(
    tmp_path: Path, target: FakeTarget
) -> None:
    project(tmp_path, target.url)
    piped = kit(tmp_path, "plan")
    assert piped.returncode == 0, piped.stderr
    assert '  + assistant "alpha"' in piped.stdout and "\x1b[" not in piped.stdout
    forced = kit(tmp_path, "plan", FORCE_COLOR="1")
    assert '\x1b[32m  + assistant "alpha"' in forced.stdout  # green: will be created
    assert "\x1b[" not in kit(tmp_path, "plan", "--color", "never", FORCE_COLOR="1").stdout
    assert '\x1b[32m  + assistant "alpha"' in kit(tmp_path, "plan", "--color", "always").stdout


def test_apply_prints_each_change_as_it_finishes_counted_when_piped(
    tmp_path: Path, target: FakeTarget
) -> None:
    project(tmp_path, target.url)
    done = kit(tmp_path, "apply", "--yes")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    finished = [line for line in lines if ": created (asst_" in line]
    assert len(finished) == 2
    assert sorted(line.rsplit(maxsplit=1)[1] for line in finished) == ["[1/2]", "[2/2]"]
    assert all(line.startswith('  + assistant "') for line in finished)
    assert lines[-1] == "Apply complete: 2 created, 0 updated, 0 deleted."


# -- retries and dead targets -------------------------------------------------------------------


def test_retries_are_shown_as_they_happen(tmp_path: Path, target: FakeTarget) -> None:
    project(tmp_path, target.url)
    target.failures = 2
    done = kit(tmp_path, "plan")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "retrying (2/6) in 0.0 s: 503 overloaded",
        "retrying (3/6) in 0.0 s: 503 overloaded",
    ]
    assert "Plan: 2 to create" in done.stdout


def test_a_refused_loopback_target_fails_at_once_with_the_kit_serve_hint(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    project(tmp_path, f"http://127.0.0.1:{port}/v1")
    for command in (["plan"], ["apply", "--yes"]):
        done = kit(tmp_path, *command)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "retrying" not in done.stderr  # nothing listens: waiting will not change that
        assert done.stderr.splitlines()[-1] == (
            f"hint: nothing listens on port {port} of this machine; start the server with "
            f"`kit serve --port {port}` (or fix the target's base_url in kit.yaml)"
        )
        assert "Traceback" not in done.stderr


# -- -v, KIT_LOG, redaction ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verbosity", "env", "level"),
    [
        pytest.param(0, {}, None, id="quiet"),
        pytest.param(1, {}, 20, id="-v"),
        pytest.param(2, {}, 10, id="-vv"),
        pytest.param(0, {"KIT_LOG": "debug"}, 10, id="KIT_LOG"),
        pytest.param(1, {"KIT_LOG": "warning"}, 20, id="the-more-verbose-wins"),
    ],
)
def test_log_levels(verbosity: int, env: dict[str, str], level: int | None) -> None:
    assert level_for(verbosity, env) == level


def test_vv_shows_every_http_exchange_with_secrets_redacted(
    tmp_path: Path, target: FakeTarget
) -> None:
    # a secret that leaked into a spec reaches a request body: the log must not show it
    project(tmp_path, target.url, extra=f"Never say {SENTINEL}.")
    done = kit(tmp_path, "apply", "--yes", "-vv")
    assert done.returncode == 0, done.stderr
    assert all(auth == f"Bearer {SENTINEL}" for _, _, auth in target.requests)  # it was sent
    log = done.stderr
    assert SENTINEL not in log + done.stdout
    assert f"DEBUG   assistant_kit.http: > GET {target.url}/assistants?" in log
    assert "DEBUG   assistant_kit.http: < 200 OK GET " in log
    assert f"> POST {target.url}/assistants " in log
    assert "Never say [REDACTED]." in log  # the body is there, the secret is not
    assert "authorization" not in log.lower()


def test_kit_log_works_on_every_command_and_a_bad_level_is_a_usage_error(
    tmp_path: Path, target: FakeTarget
) -> None:
    project(tmp_path, target.url)
    quiet = kit(tmp_path, "plan")
    assert "DEBUG" not in quiet.stderr and "INFO" not in quiet.stderr
    info = kit(tmp_path, "plan", "-v")
    assert info.stderr.splitlines() == [
        f"INFO    assistant_kit.targets: target `remote`: {target.url} (openai dialect)"
    ]
    logged = kit(tmp_path, "plan", KIT_LOG="debug")
    assert "DEBUG   assistant_kit.http: > GET " in logged.stderr
    assert SENTINEL not in logged.stderr
    bad = kit(tmp_path, "validate", KIT_LOG="loud")
    assert bad.returncode == 2
    assert "KIT_LOG='loud' is not a log level; use one of debug, info, warning, error" in bad.stderr
