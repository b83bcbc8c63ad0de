"""`kit serve` for deployment, on real processes and sockets: probes, the banner, a busy port,
TLS, keep-alive and draining of open streams, the root path and proxy headers of the examples
in examples/deploy/ (the systemd unit and the nginx site the README shows)."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from kit_processes import KitServe, child_env, free_port, run_kit
from starlette.applications import Starlette

from assistant_kit.cli import cli
from assistant_kit.cli.serve import serve
from assistant_kit.server.app import ServerConfig, create_app

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "examples" / "deploy"

pytestmark = pytest.mark.slow


def scripted_project(folder: Path, delay_ms: int = 0) -> Path:
    """A project whose every model name is a scripted model taking ``delay_ms`` per call."""
    (folder / "kit.yaml").write_text(
        "server:\n  models:\n    default: {backend: scripted, script: script.yaml}\n",
        encoding="utf-8",
    )
    (folder / "script.yaml").write_text(
        f"delay_ms: {delay_ms}\ndefault: Done thinking.\n", encoding="utf-8"
    )
    return folder


# -- probes -------------------------------------------------------------------------------------


def test_health_and_ready_answer_without_a_key_and_the_api_still_wants_one(
    tmp_path: Path,
) -> None:
    with KitServe(tmp_path, key="deploy-key") as server, httpx.Client(trust_env=False) as http:
        health = http.get(server.url("/health"))
        ready = http.get(server.url("/ready"))
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        assert (ready.status_code, ready.json()) == (200, {"status": "ok", "store": "ok"})
        assert http.get(server.url("/v1/assistants")).status_code == 401
        assert http.get(server.url("/api/v1/assistants")).status_code == 401


@pytest.mark.anyio
async def test_ready_is_503_with_the_reason_when_the_store_cannot_be_used(
    tmp_path: Path,
) -> None:
    app: Starlette = create_app(ServerConfig(database=tmp_path / "kit.db"))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://kit") as http,
    ):
        assert (await http.get("/ready")).status_code == 200
        app.state.context.store.close()  # the store goes away under a running server
        down = await http.get("/ready")
        assert down.status_code == 503
        assert down.json()["status"] == "unavailable" and "not open" in down.json()["store"]
        assert (await http.get("/health")).status_code == 200  # alive all the same
        app.state.context.store.open()
        assert (await http.get("/ready")).status_code == 200
        app.state.streams.drain()  # what SIGINT / SIGTERM does: the balancer stops sending work
        draining = await http.get("/ready")
        assert (draining.status_code, draining.json()["status"]) == (503, "draining")


# -- the banner and the port --------------------------------------------------------------------


def test_a_busy_port_is_one_line_and_exit_2_before_any_banner(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_kit(["serve", "--port", str(port), "--db", ":memory:"], tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""  # no banner
    assert done.stderr == f"Error: port {port} is in use (another kit serve?); pass --port\n"


def _exports(banner: str) -> list[str]:
    return [line.strip() for line in banner.splitlines() if line.strip().startswith("export ")]


SDK_CHECK = """
import dashscope, openai
created = openai.OpenAI().beta.assistants.create(model="qwen-max", name="pasted")
print("openai", created.id)
listed = dashscope.Assistants.list()
print("dashscope", listed.status_code, len(listed.data))
"""


def test_the_banners_export_lines_work_pasted_into_a_shell(tmp_path: Path) -> None:
    scripted_project(tmp_path)
    with KitServe(tmp_path, pass_key=False, key="anything") as server:
        time.sleep(0.2)
        exports = _exports(server.output())
        assert len(exports) == 2
        script = "; ".join(exports) + f"; {shlex.quote(sys.executable)} -c {shlex.quote(SDK_CHECK)}"
        done = subprocess.run(
            ["bash", "-c", script],
            env=child_env(),  # no key, no base URL of its own: only what was pasted
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^openai asst_\S+$", done.stdout, re.M)
    assert "dashscope 200 1" in done.stdout


def test_with_a_key_from_the_environment_the_banner_names_the_variable_not_the_key(
    tmp_path: Path,
) -> None:
    key = "sentinel-banner-key-8f2e"
    with KitServe(tmp_path, key=key, pass_key=False, env={"KIT_SERVER_API_KEYS": key}) as server:
        time.sleep(0.2)
        output = server.output()
        exports = _exports(output)
        script = "; ".join(exports) + '; echo "$OPENAI_API_KEY $DASHSCOPE_API_KEY"'
        done = subprocess.run(
            ["bash", "-c", script],
            env=child_env({"KIT_SERVER_API_KEYS": key}),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert key not in output
    assert done.stdout.split() == [key, key]


# -- TLS ------------------------------------------------------------------------------------------


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_flags_serve_https_with_the_given_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = free_port("127.0.0.1")
    args = ["serve", "--port", str(port), "--db", ":memory:"]
    args += ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    process = subprocess.Popen(
        [sys.executable, "-m", "assistant_kit", *args],
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with httpx.Client(verify=str(cert), trust_env=False, timeout=2) as https:
            answer = _poll(lambda: https.get(f"https://127.0.0.1:{port}/health"))
            assert answer.json() == {"status": "ok"}
            listed = https.get(
                f"https://127.0.0.1:{port}/v1/assistants", headers={"Authorization": "Bearer x"}
            )
            assert listed.status_code == 200
        with httpx.Client(trust_env=False, timeout=2) as plain, pytest.raises(httpx.HTTPError):
            plain.get(f"http://127.0.0.1:{port}/health")  # no plain HTTP on a TLS port
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert f"https://127.0.0.1:{port}/v1" in out
    assert process.returncode == 0 and "Traceback" not in err


def test_a_key_that_does_not_match_the_certificate_is_a_clear_error(tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, wrong_key = _self_signed(other)
    done = run_kit(
        ["serve", "--db", ":memory:", "--ssl-certfile", str(cert), "--ssl-keyfile", str(wrong_key)],
        tmp_path,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"Error: cannot use the TLS certificate {cert} with the key ")
    assert "Traceback" not in done.stderr


def _poll(get: object, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return get()  # type: ignore[operator,no-any-return]
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# -- streams: keep-alive, draining ----------------------------------------------------------------


def _start_stream(server: KitServe, lines: list[str], headers: dict[str, str]) -> threading.Thread:
    with httpx.Client(trust_env=False) as http:
        assistant = http.post(
            server.url("/v1/assistants"), headers=server.auth, json={"model": "qwen-max"}
        ).json()["id"]

    def read() -> None:
        body = {
            "assistant_id": assistant,
            "stream": True,
            "thread": {"messages": [{"role": "user", "content": "think hard"}]},
        }
        with (
            httpx.Client(trust_env=False, timeout=60) as http,
            http.stream(
                "POST", server.url("/v1/threads/runs"), headers=server.auth, json=body
            ) as response,
        ):
            headers.update(response.headers)
            lines.extend(response.iter_lines())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


def _wait_for(predicate: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_quiet_stream_gets_keep_alive_comments_and_ends_with_a_final_event_on_sigint(
    tmp_path: Path,
) -> None:
    scripted_project(tmp_path, delay_ms=30_000)  # the model thinks longer than the test waits
    server = KitServe(tmp_path, args=["--keepalive", "0.3", "--grace", "1"]).start()
    lines: list[str] = []
    headers: dict[str, str] = {}
    reader = _start_stream(server, lines, headers)
    _wait_for(lambda: lines.count(": keep-alive") >= 2)
    assert headers["x-accel-buffering"] == "no"
    assert "event: thread.run.in_progress" in lines
    assert server.stop(signal.SIGINT) == 0  # the grace (1 s) ends it, not the model (30 s)
    reader.join(10)
    assert not reader.is_alive()
    events = [line for line in lines if line.startswith(("event:", "data:"))]
    assert events[-2:] == ["event: done", "data: [DONE]"]
    assert events[-4] == "event: error"
    message = json.loads(events[-3].removeprefix("data: "))["error"]["message"]
    assert message.startswith("The server is shutting down; the run is kept")
    output = server.output()
    assert "Draining: requests and 1 open stream(s) get up to 1 s to finish" in output
    assert output.rstrip().endswith("Stopped.") and "Traceback" not in output


def test_a_run_that_finishes_within_the_grace_period_streams_to_its_normal_end(
    tmp_path: Path,
) -> None:
    scripted_project(tmp_path, delay_ms=1500)
    server = KitServe(tmp_path, args=["--grace", "20"]).start()
    lines: list[str] = []
    reader = _start_stream(server, lines, {})
    _wait_for(lambda: "event: thread.run.in_progress" in lines)
    assert server.stop(signal.SIGTERM) == 0
    reader.join(10)
    events = [line for line in lines if line.startswith("event:")]
    assert events[-2:] == ["event: thread.run.completed", "event: done"]
    assert "event: error" not in events
    assert "Traceback" not in server.output()


def test_a_client_that_leaves_a_kept_alive_stream_stops_only_its_reader(tmp_path: Path) -> None:
    scripted_project(tmp_path, delay_ms=1500)
    with (
        KitServe(tmp_path, args=["--keepalive", "0.2"]) as server,
        httpx.Client(trust_env=False, timeout=30) as http,
    ):
        assistant = http.post(
            server.url("/v1/assistants"), headers=server.auth, json={"model": "qwen-max"}
        ).json()["id"]
        body = {
            "assistant_id": assistant,
            "stream": True,
            "thread": {"messages": [{"role": "user", "content": "think"}]},
        }
        seen: list[str] = []
        with http.stream(
            "POST", server.url("/v1/threads/runs"), headers=server.auth, json=body
        ) as response:
            for line in response.iter_lines():
                seen.append(line)
                if line.startswith("data:") and '"thread.run"' in line:
                    run = json.loads(line.removeprefix("data: "))
                if line == ": keep-alive":
                    break  # hang up while the model is thinking
        path = f"/v1/threads/{run['thread_id']}/runs/{run['id']}"
        _wait_for(
            lambda: http.get(server.url(path), headers=server.auth).json()["status"] == "completed"
        )
        assert http.get(server.url("/ready")).status_code == 200
        time.sleep(0.3)
    assert "Traceback" not in server.output() and "ERROR" not in server.output()


def test_two_ctrl_c_stop_at_once_without_a_traceback(tmp_path: Path) -> None:
    scripted_project(tmp_path, delay_ms=30_000)
    server = KitServe(tmp_path).start()
    lines: list[str] = []
    reader = _start_stream(server, lines, {})
    _wait_for(lambda: "event: thread.run.in_progress" in lines)
    assert server.process is not None
    server.process.send_signal(signal.SIGINT)
    time.sleep(0.05)
    assert server.stop(signal.SIGINT) == 0
    reader.join(10)
    assert not reader.is_alive()
    events = [line for line in lines if line.startswith("event:")]
    assert events[-2:] == ["event: error", "event: done"]  # a clean end, even when forced
    output = server.output()
    assert "Stopping now." in output and "Traceback" not in output


# -- the deployment examples ----------------------------------------------------------------------


def _unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((DEPLOY / "kit-serve.service").read_text(encoding="utf-8"))
    return unit


def _unit_serve_args() -> list[str]:
    argv = shlex.split(_unit()["Service"]["ExecStart"])
    assert argv[0].endswith("/kit") and argv[1] == "serve"
    return argv[2:]


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_the_systemd_unit_parses_and_its_kit_serve_options_are_real() -> None:
    unit = _unit()
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    args = _unit_serve_args()
    # under kit's own context (its -h/--help), as `kit serve ...` parses it; a wrong option fails
    root = cli.make_context("kit", ["serve", *args])
    context = serve.make_context("serve", list(args), parent=root)
    assert context.params["root_path"] == "/kit" and context.params["host"] == "127.0.0.1"
    # systemd waits longer than the drain's grace before it kills
    assert float(service["TimeoutStopSec"]) > context.params["grace_s"]
    assert service["KillSignal"] in ("SIGTERM", "SIGINT")
    assert "KIT_SERVER_API_KEYS" not in service["ExecStart"]  # keys stay out of `ps`
    if subprocess.run(["which", "systemd-analyze"], capture_output=True).returncode == 0:
        done = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(DEPLOY / "kit-serve.service")],
            capture_output=True,
            text=True,
        )
        # only the paths and the user of a real host may be missing here, never the syntax
        for line in done.stderr.splitlines():
            assert re.search(r"not found|No such file|does not exist|Failed to|user", line), line


def _nginx_location() -> tuple[str, dict[str, str], dict[str, str]]:
    """The nginx example's location prefix, its proxy_set_header lines and other directives."""
    text = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert code.count("{") == code.count("}")
    found = re.search(r"location\s+(\S+)\s*\{([^}]*)\}", code)
    assert found is not None
    headers: dict[str, str] = {}
    directives: dict[str, str] = {}
    for statement in found.group(2).split(";"):
        words = shlex.split(statement)
        if not words:
            continue
        if words[0] == "proxy_set_header":
            headers[words[1]] = words[2] if len(words) > 2 else ""
        else:
            directives[words[0]] = " ".join(words[1:])
    return found.group(1), headers, directives


def test_the_nginx_example_matches_the_unit_and_what_it_forwards_reaches_kit_serve(
    tmp_path: Path,
) -> None:
    prefix, set_headers, directives = _nginx_location()
    args = _unit_serve_args()
    root_path = _option(args, "--root-path")
    assert prefix == root_path + "/"
    assert directives["proxy_pass"].endswith("/")  # strips the prefix, as --root-path expects
    assert directives["proxy_buffering"] == "off"
    assert int(directives["proxy_read_timeout"].rstrip("s")) > 15  # outlasts the keep-alive
    upstream = re.search(r"server\s+(\S+);", (DEPLOY / "nginx.conf").read_text())
    assert upstream is not None and upstream.group(1) == f"127.0.0.1:{_option(args, '--port')}"
    # nginx's variables as they are for a client at 203.0.113.9 asking https://assistants.test
    values = {
        "$host": "assistants.test",
        "$proxy_add_x_forwarded_for": "203.0.113.9",
        "$scheme": "https",
    }
    forwarded = {name: values.get(value, value) for name, value in set_headers.items() if value}
    assert forwarded["X-Forwarded-Proto"] == "https"
    with KitServe(tmp_path, args=["--root-path", root_path, "-v"]) as server:
        with httpx.Client(trust_env=False) as http:
            # the path nginx sends on: https://assistants.test/kit/v1/assistants minus /kit
            listed = http.get(server.url("/v1/assistants"), headers={**server.auth, **forwarded})
            assert listed.status_code == 200, listed.text
            assert http.get(server.url("/health"), headers=forwarded).status_code == 200
        time.sleep(0.3)
        log = server.output()
    # uvicorn trusts the loopback proxy: the client is the one nginx named, the path has the prefix
    assert re.search(r'203\.0\.113\.9:\d+ - "GET /kit/v1/assistants HTTP/1\.1" 200', log), log


def test_the_readme_shows_the_deployment_examples_as_they_are() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in ("kit-serve.service", "nginx.conf"):
        body = (DEPLOY / name).read_text(encoding="utf-8")
        assert f"examples/deploy/{name}" in readme
        # the README quotes the working part of each file
        code = [ln for ln in body.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        assert all(line in readme for line in code), name


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
