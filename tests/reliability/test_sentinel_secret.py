"""A sentinel secret in the environment never shows up in output, logs, files or stored rows.

The sentinel is the value of every variable a project names as a key: the targets'
``api_key_env``, the model backends' ``api_key_env`` and ``KIT_SERVER_API_KEYS``. Every ``kit``
command that exists is run over that project; then its stdout, its stderr and every byte of
every file under the project (the SQLite store and its WAL included) are searched for it.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kit_processes import KitServe, run_kit
from kit_projects import wait_runs

from assistant_kit.cli import COMMANDS, _available

SENTINEL = "kit-sentinel-" + uuid.uuid4().hex
ENV = {
    "KIT_SERVER_API_KEYS": SENTINEL,
    "SENTINEL_TARGET_KEY": SENTINEL,
    "SENTINEL_MODEL_KEY": SENTINEL,
    "OPENAI_API_KEY": SENTINEL,
    "DASHSCOPE_API_KEY": SENTINEL,
}
REPO = Path(__file__).resolve().parents[2]

KIT_YAML = """\
specs: assistants
partials: assistants/partials
vars:
  company: Acme
default_target: local
targets:
  local: {provider: local}
  remote:
    provider: openai
    base_url: http://127.0.0.1:PORT/v1
    api_key_env: SENTINEL_TARGET_KEY
  cloud:
    provider: dashscope
    base_url: http://127.0.0.1:PORT/api/v1
    api_key_env: DASHSCOPE_API_KEY
server:
  models:
    default: {backend: scripted, delay_ms: 0}
    upstream: {backend: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: SENTINEL_MODEL_KEY}
test:
  target: local
  timeout_s: 10
"""


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitServe]:
    """A `kit serve` whose only key is the sentinel: the targets `remote` and `cloud`."""
    folder = tmp_path_factory.mktemp("remote")
    (folder / "kit.yaml").write_text(
        "server:\n  models:\n    default: {backend: scripted, delay_ms: 0}\n", encoding="utf-8"
    )
    server = KitServe(folder, key=SENTINEL, pass_key=False, env=ENV, args=["--log-level", "info"])
    with server:
        yield server
    assert SENTINEL not in server.output()
    assert list(leaks(folder)) == []


@pytest.fixture
def project(tmp_path: Path, remote: KitServe) -> Path:
    """The example assistants under a kit.yaml whose every key is the sentinel."""
    shutil.copytree(REPO / "assistants", tmp_path / "assistants")
    kit = KIT_YAML.replace("PORT", str(remote.port))
    (tmp_path / "kit.yaml").write_text(kit, encoding="utf-8")
    return tmp_path


def leaks(root: Path) -> Iterator[str]:
    """Files under ``root`` that hold the sentinel (as UTF-8 or as UTF-16)."""
    needles = (SENTINEL.encode(), SENTINEL.encode("utf-16-le"))
    for path in root.rglob("*"):
        if path.is_file() and any(n in path.read_bytes() for n in needles):
            yield str(path.relative_to(root))


#: command -> argument lists to run it with (each over the project, sentinel in the env).
INVOCATIONS: dict[str, list[list[str]]] = {
    "validate": [["validate"], ["validate", "--json", "-"], ["validate", "-t", "remote"]],
    "render": [
        ["render", "order-desk", "-t", "remote"],
        ["render", "order-desk", "-t", "cloud", "--dialect", "dashscope"],
        ["render", "art-maestro", "--digest"],
        ["render", "no-such-assistant"],
    ],
    "init": [["init", "fresh"]],
    "plan": [
        ["plan"],
        ["plan", "--target", "remote"],
        ["plan", "--target", "cloud", "--json", "-"],
    ],
    "apply": [
        ["apply", "--yes"],
        ["apply", "--yes", "--target", "remote"],
        ["apply", "--yes", "--target", "cloud"],
    ],
    "import": [["import", "--all", "--target", "remote"]],
    "destroy": [["destroy", "--yes", "--target", "remote"]],
    "test": [
        ["test", "--ephemeral", "--junit", "out/junit.xml", "--json", "out/report.json"],
        ["test", "--ephemeral", "--html", "out/report.html", "--record", "cassettes"],
        ["test", "--ephemeral", "--replay", "cassettes", "--json", "out/replayed.json"],
        ["test", "--target", "remote", "--ephemeral", "--record", "remote-cassettes"],
        ["test", "--target", "cloud", "--ephemeral", "--json", "out/cloud.json"],
    ],
    "chat": [
        ["chat", "order-desk", "--ephemeral", "--mocks", "looks up an order"],
        ["chat", "order-desk", "--ephemeral", "--target", "remote"],
    ],
}
#: What `kit chat` is told on stdin.
CHAT_INPUT = "Where is order 42?\n/quit\n"


def test_every_command_is_scanned() -> None:
    # `kit serve` has its own test below; a command left out here would escape the scan
    assert set(INVOCATIONS) | {"serve"} == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(INVOCATIONS))
def test_no_command_prints_or_writes_the_secret(project: Path, command: str) -> None:
    assert _available(command), f"`kit {command}` cannot be imported"
    for args in INVOCATIONS[command]:
        stdin = CHAT_INPUT if command == "chat" else None
        result = run_kit(args, project, ENV, timeout=120, input=stdin)
        # conversation tests may fail on a scripted model: 1 is a verdict, not a crash
        expected = (
            {2} if args == ["render", "no-such-assistant"] else {0, 1} if command == "test" else {0}
        )
        assert result.returncode in expected, (args, result.stdout[-500:], result.stderr[-500:])
        assert "Traceback" not in result.stderr, (args, result.stderr)
        assert SENTINEL not in result.stdout, args
        assert SENTINEL not in result.stderr, args
        assert list(leaks(project)) == [], args


@pytest.mark.slow
def test_kit_serve_keeps_the_secret_out_of_logs_replies_and_the_store(project: Path) -> None:
    env = {**ENV}
    with KitServe(
        project, key=SENTINEL, pass_key=False, env=env, args=["--log-level", "debug"]
    ) as server:
        good = server.auth
        with httpx.Client(trust_env=False, timeout=10) as http:
            replies = []
            for prefix in ("/v1", "/api/v1"):
                url = server.url(prefix)
                assistant = http.post(f"{url}/assistants", json={"model": "m"}, headers=good)
                thread = http.post(
                    f"{url}/threads", json={"messages": [{"content": "hi"}]}, headers=good
                )
                replies += [assistant, thread]
                replies.append(http.get(f"{url}/assistants", headers=good))
                replies.append(http.get(f"{url}/threads/{thread.json()['id']}", headers=good))
                replies.append(http.get(f"{url}/assistants/asst_nope", headers=good))
                replies.append(
                    http.post(
                        f"{url}/assistants",
                        content=b"{",
                        headers={**good, "Content-Type": "application/json"},
                    )
                )
                wrong = {"Authorization": f"Bearer {SENTINEL}x"}
                replies.append(http.get(f"{url}/assistants", headers=wrong))
                prefix_key = {"Authorization": f"Bearer {SENTINEL[:-1]}"}
                replies.append(http.get(f"{url}/assistants", headers=prefix_key))
                # a run on the model whose key is the sentinel (its endpoint refuses): the
                # failure is reported without the key, in the run, its stream and its steps
                http.headers.update(good)
                upstream = http.post(f"{url}/assistants", json={"model": "upstream"}).json()
                body = {"assistant_id": upstream["id"], "thread": {"messages": [{"content": "hi"}]}}
                streamed = http.post(f"{url}/threads/runs", json={**body, "stream": True})
                assert "failed" in streamed.text
                run = http.post(f"{url}/threads/runs", json=body).json()
                final = wait_runs(http, server.url(""), {run["id"]: run["thread_id"]}, limit=30)
                assert final[run["id"]]["last_error"]["message"]
                one_run = f"{url}/threads/{run['thread_id']}/runs/{run['id']}"
                replies += [streamed, http.get(one_run), http.get(f"{one_run}/steps")]
                del http.headers["Authorization"]
            for reply in replies:
                assert SENTINEL not in reply.text
                assert all(SENTINEL not in v for v in reply.headers.values())
        assert server.stop() == 0
    output = server.output()
    assert "Stopped." in output and SENTINEL not in output
    assert list(leaks(project)) == []


def test_the_scan_finds_a_planted_secret(project: Path) -> None:
    """The search itself works: a secret in a nested file, in either encoding, is found."""
    (project / ".kit").mkdir()
    (project / ".kit" / "a.db").write_bytes(b"\x00row:" + SENTINEL.encode() + b"\x00")
    (project / "b.log").write_bytes(SENTINEL.encode("utf-16-le"))
    assert sorted(leaks(project)) == [".kit/a.db", "b.log"]
