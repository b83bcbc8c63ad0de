"""A fault-injecting httpx transport: wraps a real one and breaks chosen requests.

Each fault is consumed by the first request it matches, in order; ``random_faults`` breaks a
share of all requests with a seeded generator. Kinds:

* ``429``: answers 429 with ``Retry-After: 0`` and ``retry-after-ms`` (the request never ran);
* ``400``: answers 400 (a refusal that is not retried);
* ``500`` / ``503``: answers that status without running the request;
* ``500-after``: runs the request, then answers 500 (a write that happened, reported failed);
* ``timeout``: raises ``httpx.ReadTimeout`` without running the request;
* ``reset``: raises ``httpx.ReadError("connection reset by peer")`` without running it;
* ``lost``: runs the request on the server, then raises ``httpx.ReadTimeout`` (the answer is
  lost: a create that succeeded but timed out at the client).

It also counts requests per ``METHOD path`` and records the highest number in flight at once.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from dataclasses import dataclass, field

import httpx

KINDS = ("429", "500", "503", "500-after", "timeout", "reset", "lost")


@dataclass
class Fault:
    method: str
    path: str  # a regex searched in the URL path
    kind: str


@dataclass
class FaultyTransport(httpx.AsyncBaseTransport):
    inner: httpx.AsyncBaseTransport
    faults: list[Fault] = field(default_factory=list)
    random_rate: float = 0.0
    random_kinds: tuple[str, ...] = KINDS
    seed: int = 0
    delay: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def add(self, method: str, path: str, *kinds: str) -> FaultyTransport:
        for kind in kinds:
            self.faults.append(Fault(method, path, kind))
        return self

    def _pick(self, request: httpx.Request) -> str | None:
        for fault in self.faults:
            if fault.method == request.method and re.search(fault.path, request.url.path):
                self.faults.remove(fault)
                return fault.kind
        if self.random_rate and self.rng.random() < self.random_rate:
            return self.rng.choice(self.random_kinds)
        return None

    def count(self, method: str, pattern: str = "") -> int:
        return sum(
            n for key, n in self.counts.items() if key.startswith(method + " ") and pattern in key
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.counts[f"{request.method} {request.url.path}"] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            kind = self._pick(request)
            if kind is not None:
                self.injected[kind] += 1
            if kind == "429":
                headers = {"Retry-After": "0", "retry-after-ms": "5"}
                body = b'{"error": {"message": "slow down", "type": "rate_limit_exceeded"}}'
                return httpx.Response(429, headers=headers, content=body, request=request)
            if kind == "400":
                body = b'{"error": {"message": "injected refusal", "type": "invalid_request"}}'
                return httpx.Response(400, content=body, request=request)
            if kind in ("500", "503"):
                return httpx.Response(int(kind), content=b"{}", request=request)
            if kind == "timeout":
                raise httpx.ReadTimeout("injected timeout", request=request)
            if kind == "reset":
                raise httpx.ReadError("connection reset by peer", request=request)
            response = await self.inner.handle_async_request(request)
            if kind in ("lost", "500-after"):
                await response.aread()
                await response.aclose()
                if kind == "lost":
                    raise httpx.ReadTimeout("injected: answer lost", request=request)
                return httpx.Response(500, content=b"{}", request=request)
            return response
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()
