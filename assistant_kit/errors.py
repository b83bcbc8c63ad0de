"""The whole exception tree of assistant-kit.

Catch what you need; everything the kit raises on purpose is a ``KitError``::

    * KitError               base class; the CLI turns each into a message and an exit code
      + SpecError            every problem in the specs at once, each file:line:col: message
      + ConfigError          kit.yaml or command-line configuration that cannot be used (exit 2)
      + ApiError             a target refused a request (.status, .code, .dialect, .request_id)
        - ApiConnectionError nothing came back (timeout, DNS, refused, reset)
      + PlanError            the target changed in a way a plan cannot settle
      + ModelError           a model backend failed (its run fails with ``last_error``)
      + ToolError            a built-in tool failed (the model reads the error as its output)

The server raises ``ApiError`` for bad requests too; one handler per dialect writes the envelope.
"""

from __future__ import annotations

from dataclasses import dataclass


class KitError(Exception):
    """Base class of every error the kit raises on purpose."""


@dataclass(frozen=True, slots=True)
class SpecIssue:
    """One problem in a spec file, with the position of the offending node (1-based)."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        # One issue, one line: a key or name quoted in the message may hold a line break.
        return f"{self.file}:{self.line}:{self.col}: {self.message.translate(_LINE_BREAKS)}"


#: Characters ``str.splitlines()`` breaks at, written as their escapes.
_LINE_BREAKS = {
    c: repr(chr(c))[1:-1] for c in (0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029)
}


class SpecError(KitError):
    """Every problem found in the specs, all at once, sorted by position."""

    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.file, i.line, i.col, i.message))
        super().__init__("\n".join(str(i) for i in self.issues))


class ConfigError(KitError):
    """Configuration (kit.yaml, options, environment) that cannot be used."""


class ApiError(KitError):
    """An Assistant API answered with an error (or the server refuses a request)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        dialect: str = "",
        request_id: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.dialect = dialect
        self.request_id = request_id
        self.param = param
        #: Seconds the server asked to wait before trying again (Retry-After), if it said.
        self.retry_after = retry_after
        super().__init__(f"{status} {code}: {message}")


class ApiConnectionError(ApiError):
    """Nothing usable came back: a timeout, a refused or reset connection, a DNS failure."""

    def __init__(self, message: str, *, dialect: str = "") -> None:
        super().__init__(0, "connection_error", message, dialect=dialect)


class PlanError(KitError):
    """The target is in a state a plan cannot settle (e.g. two assistants claim one name)."""


class ModelError(KitError):
    """A model backend failed; ``code`` goes into the run's ``last_error``."""

    def __init__(self, message: str, *, code: str = "server_error") -> None:
        self.code = code
        super().__init__(message)


class ToolError(KitError):
    """A built-in tool failed; its message becomes the tool output the model sees."""


def absorb_interrupt() -> bool:
    """Call in ``except asyncio.CancelledError``: True when the running task was cancelled once,
    as ``asyncio.run`` does on Ctrl-C, and that cancellation is now withdrawn, so the caller may
    return what finished (marked interrupted); False when it must re-raise (cancelled from
    elsewhere as well, or Python 3.10, where Ctrl-C raises ``KeyboardInterrupt`` instead)."""
    import asyncio

    task = asyncio.current_task()
    uncancel = getattr(task, "uncancel", None)
    return uncancel is not None and uncancel() == 0
