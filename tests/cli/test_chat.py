"""`kit chat` against the embedded target, its models routed to the scripted backend."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant_kit import connect as targets
from assistant_kit.cli import ExitCode, cli
from assistant_kit.spec.project import load_project

KIT = """\
targets:
  local: {provider: local, dialect: DIALECT}
server:
  models:
    default: {backend: scripted, script: script.yaml}
"""

SCRIPT = """\
rules:
  - user: "(?i)order (\\\\d+)"
    tool_calls:
      - {name: get_order, arguments: '{"id": {1}}'}
  - after_tool: get_order
    reply: "Order status: {output}"
  - user: "(?i)hello"
    reply: "Hello from the script! How can I help?"
"""

SPEC = """\
name: order-desk
display_name: Order Desk
model: qwen-plus
instructions: You answer questions about orders.
tools:
  - type: function
    name: get_order
    description: Look up an order.
    parameters: {type: object, properties: {id: {type: integer}}, required: [id]}
tests:
  - name: looks up an order
    mocks:
      get_order:
        when:
          - {args: {id: 42}, returns: {status: shipped}}
    turns:
      - user: Where is order 42?
        expect: [{icontains: shipped}]
"""


@pytest.fixture(params=["openai", "dashscope"])
def project(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    (tmp_path / "kit.yaml").write_text(KIT.replace("DIALECT", request.param), encoding="utf-8")
    (tmp_path / "script.yaml").write_text(SCRIPT, encoding="utf-8")
    (tmp_path / "assistants").mkdir()
    (tmp_path / "assistants" / "order-desk.yaml").write_text(SPEC, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def kit_chat(*args: str, input: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["chat", *args], input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def remote_marks(project: Path) -> list[dict[str, str]]:
    async def listing() -> list[dict[str, str]]:
        async with targets.open_target(load_project(cwd=project)) as client:
            return [dict(a.metadata) for a in await client.list_all_assistants()]

    return asyncio.run(listing())


def test_ephemeral_chat_streams_replies_answers_calls_from_mocks_and_cleans_up(
    project: Path,
) -> None:
    code, out, err = kit_chat(
        "order-desk",
        "--ephemeral",
        "--mocks",
        "looks up an order",
        input="hello\nWhere is order 42?\n/quit\nnever read\n",
    )
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("Chatting with Order Desk (order-desk, a temporary assistant")
    assert "you> order-desk> Hello from the script! How can I help?" in lines
    # stdin is not a terminal here, so what is typed is not echoed after the prompts
    assert 'you> [tool] get_order({"id": 42}) -> {"status": "shipped"}' in lines
    assert 'order-desk> Order status: {"status": "shipped"}' in lines
    assert lines[-1] == "you> "
    assert "never read" not in out
    assert remote_marks(project) == []  # the temporary assistant is gone


def test_without_mocks_the_user_types_the_tool_output(project: Path) -> None:
    code, out, err = kit_chat(
        "order-desk", "--ephemeral", input='order 7 please\n{"status": "lost"}\n'
    )
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert 'you> [tool] get_order({"id": 7}) needs an output (JSON or text):' in lines
    assert 'get_order> [tool] get_order({"id": 7}) -> {"status": "lost"}' in lines
    assert 'order-desk> Order status: {"status": "lost"}' in lines
    assert lines[-1] == "you> "  # EOF ends the conversation


def test_a_call_no_mock_answers_asks_the_user(project: Path) -> None:
    code, out, err = kit_chat(
        "order-desk", "--ephemeral", "--mocks", "looks up an order", input="order 9\nmissing\n"
    )
    assert code == 0
    assert "no mock case matches" in err
    assert '[tool] get_order({"id": 9}) -> missing' in out
    assert "order-desk> Order status: missing" in out


def test_chat_talks_to_the_applied_assistant(project: Path) -> None:
    result = CliRunner().invoke(cli, ["apply", "--yes"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    code, out, err = kit_chat("order-desk", input="hello\n")
    assert (code, err) == (0, "")
    assert "(order-desk, applied, " in out.splitlines()[0]
    assert "order-desk> Hello from the script! How can I help?" in out
    assert [m.get("kit_name") for m in remote_marks(project)] == ["order-desk"]


def test_not_applied_says_how_to_fix_without_a_traceback(project: Path) -> None:
    code, out, err = kit_chat("order-desk", input="hello\n")
    assert code == ExitCode.FAILED
    assert err == (
        "Error: assistant `order-desk` is not applied on target `local`; run `kit apply` first, "
        "or `kit chat order-desk --ephemeral` to talk to the spec as it is\n"
    )
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["order-dsk"], "no assistant named `order-dsk`", id="unknown-assistant"),
        pytest.param(
            ["order-desk", "--mocks", "nope"],
            'assistant `order-desk` has no test "nope" (its tests: "looks up an order")',
            id="unknown-test",
        ),
        pytest.param(["order-desk", "--target", "nowhere"], "nowhere", id="unknown-target"),
    ],
)
def test_bad_usage_exits_2_with_a_message(project: Path, args: list[str], message: str) -> None:
    code, _, err = kit_chat(*args, input="")
    assert code == ExitCode.USAGE
    assert err.startswith("Error: ") and message in err


def test_an_ephemeral_chat_reads_plugin_tokens_from_the_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = project / "assistants" / "order-desk.yaml"
    spec.write_text(
        SPEC.replace("tools:\n", "tools:\n  - {type: plugin, id: weather, auth: {env: W_TOKEN}}\n"),
        encoding="utf-8",
    )
    code, _, err = kit_chat("order-desk", "--ephemeral", input="hello\n")
    assert code == ExitCode.USAGE  # not an assistant holding the text ${W_TOKEN}
    assert err.startswith("Error: plug-in `weather` needs its token") and "W_TOKEN" in err
    monkeypatch.setenv("W_TOKEN", "secret-token-value")
    code, out, err = kit_chat("order-desk", "--ephemeral", input="hello\n")
    assert (code, err) == (0, "")
    assert "Hello from the script!" in out and "secret-token-value" not in out


def test_a_target_that_is_down_is_named_without_a_traceback(project: Path) -> None:
    (project / "kit.yaml").write_text(
        "targets:\n  down: {provider: local, base_url: 'http://127.0.0.1:9/v1'}\n",
        encoding="utf-8",
    )
    code, out, err = kit_chat("order-desk", "--target", "down", input="hello\n")
    assert code == ExitCode.FAILED
    assert err.startswith("Error: cannot reach http://127.0.0.1:9: ") and "ConnectError" in err
    assert "Traceback" not in out + err


def test_an_unroutable_model_fails_the_turn_with_last_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "kit.yaml").write_text(
        "server:\n  models:\n    only-this: {backend: scripted}\n", encoding="utf-8"
    )
    (tmp_path / "assistants").mkdir()
    (tmp_path / "assistants" / "order-desk.yaml").write_text(SPEC, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, out, err = kit_chat("order-desk", "--ephemeral", input="hello\n")
    assert code == 0
    assert "Error: the run failed:" in err and 'no backend for model "qwen-plus"' in err
    assert "Traceback" not in out + err


def test_slash_commands_are_the_chat_s_never_the_model_s(project: Path) -> None:
    code, out, err = kit_chat(
        "order-desk",
        "--ephemeral",
        input="/thread\nhello\n/thread\n/reset\n/thread\n/bogus\n//hello there\n/help\n/quit\n",
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[1] == "you> (no thread yet: the first message starts one)"
    assert lines[2] == "you> order-desk> Hello from the script! How can I help?"
    thread = lines[3].removeprefix("you> ")
    assert thread.startswith("thread_")
    assert lines[4] == (
        "you> New thread: the next message starts a new conversation (the last one, "
        f"{thread}, is kept: kit chat order-desk --thread {thread})."
    )
    assert lines[5] == "you> (no thread yet: the first message starts one)"
    assert err == "unknown command /bogus: /help lists them (//text sends /text)\n"
    # /bogus answered on stderr (stdout keeps its prompt); `//hello there` went to the model
    assert lines[6] == "you> you> order-desk> Hello from the script! How can I help?"
    assert "/reset           start a new thread" in out and lines[-1] == "you> "


def test_a_thread_is_resumed_with_thread(project: Path) -> None:
    assert CliRunner().invoke(cli, ["apply", "--yes"], catch_exceptions=False).exit_code == 0
    code, out, _ = kit_chat("order-desk", input="hello\n/thread\n")
    thread = out.splitlines()[-2].removeprefix("you> ")
    code, out, err = kit_chat("order-desk", "--thread", thread, input="/thread\nhello\n")
    assert (code, err) == (0, "")
    assert out.splitlines()[1] == f"you> {thread}"

    async def messages() -> list[str]:
        async with targets.open_target(load_project(cwd=project)) as client:
            return [m.role for m in await client.list_all_messages(thread)]

    assert asyncio.run(messages()) == ["user", "assistant", "user", "assistant"]
    code, _, err = kit_chat("order-desk", "--thread", "thread_nope", input="hello\n")
    assert code == ExitCode.FAILED and "thread_nope" in err and "Traceback" not in err
