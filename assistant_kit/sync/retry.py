"""Retrying calls to a target: which failures are worth another try, and how long to wait.

429, 5xx, timeouts and connection errors are retried with exponential backoff and full jitter;
a ``Retry-After`` (or ``retry-after-ms``) the server sent is honoured instead, up to
``max_delay``. A failure is *ambiguous* when the request may have been carried out anyway (the
response never came back, or a 5xx): callers that create things must look before trying again::

    policy = RetryPolicy(attempts=5)
    page = await policy.call(lambda: client.list_assistants(limit=100))

A refused connection to a loopback address is not retried: nothing listens there, and waiting
will not start it. Every retry is reported to the listener set with ``retry_listener`` (the CLI
prints them; the library never does)::

    with retry_listener(lambda event: print(event)):
        await apply_plan(client, plan)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ipaddress
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from assistant_kit.errors import ApiConnectionError, ApiError

__all__ = [
    "RetryEvent",
    "RetryPolicy",
    "is_ambiguous",
    "is_refused_locally",
    "is_retryable",
    "retry_listener",
]

T = TypeVar("T")

#: Statuses that say "try again later" besides every 5xx.
RETRY_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """One retry about to happen: attempt ``attempt`` of ``attempts`` after ``delay`` seconds."""

    attempt: int
    attempts: int
    delay: float
    error: BaseException


_LISTENER: contextvars.ContextVar[Callable[[RetryEvent], None] | None] = contextvars.ContextVar(
    "assistant_kit_retry_listener", default=None
)


@contextlib.contextmanager
def retry_listener(listener: Callable[[RetryEvent], None]) -> Iterator[None]:
    """Report every retry made in this context (tasks started inside it too) to ``listener``."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)


def is_refused_locally(error: BaseException) -> bool:
    """True when a loopback address refused the connection (no server listens on that port)."""
    cause = error.__cause__ if isinstance(error, ApiConnectionError) else error
    if not isinstance(cause, httpx.ConnectError):
        return False
    try:
        host = cause.request.url.host
    except RuntimeError:  # raised without its request
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_retryable(error: BaseException) -> bool:
    """True for failures another attempt may get past: 429, 5xx, timeouts, lost connections
    (but not a refused connection to this machine)."""
    if isinstance(error, ApiConnectionError):
        return not is_refused_locally(error)
    return isinstance(error, ApiError) and (error.status in RETRY_STATUSES or error.status >= 500)


def is_ambiguous(error: BaseException) -> bool:
    """True when the request may have taken effect although it failed (no answer, or a 5xx)."""
    if isinstance(error, ApiConnectionError):
        return True
    return isinstance(error, ApiError) and error.status >= 500


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry one call.

    ``attempts`` counts the first try. Backoff before retry ``n`` (0-based) is a random delay in
    ``[0, min(max_delay, base_delay * 2**n)]`` (full jitter), or the server's Retry-After.
    """

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, retry: int, error: BaseException) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry) after ``error``."""
        asked = getattr(error, "retry_after", None)
        if isinstance(asked, (int, float)):
            # a little jitter on top (up to 10%), so waiting callers do not return in one burst
            jitter = self.rng.uniform(0, max(0.01, asked * 0.1))
            return float(min(self.max_delay, asked + jitter))
        ceiling = min(self.max_delay, self.base_delay * (2**retry))
        return self.rng.uniform(0, ceiling)

    def report(self, retry: int, error: BaseException, wait: float) -> None:
        """Tell this context's ``retry_listener`` that retry ``retry`` (1-based) comes next."""
        listener = _LISTENER.get()
        if listener is not None:
            listener(RetryEvent(retry + 1, self.attempts, wait, error))

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        on_retry: Callable[[int, BaseException, float], None] | None = None,
    ) -> T:
        """``await fn()``, retried on retryable failures; the last failure is raised."""
        retry = 0
        while True:
            try:
                return await fn()
            except ApiError as exc:
                if not is_retryable(exc) or retry + 1 >= self.attempts:
                    raise
                wait = self.delay(retry, exc)
                if on_retry is not None:
                    on_retry(retry + 1, exc, wait)
                self.report(retry + 1, exc, wait)
                await self.sleep(wait)
                retry += 1
