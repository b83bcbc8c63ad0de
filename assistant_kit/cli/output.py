"""How every `kit` command prints: one renderer on rich, colour rules, and shared helpers.

Colour is decided once per invocation (``--color always|never|auto``, then ``NO_COLOR``, then
``FORCE_COLOR``, then "stdout is a terminal"); live progress only ever runs on a terminal, so
piped output (CI) is plain, one line per result, whatever the colour. Text is styled by the
symbol a line starts with, so the library renders plain text and only this module knows about
colour::

    ui = current()
    ui.print_lines(render_plan(plan), PLAN_STYLES)
    ui.error("Error: ...")
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

from assistant_kit.errors import ApiConnectionError, KitError, SpecIssue

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "COLOR_CHOICES",
    "INTERRUPTED_HINT",
    "PLAN_STYLES",
    "TEST_STYLES",
    "Ui",
    "configure",
    "current",
    "echo_issues",
    "echo_json",
    "error_text",
    "issue_dict",
    "json_option",
    "plural",
    "want_color",
    "write_json",
]

#: Values of ``--color``.
COLOR_CHOICES = ("auto", "always", "never")

#: Styles of plan and apply lines, by the symbol they start with (after the indent).
PLAN_STYLES: Mapping[str, str] = {
    "+": "green",
    "~": "yellow",
    "-": "red",
    "!": "bold red",
    "Error:": "bold red",
    "Apply failed": "bold red",
    "Destroy failed": "bold red",
    "Apply complete": "green",
    "Destroy complete": "green",
    "Interrupted": "bold yellow",
}
#: Styles of `kit test` lines, by their first word or mark.
TEST_STYLES: Mapping[str, str] = {
    "PASS": "green",
    "FAIL": "bold red",
    "ERROR": "bold yellow",
    "SKIP": "dim",
    "FLAKY": "magenta",
    "✓": "green",
    "✗": "red",
    "!": "yellow",
    "Error:": "bold red",
}


def want_color(choice: str, environ: Mapping[str, str], stream: TextIO) -> bool:
    """Whether to colour output: ``--color`` wins, then NO_COLOR (https://no-color.org), then
    FORCE_COLOR, then whether ``stream`` is a terminal (not a dumb one)."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR"):
        return True
    return _is_terminal(stream) and environ.get("TERM") != "dumb"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


@dataclass
class Ui:
    """This invocation's printing choices and its two consoles (stdout and stderr)."""

    color_choice: str = "auto"
    verbosity: int = 0
    #: The text goes to stderr (when stdout carries JSON: ``--json -``).
    text_on_stderr: bool = False
    _consoles: dict[tuple[bool, bool], Console] = field(default_factory=dict, repr=False)

    @property
    def _text_stream(self) -> TextIO:
        return sys.stderr if self.text_on_stderr else sys.stdout

    @property
    def color(self) -> bool:
        return want_color(self.color_choice, os.environ, self._text_stream)

    @property
    def live(self) -> bool:
        """Live progress (a redrawn bar): only when the text goes to a real terminal."""
        return _is_terminal(self._text_stream) and os.environ.get("TERM") != "dumb"

    def console(self, *, err: bool = False) -> Console:
        """The rich console of the text (stdout, or stderr when ``text_on_stderr``), or of
        stderr; it follows ``sys.stdout`` / ``sys.stderr`` as they are now."""
        from rich.console import Console

        err = err or self.text_on_stderr
        color = self.color
        console = self._consoles.get((err, color))
        if console is None:
            console = Console(
                stderr=err,
                force_terminal=color or None,
                no_color=not color,
                color_system="standard" if color else None,
                highlight=False,
                soft_wrap=True,
                emoji=False,
                markup=False,
            )
            self._consoles[err, color] = console
        return console

    def print_lines(
        self, text: str, styles: Mapping[str, str] | None = None, *, err: bool = False
    ) -> None:
        """Print ``text`` line by line, each styled by the symbol or word it starts with."""
        console = self.console(err=err)
        for line in text.split("\n"):
            console.print(styled(line, styles or {}))

    def line(self, text: str, style: str = "", *, err: bool = False) -> None:
        """One line, styled as a whole."""
        from rich.text import Text

        self.console(err=err).print(Text(text, style=style))

    def error(self, text: str) -> None:
        """An error message on stderr (red on a colour terminal)."""
        self.print_lines(text, {"Error:": "bold red", "hint:": "cyan"}, err=True)


def styled(line: str, styles: Mapping[str, str]) -> Any:
    """``line`` as rich ``Text``, styled by the first key of ``styles`` it starts with (after its
    indent); longer keys are tried first."""
    from rich.text import Text

    head = line.lstrip()
    for key in sorted(styles, key=len, reverse=True):
        if head.startswith(key):
            return Text(line, style=styles[key])
    return Text(line)


_UI = Ui()


def current() -> Ui:
    """The printing choices of the running command."""
    return _UI


def configure(
    *,
    color: str | None = None,
    verbosity: int | None = None,
    text_on_stderr: bool | None = None,
) -> Ui:
    """Set this invocation's choices (the common options call this); ``None`` keeps a value."""
    if color is not None:
        _UI.color_choice = color
    if verbosity is not None:
        _UI.verbosity = verbosity
    if text_on_stderr is not None:
        _UI.text_on_stderr = text_on_stderr
    return _UI


def reset() -> None:
    """Forget the previous invocation's choices (the root command calls this first)."""
    _UI.color_choice = "auto"
    _UI.verbosity = 0
    _UI.text_on_stderr = False
    _UI._consoles.clear()


F = TypeVar("F", bound=Callable[..., Any])

#: What every command prints when Ctrl-C stopped it (it then exits 130).
INTERRUPTED_HINT = "Interrupted."


def json_option(what: str) -> Callable[[F], F]:
    """``--json PATH``, the same on every command: write ``what`` as JSON to PATH, or to
    stdout when PATH is ``-`` (the renderer then sends the text to stderr)."""

    def text_aside(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        configure(text_on_stderr=value == "-")
        return value

    return click.option(
        "--json",
        "json_path",
        default=None,
        metavar="PATH",
        callback=text_aside,
        help=f"Write {what} as JSON to PATH (`-`: stdout, and the text goes to stderr).",
    )


def write_json(value: Any, dest: str | Path) -> None:
    """``value`` as indented JSON on stdout (``dest == "-"``) or in the file ``dest``."""
    if str(dest) == "-":
        echo_json(value)
        return
    path = Path(dest)
    try:
        path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from exc


def error_text(exc: KitError) -> str:
    """The ``Error: ...`` line for ``exc``; a target that cannot be reached is named by its
    address (scheme, host and port only: never a path's query or a key), and a refused
    connection to this machine gets a ``hint:`` line naming the `kit serve` that would answer."""
    if not isinstance(exc, ApiConnectionError):
        return f"Error: {exc}"
    import httpx  # only here: `kit validate` never needs it

    from assistant_kit.sync.retry import is_refused_locally

    where = "the target"
    cause = exc.__cause__
    port: int | None = None
    if isinstance(cause, httpx.RequestError):
        try:
            url = cause.request.url
        except RuntimeError:  # an error raised without its request
            pass
        else:
            where = f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"
            port = url.port or (443 if url.scheme == "https" else 80)
    text = f"Error: cannot reach {where}: {exc.message}"
    if port is not None and is_refused_locally(exc):
        text += (
            f"\nhint: nothing listens on port {port} of this machine; start the server with "
            f"`kit serve --port {port}` (or fix the target's base_url in kit.yaml)"
        )
    return text


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON (UTF-8 kept as is) on stdout."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def issue_dict(issue: SpecIssue) -> dict[str, Any]:
    """A spec issue as a JSON object: ``{file, line, col, message}``."""
    return {"file": issue.file, "line": issue.line, "col": issue.col, "message": issue.message}


def echo_issues(issues: Iterable[SpecIssue]) -> None:
    """Print each issue as ``file:line:col: message`` on stderr."""
    for issue in issues:
        click.echo(str(issue), err=True)


def plural(count: int, word: str) -> str:
    """``plural(1, "test")`` -> ``1 test``; ``plural(2, "test")`` -> ``2 tests``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
