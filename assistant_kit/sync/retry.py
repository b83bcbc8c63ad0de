"""Retrying calls to a target: which failures are worth another try, and how long to wait.

429, 5xx, timeouts and connection errors are retried with exponential backoff and full jitter;
a ``Retry-After`` (or ``retry-after-ms``) the server sent is honoured instead, up to
``max_delay``. A failure is *ambiguous* when the request may have been carried out anyway (the
response never came back, or a 5xx): callers that create things must look before trying again::

    policy = RetryPolicy(attempts=5)
    page = await policy.call(lambda: client.list_assistants(limit=100))
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from assistant_kit.errors import ApiConnectionError, ApiError

__all__ = ["RetryPolicy", "is_ambiguous", "is_retryable"]

T = TypeVar("T")

#: Statuses that say "try again later" besides every 5xx.
RETRY_STATUSES = frozenset({408, 425, 429})


def is_retryable(error: BaseException) -> bool:
    """True for failures another attempt may get past: 429, 5xx, timeouts, lost connections."""
    if isinstance(error, ApiConnectionError):
        return True
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
                await self.sleep(wait)
                retry += 1
