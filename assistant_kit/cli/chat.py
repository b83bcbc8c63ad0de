"""`kit chat`: talk to an assistant in the terminal, the quickest way to see what a spec does.

Each line typed is a user message on one thread; the reply streams as the target sends it, tool
calls show as ``[tool] get_order({"id": 42}) -> {"status": "shipped"}``. Function calls are
answered from a test's mocks (``--mocks TEST``) or by the user, who types the output.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import select
import signal
import sys
import termios
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

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

T = TypeVar("T")

#: kit chat's line history, under the project's .kit/ folder.
HISTORY_FILE = ".kit/chat_history"
HISTORY_LENGTH = 1000
#: What /help prints.
HELP = """\
/help            this list
/reset           start a new thread (the next message begins a new conversation)
/thread          print the current thread's id (resume it with kit chat NAME --thread ID)
/quit, /exit     end (Ctrl-D too)
//text           send a message that starts with /
Ctrl-C cancels a reply and returns here; at this prompt it ends the chat."""


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
@click.option(
    "--thread",
    "thread_id",
    metavar="ID",
    help="Go on with this thread (`/thread` shows the current one's id).",
)
def chat(
    name: str,
    target: str | None,
    ephemeral: bool,
    mocks_test: str | None,
    thread_id: str | None,
) -> None:
    """Talk to the assistant NAME in the terminal: type a message, read the streamed reply.

    The assistant is the one `kit apply` put on the target (found by its kit_name mark), or with
    --ephemeral a temporary one made from the spec. Tool calls are shown as they happen; a
    function call is answered from the mocks of a test (--mocks TEST) or by you.

    \b
    Commands: /help, /reset (a new thread), /thread (its id), /quit (or Ctrl-D).
    Ctrl-C during a reply cancels the run and returns to the prompt; at the prompt it exits.
    On a terminal, lines can be edited and the history (arrow keys) is kept in .kit/.

    \b
    Examples:
      kit chat art-maestro                      the applied assistant on the default target
      kit chat order-desk --ephemeral --mocks "looks up an order"
      kit chat art-maestro --target serve       through a running `kit serve`
      kit chat art-maestro --thread thread_abc  go on with an earlier conversation
    """
    try:
        project = load_project((), target)
        spec = project.spec(name)
        mocks = _mocks(spec, mocks_test)
        session = ChatSession(project, spec, sys.stdin, thread_id)
        with session.terminal():
            asyncio.run(_chat(project, spec, ephemeral=ephemeral, mocks=mocks, session=session))
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
    session: ChatSession,
) -> None:
    target = project.target
    async with _client(project) as client:
        created: str | None = None
        try:
            if ephemeral:
                assistant_id = created = await _create(client, spec, target.dialect)
                how = "a temporary assistant from the spec"
            else:
                assistant_id = await _applied(client, spec, target.name, project.project_id)
                how = "applied"
            if session.thread_id is not None:
                await client.get_thread(session.thread_id)  # an unknown id is an error now
            click.echo(
                f"Chatting with {spec.api_name} ({spec.name}, {how}, {assistant_id}) on target "
                f"`{target.name}`. Type /help for commands, /quit or Ctrl-D to end."
            )
            conversation = _Conversation(client, assistant_id, spec.name, mocks, session)
            await conversation.loop()
        finally:
            if created is not None:
                with contextlib.suppress(KitError):
                    await client.delete_assistant(created)


async def _applied(client: AssistantClient, spec: AssistantSpec, target: str, project: str) -> str:
    remotes = await client.list_all_assistants()
    found = [a for a in remotes if managed_name(a, project) == spec.name]
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
    session: ChatSession
    turn: int = 0
    _shown: set[str] = field(default_factory=set)
    _writing: bool = False
    driver: TurnDriver = field(init=False)

    def __post_init__(self) -> None:
        self.driver = TurnDriver(
            self.client,
            self.assistant_id,
            answer=self._answer,
            see=self._see,
            thread_id=self.session.thread_id,
        )

    @property
    def thread_id(self) -> str | None:
        return self.driver.thread_id

    async def loop(self) -> None:
        loop = asyncio.get_running_loop()
        interrupts = _Interrupts(loop)
        with interrupts.installed():
            while True:
                line = await interrupts.wait(self._read("you> "))
                if line is None:  # Ctrl-D, the end of the input, or Ctrl-C at the prompt
                    click.echo()
                    return
                text = line.strip()
                if not text:
                    continue
                if text.startswith("/") and not text.startswith("//"):
                    if not await self._command(text):
                        return
                    continue
                if text.startswith("//"):
                    text = text[1:]  # `//etc` sends `/etc`
                with self.session.replying():
                    done = await interrupts.wait(self._played(text), cancel=True)
                if done is None:
                    self._end_line()
                    # the driver cancelled the run (a second Ctrl-C while it did so ends the chat)
                    click.echo("(cancelled: Ctrl-C again to end the chat)", err=True)
                self.turn += 1

    async def _command(self, text: str) -> bool:
        """Carry out a /command; False ends the conversation."""
        word = text.split()[0].lower()
        if word in QUIT:
            return False
        if word == "/help":
            click.echo(HELP)
        elif word == "/reset":
            old = self.thread_id
            self.driver.thread_id = None
            self.turn = 0
            kept = f" (the last one, {old}, is kept: kit chat {self.name} --thread {old})"
            click.echo(
                "New thread: the next message starts a new conversation"
                + (kept if old else "")
                + "."
            )
        elif word == "/thread":
            click.echo(self.thread_id or "(no thread yet: the first message starts one)")
        else:
            click.echo(f"unknown command {word}: /help lists them (//text sends /text)", err=True)
        return True

    async def _read(self, prompt: str) -> str | None:
        """One line from the user (``None`` at the end of the input)."""
        return await self.session.read_line(prompt)

    async def _played(self, text: str) -> bool:
        await self._turn(text)
        return True

    async def _turn(self, text: str) -> None:
        try:
            self.session.start_waiting(self.name)
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
        self.session.clear_waiting()
        if not self._writing:
            click.echo(f"{self.name}> ", nl=False)
            self._writing = True
        click.echo(text, nl=False)

    def _end_line(self) -> None:
        self.session.clear_waiting()
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


class _Interrupts:
    """Ctrl-C for the chat loop: during a reply it cancels the reply (the loop goes on); at the
    prompt, or a second time while a reply is being cancelled, it ends the chat."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.current: asyncio.Future[Any] | None = None
        self.pressed = 0

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        try:
            self.loop.add_signal_handler(signal.SIGINT, self._on_sigint)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
            yield
            return
        try:
            yield
        finally:
            self.loop.remove_signal_handler(signal.SIGINT)

    def _on_sigint(self) -> None:
        self.pressed += 1
        if self.current is not None and not self.current.done():
            self.current.cancel()

    async def wait(self, work: Awaitable[T], *, cancel: bool = False) -> T | None:
        """``work``'s result, or None when Ctrl-C stopped it. With ``cancel`` (a reply) the
        chat goes on; otherwise (the prompt) Ctrl-C ends it: ``KeyboardInterrupt``."""
        self.pressed = 0
        future: asyncio.Future[T] = asyncio.ensure_future(work)
        self.current = future
        try:
            return await future
        except asyncio.CancelledError:
            if not self.pressed:
                raise  # cancelled from outside, not by Ctrl-C
            if not cancel or self.pressed > 1:
                raise KeyboardInterrupt from None
            return None
        finally:
            self.current = None


class ChatSession:
    """The terminal side of `kit chat`: line editing and history (stdlib readline, history in
    .kit/), the waiting indicator, input typed during a reply, and the current thread."""

    def __init__(
        self, project: Project, spec: AssistantSpec, stdin: IO[str], thread_id: str | None
    ) -> None:
        self.stdin = stdin
        self.thread_id = thread_id
        self.history = project.root / HISTORY_FILE
        self.interactive = _isatty(stdin) and _isatty(sys.stdout)
        self._readline: Any = None
        self._waiting: asyncio.Task[None] | None = None
        self._waiting_shown = False

    @contextlib.contextmanager
    def terminal(self) -> Iterator[None]:
        """Line editing with history for the chat's duration; the terminal's settings are put
        back at the end whatever happened (a prompt abandoned by Ctrl-C included)."""
        if not self.interactive:
            yield
            return
        saved = _tty_settings(self.stdin)
        try:
            import readline
        except ImportError:  # a Python built without it: plain lines
            readline = None  # type: ignore[assignment]
        if readline is not None:
            self._readline = readline
            readline.set_history_length(HISTORY_LENGTH)
            with contextlib.suppress(OSError):
                readline.read_history_file(self.history)
        try:
            yield
        finally:
            if readline is not None:
                with contextlib.suppress(OSError):
                    self.history.parent.mkdir(parents=True, exist_ok=True)
                    readline.write_history_file(self.history)
            _restore_tty(self.stdin, saved)

    async def read_line(self, prompt: str) -> str | None:
        """One line (``None`` at the end of the input): ``input()`` with readline on a
        terminal, else ``readline()`` on the stream; both on a thread, so the event loop (the
        embedded server, Ctrl-C) goes on while the user types."""
        if self.interactive:
            return await _in_thread(lambda: _input(prompt))
        click.echo(prompt, nl=False)
        return await _in_thread(self.stdin.readline) or None

    def start_waiting(self, name: str) -> None:
        """Show ``name> …`` until the first token (a terminal only)."""
        if not self.interactive:
            return
        self.clear_waiting()
        self._waiting = asyncio.ensure_future(self._tick(name))

    async def _tick(self, name: str) -> None:
        frames = ("   ", ".  ", ".. ", "...")
        await asyncio.sleep(0.15)
        for i in itertools.count():
            sys.stdout.write(f"\r{name}> {frames[i % len(frames)]} (Ctrl-C cancels)")
            sys.stdout.flush()
            self._waiting_shown = True
            await asyncio.sleep(0.4)

    def clear_waiting(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()
            self._waiting = None
        if self._waiting_shown:
            sys.stdout.write("\r\x1b[2K")
            sys.stdout.flush()
            self._waiting_shown = False

    @contextlib.contextmanager
    def replying(self) -> Iterator[None]:
        """While a reply streams, keys are neither echoed into it nor kept for later: what was
        typed is thrown away at the end, saying so, instead of becoming the next message.
        Ctrl-C still interrupts (the terminal keeps sending SIGINT)."""
        saved = _tty_settings(self.stdin) if self.interactive else None
        if saved is not None:
            quiet = list(saved)
            quiet[3] &= ~(termios.ICANON | termios.ECHO)  # lflags: keys readable at once, unseen
            with contextlib.suppress(OSError, ValueError, termios.error):
                termios.tcsetattr(self.stdin.fileno(), termios.TCSANOW, quiet)
        try:
            yield
        finally:
            if saved is not None:
                self._discard_typeahead()
                _restore_tty(self.stdin, saved)

    def _discard_typeahead(self) -> None:
        try:
            ready, _, _ = select.select([self.stdin], [], [], 0)
            if ready:
                termios.tcflush(self.stdin.fileno(), termios.TCIFLUSH)
                click.echo("(what was typed during the reply was discarded)", err=True)
        except (OSError, ValueError, termios.error):
            pass


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _input(prompt: str) -> str | None:
    try:
        return input(prompt)
    except EOFError:
        return None


def _tty_settings(stream: IO[str]) -> Any:
    try:
        return termios.tcgetattr(stream.fileno())
    except (OSError, ValueError, termios.error):
        return None


def _restore_tty(stream: IO[str], saved: Any) -> None:
    if saved is None:
        return
    with contextlib.suppress(OSError, ValueError, termios.error):
        termios.tcsetattr(stream.fileno(), termios.TCSADRAIN, saved)


async def _in_thread(read: Callable[[], str | None]) -> str | None:
    """``read()`` on a daemon thread: an abandoned read (Ctrl-C at the prompt) never holds up
    the exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str | None] = loop.create_future()

    def settle(line: str | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(line)

    def run() -> None:
        line: str | None = None
        error: Exception | None = None
        try:
            line = read()
        except Exception as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed while the user was typing
            loop.call_soon_threadsafe(settle, line, error)

    threading.Thread(target=run, name="kit-chat-stdin", daemon=True).start()
    return await future
