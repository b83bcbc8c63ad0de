"""Printing helpers the commands share: JSON, spec issues, short summaries."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import click

from assistant_kit.errors import ApiConnectionError, KitError, SpecIssue

__all__ = ["echo_issues", "echo_json", "error_text", "issue_dict", "plural"]


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
