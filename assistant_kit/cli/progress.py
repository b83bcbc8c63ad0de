"""Progress of long commands (`kit test`, `kit apply`) and visible retries.

On a terminal: a bar with ``[n/N]``, the counts so far, a timer that keeps ticking while a turn
runs (rich redraws it from its own thread) and what is running now; each result is printed above
the bar as it finishes. Piped (CI): no bar, one line per result as it finishes, ending in ``[n/N]``.
Retries the library makes are printed as ``retrying (2/6) in 1.3 s: connection refused``::

    with Progress(current(), total=len(items), noun="test") as progress, show_retries(current()):
        progress.started("order-desk::cancels")
        progress.finished("order-desk::cancels", "PASS order-desk::cancels 1.20s", "green")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from assistant_kit.cli.output import Ui
from assistant_kit.errors import ApiConnectionError, ApiError
from assistant_kit.sync.retry import RetryEvent, retry_listener

__all__ = ["Progress", "retry_reason", "show_retries"]


class Progress:
    """``[n/N]`` progress of ``total`` items; see the module docstring."""

    def __init__(self, ui: Ui, total: int, *, noun: str = "item") -> None:
        self.ui = ui
        self.total = total
        self.noun = noun
        self.done = 0
        self.running: list[str] = []
        self.counts: dict[str, int] = {}
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.ui.live and self.total:
            from rich.progress import (
                BarColumn,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as Bar

            self._bar = Bar(
                SpinnerColumn(),
                TextColumn("[{task.completed}/{task.total}]"),
                BarColumn(bar_width=24),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=self.ui.console(),
                transient=True,
                refresh_per_second=8,
            )
            self._bar.start()
            self._task = self._bar.add_task("", total=self.total, counts="")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def started(self, label: str) -> None:
        """``label`` began (shown on the bar)."""
        self.running.append(label)
        self._refresh()

    def finished(self, label: str, text: str, kind: str = "", style: str = "") -> None:
        """``label`` ended: print ``text`` (styled) now, count it under ``kind``."""
        if label in self.running:
            self.running.remove(label)
        self.done += 1
        if kind:
            self.counts[kind] = self.counts.get(kind, 0) + 1
        if self._bar is not None:  # the bar shows [n/N]
            from rich.text import Text

            self._bar.console.print(Text(text, style=style))
            self._bar.update(self._task, advance=1)
        else:
            self.ui.line(f"{text}  [{self.done}/{self.total}]", style)
        self._refresh()

    def _refresh(self) -> None:
        if self._bar is None:
            return
        counts = " ".join(f"{n} {kind}" for kind, n in self.counts.items() if n)
        now = self.running[-1] if self.running else ""
        more = f" (+{len(self.running) - 1})" if len(self.running) > 1 else ""
        # what is running gets the room the bar, counts and timer leave; the timer is never cut
        room = max(10, self._bar.console.width - 48 - len(counts) - len(more))
        if len(now) > room:
            now = now[: room - 1] + "…"
        self._bar.update(self._task, description=f"{now}{more}", counts=counts)


def retry_reason(error: BaseException) -> str:
    """A few words on why a call is retried: ``connection refused``, ``503 overloaded``."""
    if isinstance(error, ApiConnectionError):
        cause = error.__cause__
        text = str(cause or error).lower()
        name = type(cause).__name__ if cause is not None else ""
        if "refused" in text:
            return "connection refused"
        if "Timeout" in name or "timed out" in text:
            return "timed out"
        if name == "ConnectError":
            return f"cannot connect ({cause})"
        return f"connection lost ({cause or error.message})"
    if isinstance(error, ApiError):
        return f"{error.status} {error.code}"
    return str(error)


@contextlib.contextmanager
def show_retries(ui: Ui) -> Iterator[None]:
    """Print every retry the library makes in this context on stderr."""

    def show(event: RetryEvent) -> None:
        ui.line(
            f"retrying ({event.attempt}/{event.attempts}) in {event.delay:.1f} s: "
            f"{retry_reason(event.error)}",
            "yellow",
            err=True,
        )

    with retry_listener(show):
        yield
