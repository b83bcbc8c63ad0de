"""`kit chat`: talk to an assistant in the terminal, the quickest way to see what a spec does.

Each line typed is a user message on one thread; the reply streams as the target sends it, tool
calls show as ``[tool] get_order({"id": 42}) -> {"status": "shipped"}``. Function calls are
answered from a test's mocks (``--mocks TEST``) or by the user, who types the output.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import IO, Any

import click
import httpx

from assistant_kit.api.asgi_stream import StreamingASGITransport
from assistant_kit.api.base import AssistantClient
from assistant_kit.api.runs import RemoteRun, RemoteRunStep, StreamEvent, ToolOutput
from assistant_kit.api.turn import TurnDriver
from assistant_kit.catalog import KIT_TEST
from assistant_kit.cli import ExitCode
from assistant_kit.cli.output import error_text
from assistant_kit.errors import ConfigError, KitError
from assistant_kit.spec.model import AssistantSpec, Dialect
from assistant_kit.spec.project import Project, load_project
from assistant_kit.sync.apply import spec_params
from assistant_kit.sync.diff import managed_name
from assistant_kit.testing.mocks import MockAnswer, MockSession, mocks_from_spec
from assistant_kit.testing.records import call_signature

#: Words that end the conversation.
QUIT = frozenset({"/quit", "/exit"})
#: Tool outputs longer than this are shortened on screen (the model gets them whole).
SHOWN_OUTPUT = 300


@click.command()
@click.argument("name")
@click.option(
    "--target",
    "-t",
    metavar="NAME",
    help="Target named in kit.yaml (default: kit.yaml's default_target).",
)
@click.option(
    "--ephemeral",
    is_flag=True,
    help="Talk to a temporary assistant made from the spec (deleted at the end), not the "
    "applied one.",
)
@click.option(
    "--mocks",
    "mocks_test",
    metavar="TEST",
    help="Answer function calls from the mocks of this test of the spec (otherwise you type "
    "each output).",
)
def chat(name: str, target: str | None, ephemeral: bool, mocks_test: str | None) -> None:
    """Talk to the assistant NAME in the terminal: type a message, read the streamed reply.

    The assistant is the one `kit apply` put on the target (found by its kit_name mark), or with
    --ephemeral a temporary one made from the spec. Tool calls are shown as they happen; a
    function call is answered from the mocks of a test (--mocks TEST) or by you. /quit or
    Ctrl-D ends the conversation.

    \b
    Examples:
      kit chat art-maestro                      the applied assistant on the default target
      kit chat order-desk --ephemeral --mocks "looks up an order"
      kit chat art-maestro --target serve       through a running `kit serve`
    """
    try:
        project = load_project((), target)
        spec = project.spec(name)
        mocks = _mocks(spec, mocks_test)
        asyncio.run(_chat(project, spec, ephemeral=ephemeral, mocks=mocks, stdin=sys.stdin))
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise click.exceptions.Exit(ExitCode.USAGE) from None
    except KitError as exc:
        click.echo(error_text(exc), err=True)
        raise click.exceptions.Exit(ExitCode.FAILED) from None
    except KeyboardInterrupt:
        click.echo("\nInterrupted.", err=True)
        raise click.exceptions.Exit(130) from None


def _mocks(spec: AssistantSpec, test_name: str | None) -> MockSession | None:
    if test_name is None:
        return None
    try:
        case = spec.test(test_name)
    except KeyError:
        names = ", ".join(f'"{t.name}"' for t in spec.tests) or "none"
        raise ConfigError(
            f'assistant `{spec.name}` has no test "{test_name}" (its tests: {names})'
        ) from None
    return MockSession(mocks_from_spec(case.mocks))


@contextlib.asynccontextmanager
async def _client(project: Project) -> AsyncIterator[AssistantClient]:
    """A client on the project's target. The embedded server's responses stream, so a reply
    shows as it is written (``httpx.ASGITransport`` would deliver it whole)."""
    from assistant_kit.connect import open_target

    def streaming(inner: httpx.AsyncBaseTransport | None) -> httpx.AsyncBaseTransport:
        if isinstance(inner, httpx.ASGITransport):
            return StreamingASGITransport(inner.app)
        assert inner is not None  # only replay (which chat never asks for) has no transport
        return inner

    async with open_target(project, wrap=streaming, timeout=600.0) as client:
        yield client


async def _chat(
    project: Project,
    spec: AssistantSpec,
    *,
    ephemeral: bool,
    mocks: MockSession | None,
    stdin: IO[str],
) -> None:
    target = project.target
    async with _client(project) as client:
        created: str | None = None
        try:
            if ephemeral:
                assistant_id = created = await _create(client, spec, target.dialect)
                how = "a temporary assistant from the spec"
            else:
                assistant_id = await _applied(client, spec, target.name)
                how = "applied"
            click.echo(
                f"Chatting with {spec.api_name} ({spec.name}, {how}, {assistant_id}) on target "
                f"`{target.name}`. Type /quit or press Ctrl-D to end."
            )
            conversation = _Conversation(client, assistant_id, spec.name, mocks, stdin)
            await conversation.loop()
        finally:
            if created is not None:
                with contextlib.suppress(KitError):
                    await client.delete_assistant(created)


async def _applied(client: AssistantClient, spec: AssistantSpec, target: str) -> str:
    remotes = await client.list_all_assistants()
    found = [a for a in remotes if managed_name(a) == spec.name]
    if not found:
        raise KitError(
            f"assistant `{spec.name}` is not applied on target `{target}`; run `kit apply` "
            f"first, or `kit chat {spec.name} --ephemeral` to talk to the spec as it is"
        )
    if len(found) > 1:
        ids = ", ".join(a.id for a in found)
        raise KitError(
            f"assistant `{spec.name}` is applied more than once on target `{target}` ({ids}); "
            "run `kit plan` to see them and keep one"
        )
    return found[0].id


async def _create(client: AssistantClient, spec: AssistantSpec, dialect: Dialect) -> str:
    # plug-in tokens come from the environment, as for `kit apply` and `kit test --ephemeral`
    params = spec_params(spec, dialect, marks={KIT_TEST: f"chat:{spec.name}"})
    return (await client.create_assistant(params)).id


def _short(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= SHOWN_OUTPUT else text[: SHOWN_OUTPUT - 3] + "..."


def _args(raw: str) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@dataclass
class _Conversation:
    client: AssistantClient
    assistant_id: str
    name: str
    mocks: MockSession | None
    stdin: IO[str]
    turn: int = 0
    _shown: set[str] = field(default_factory=set)
    _writing: bool = False
    driver: TurnDriver = field(init=False)

    def __post_init__(self) -> None:
        self.driver = TurnDriver(self.client, self.assistant_id, answer=self._answer, see=self._see)

    async def loop(self) -> None:
        while True:
            line = await self._read("you> ")
            if line is None:
                click.echo()
                return
            text = line.strip()
            if not text:
                continue
            if text in QUIT:
                return
            await self._turn(text)
            self.turn += 1

    async def _read(self, prompt: str) -> str | None:
        """One line from stdin (``None`` at its end)."""
        click.echo(prompt, nl=False)
        return await _read_line(self.stdin) or None

    async def _turn(self, text: str) -> None:
        try:
            turn = await self.driver.send(text)
        except KitError as exc:
            self._end_line()
            click.echo(error_text(exc), err=True)
            return
        self._end_line()
        run = turn.run
        if turn.declined:
            click.echo("(run cancelled)", err=True)
        elif turn.problem is not None:
            click.echo(f"Error: {turn.problem}", err=True)
        elif run is not None and run.status == "incomplete":
            reason = (run.incomplete_details or {}).get("reason") or "unknown"
            click.echo(f"(the reply was cut short: {reason})", err=True)

    def _see(self, event: StreamEvent) -> None:
        """Print the stream as it arrives."""
        if event.event == "thread.message.delta":
            self._write(event.text)
        elif event.event == "thread.message.completed":
            self._end_line()
        elif event.event == "thread.run.step.completed" and isinstance(event.object, RemoteRunStep):
            self._show_builtin(event.object)

    def _write(self, text: str) -> None:
        if not text:
            return
        if not self._writing:
            click.echo(f"{self.name}> ", nl=False)
            self._writing = True
        click.echo(text, nl=False)

    def _end_line(self) -> None:
        if self._writing:
            click.echo()
            self._writing = False

    def _show_builtin(self, step: RemoteRunStep) -> None:
        for call in step.tool_calls:
            if call.id in self._shown or call.output is None:
                continue  # shown already, or a function call still waiting for its output
            self._shown.add(call.id)
            self._end_line()
            signature = call_signature(call.name, _args(call.arguments))
            click.echo(f"[tool] {signature} -> {_short(str(call.output))}")

    async def _answer(self, run: RemoteRun) -> list[ToolOutput] | None:
        """Outputs for every pending call (``None`` when the user ended the conversation)."""
        self._end_line()
        outputs = []
        for call in run.required_tool_calls:
            signature = call_signature(call.name, call.args)
            self._shown.add(call.id)
            found = self.mocks.resolve(call.name, call.args, turn=self.turn) if self.mocks else None
            if isinstance(found, MockAnswer):
                output = found.output
            else:
                if found is not None:
                    click.echo(f"(no mock answers: {found.message})", err=True)
                click.echo(f"[tool] {signature} needs an output (JSON or text):")
                typed = await self._read(f"{call.name}> ")
                if typed is None:
                    return None
                output = typed.rstrip("\n")
            click.echo(f"[tool] {signature} -> {_short(output)}")
            outputs.append(ToolOutput(call.id, output))
        return outputs


async def _read_line(stream: IO[str]) -> str:
    """``stream.readline()`` on a daemon thread, so the event loop (the embedded server's runs,
    Ctrl-C) goes on while the user types, and an abandoned read never holds up the exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def settle(line: str | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(line or "")

    def read() -> None:
        line: str | None = None
        error: Exception | None = None
        try:
            line = stream.readline()
        except Exception as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed while the user was typing
            loop.call_soon_threadsafe(settle, line, error)

    threading.Thread(target=read, name="kit-chat-stdin", daemon=True).start()
    return await future
