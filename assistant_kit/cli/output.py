"""Printing helpers the commands share: JSON, spec issues, short summaries."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from assistant_kit.errors import ApiConnectionError, KitError, SpecIssue

__all__ = [
    "INTERRUPTED_HINT",
    "echo_issues",
    "echo_json",
    "error_text",
    "human_echo",
    "issue_dict",
    "json_option",
    "plural",
    "write_json",
]

F = TypeVar("F", bound=Callable[..., Any])

#: What every command prints when Ctrl-C stopped it (it then exits 130).
INTERRUPTED_HINT = "Interrupted."


def json_option(what: str) -> Callable[[F], F]:
    """``--json PATH``, the same on every command: write ``what`` as JSON to PATH, or to
    stdout when PATH is ``-`` (the text output then goes to stderr)."""
    return click.option(
        "--json",
        "json_path",
        default=None,
        metavar="PATH",
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


def human_echo(json_path: str | Path | None) -> Callable[..., None]:
    """``click.echo`` for the text output: on stderr when the JSON goes to stdout."""
    to_stderr = json_path is not None and str(json_path) == "-"

    def echo(message: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("err", to_stderr)
        click.echo(message, **kwargs)

    return echo


def error_text(exc: KitError) -> str:
    """The ``Error: ...`` line for ``exc``; a target that cannot be reached is named by its
    address (scheme, host and port only: never a path's query or a key)."""
    if not isinstance(exc, ApiConnectionError):
        return f"Error: {exc}"
    import httpx  # only here: `kit validate` never needs it

    where = "the target"
    cause = exc.__cause__
    if isinstance(cause, httpx.RequestError):
        try:
            url = cause.request.url
        except RuntimeError:  # an error raised without its request
            pass
        else:
            where = f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"
    return f"Error: cannot reach {where}: {exc.message}"


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
