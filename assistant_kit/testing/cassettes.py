"""Record / replay at the Assistant API level, as httpx transports.

A cassette holds one test's exchanges with the target (method, path, JSON body; status, headers,
body or SSE events), keyed by test id + spec digest, each exchange tagged with its repetition and
turn. Authorization headers and every configured secret value are scrubbed before anything is
stored. The runner only swaps the transport of the ``httpx.AsyncClient`` it gives its
``AssistantClient``::

    store = CassetteStore("cassettes/", scrubber)
    # --record: a real transport underneath, every exchange kept
    cassette = store.new(test_id, digest)
    transport = cassette.recorder(httpx.AsyncHTTPTransport(), repetition=0)
    # --replay: no network, no server; a miss raises CassetteMiss naming the test
    transport = store.load(test_id, digest).replayer(repetition=0)

    async with httpx.AsyncClient(base_url=url, transport=transport) as http:
        transport.at_turn("setup")      # create the thread
        transport.at_turn(0)            # turn 1's message, run, tool outputs ...
    store.save(cassette)                # record mode, after the test
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shlex
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from assistant_kit.errors import KitError
from assistant_kit.testing.secrets import Scrubber

CASSETTE_FORMAT = "kit-cassette"
CASSETTE_VERSION = 1

#: Where an exchange happened: ``"setup"``, a turn index, ``"teardown"`` (the runner's choice).
Slot = int | str

_T = TypeVar("_T", bound=httpx.AsyncBaseTransport)

#: Response headers not worth keeping: they describe the transfer, not the answer.
_DROP_RESPONSE_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "date", "server"}
)


class CassetteMiss(KitError):
    """Replay found no recorded answer for a request; the message names the test to record."""


def spec_digest(*parts: Any) -> str:
    """A stable digest of JSON-able values (the rendered assistant spec and the test)."""
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _record_again(test_id: str, directory: Path | None = None) -> str:
    # the test id as a positional name selects exactly that test; as a -k expression a name
    # holding `not`, `or` or a parenthesis would not parse, or would select other tests
    folder = shlex.quote(str(directory)) if directory is not None else "DIR"
    return f"record it again with: kit test --record {folder} {shlex.quote(test_id)}"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and its response."""

    repetition: int
    turn: Slot
    method: str
    path: str
    request_body: Any = None
    request_headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    response_headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    events: tuple[str, ...] | None = None
    body_base64: str | None = None

    def content(self) -> bytes:
        if self.events is not None:
            return "".join(f"{e}\n\n" for e in self.events).encode()
        if self.body_base64 is not None:
            return base64.b64decode(self.body_base64)
        return (self.body or "").encode()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "repetition": self.repetition,
            "turn": self.turn,
            "request": {
                "method": self.method,
                "path": self.path,
                "headers": self.request_headers,
                "body": self.request_body,
            },
            "response": {"status": self.status, "headers": self.response_headers},
        }
        response = data["response"]
        if self.events is not None:
            response["events"] = list(self.events)
        elif self.body_base64 is not None:
            response["body_base64"] = self.body_base64
        else:
            response["body"] = self.body
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Exchange:
        req, resp = data["request"], data["response"]
        events = resp.get("events")
        return cls(
            repetition=int(data["repetition"]),
            turn=data["turn"],
            method=req["method"],
            path=req["path"],
            request_body=req.get("body"),
            request_headers=dict(req.get("headers") or {}),
            status=int(resp["status"]),
            response_headers=dict(resp.get("headers") or {}),
            body=resp.get("body"),
            events=None if events is None else tuple(events),
            body_base64=resp.get("body_base64"),
        )


def _path(url: httpx.URL) -> str:
    return url.raw_path.decode("ascii")


def _request_body(content: bytes) -> Any:
    if not content:
        return None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return {"$base64": base64.b64encode(content).decode()}
    try:
        return {"$json": json.loads(text)}
    except ValueError:
        return text


class Cassette:
    """The exchanges of one test (all repetitions)."""

    def __init__(
        self,
        test_id: str,
        digest: str,
        exchanges: list[Exchange] | None = None,
        scrubber: Scrubber | None = None,
    ) -> None:
        self.test_id = test_id
        self.digest = digest
        self.scrubber = scrubber or Scrubber()
        #: The folder it was loaded from (named in the advice to record it again).
        self.directory: Path | None = None
        self._recorded: dict[tuple[int, int], Exchange] = {}
        self._next: dict[int, int] = {}
        for ex in exchanges or ():
            self._store(ex.repetition, self._reserve(ex.repetition), ex)

    @property
    def exchanges(self) -> list[Exchange]:
        return [self._recorded[key] for key in sorted(self._recorded)]

    def _reserve(self, repetition: int) -> int:
        n = self._next.get(repetition, 0)
        self._next[repetition] = n + 1
        return n

    def _store(self, repetition: int, seq: int, exchange: Exchange) -> None:
        self._recorded[(repetition, seq)] = exchange

    def to_json(self) -> dict[str, Any]:
        return {
            "format": CASSETTE_FORMAT,
            "version": CASSETTE_VERSION,
            "test_id": self.test_id,
            "spec_digest": self.digest,
            "exchanges": [ex.to_json() for ex in self.exchanges],
        }

    def recorder(
        self, inner: httpx.AsyncBaseTransport, *, repetition: int = 0, owns_inner: bool = False
    ) -> RecordingTransport:
        """A transport that forwards to ``inner`` and keeps every exchange of this repetition."""
        return RecordingTransport(self, inner, repetition=repetition, owns_inner=owns_inner)

    def replayer(self, *, repetition: int = 0, match_body: bool = True) -> ReplayTransport:
        """A transport that answers from the recorded exchanges of this repetition, in order."""
        return ReplayTransport(self, repetition=repetition, match_body=match_body)


class _SlotTransport(httpx.AsyncBaseTransport):
    def __init__(self, cassette: Cassette, repetition: int) -> None:
        self.cassette = cassette
        self.repetition = repetition
        self.turn: Slot = "setup"

    def at_turn(self, turn: Slot) -> None:
        """Tag the following exchanges (``"setup"``, a turn index, ``"teardown"``)."""
        self.turn = turn


class RecordingTransport(_SlotTransport):
    """Forwards to a real transport and records each exchange (streams pass through live)."""

    def __init__(
        self,
        cassette: Cassette,
        inner: httpx.AsyncBaseTransport,
        *,
        repetition: int = 0,
        owns_inner: bool = False,
    ) -> None:
        super().__init__(cassette, repetition)
        self.inner = inner
        self.owns_inner = owns_inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Bodies are stored as text: ask for them uncompressed.
        request.headers["accept-encoding"] = "identity"
        content = await request.aread()
        seq = self.cassette._reserve(self.repetition)
        turn, scrub = self.turn, self.cassette.scrubber
        response = await self.inner.handle_async_request(request)

        def finish(data: bytes) -> None:
            exchange = _exchange(request, content, response, data, (self.repetition, turn), scrub)
            self.cassette._store(self.repetition, seq, exchange)

        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_RecordingStream(response.stream, finish),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        if self.owns_inner:
            await self.inner.aclose()


def _exchange(
    request: httpx.Request,
    content: bytes,
    response: httpx.Response,
    data: bytes,
    where: tuple[int, Slot],
    scrub: Scrubber,
) -> Exchange:
    headers = {
        k.lower(): v
        for k, v in scrub.headers(response.headers.items())
        if k.lower() not in _DROP_RESPONSE_HEADERS
    }
    body: str | None = None
    events: tuple[str, ...] | None = None
    body_b64: str | None = None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        body_b64 = base64.b64encode(data).decode()
    else:
        text = scrub.text(text)
        blocks = text.split("\n\n")
        is_sse = headers.get("content-type", "").startswith("text/event-stream")
        if is_sse and text.endswith("\n\n") and "".join(f"{b}\n\n" for b in blocks[:-1]) == text:
            events = scrub_streamed(tuple(blocks[:-1]), scrub)
        else:
            body = text
    return Exchange(
        repetition=where[0],
        turn=where[1],
        method=request.method,
        path=scrub.text(_path(request.url)),
        request_body=scrub.data(_request_body(content)),
        request_headers=dict(scrub.headers((k.lower(), v) for k, v in request.headers.items())),
        status=response.status_code,
        response_headers=headers,
        body=body,
        events=events,
        body_base64=body_b64,
    )


#: Keys that name a streamed object rather than carry its text (never joined, never rewritten).
_NAMING_KEYS = frozenset({"id", "object", "type", "role", "status", "event"})


def scrub_streamed(events: tuple[str, ...], scrub: Scrubber) -> tuple[str, ...]:
    """SSE events with every text streamed in fragments scrubbed as the whole text.

    A model can stream a secret in pieces (``'rer p' 't-SEN' 'TINEL'``) that no single event
    holds. The fragments of each streamed field (a message part's ``text.value``, a tool call's
    ``function.arguments``, a code input, a Responses ``delta``) are joined across the delta
    events of one object, scrubbed together and cut back into the events
    (``Scrubber.pieces``), so a replay streams exactly the scrubbed text a report shows.
    """
    decoded: list[tuple[list[str], int, str, dict[str, Any]] | None] = []
    fields: dict[tuple[Any, ...], list[tuple[int, tuple[str | int, ...], str]]] = {}
    for number, block in enumerate(events):
        lines = block.split("\n")
        data_at = [i for i, line in enumerate(lines) if line.startswith("data:")]
        name = next((line[6:].strip() for line in lines if line.startswith("event:")), "")
        data: Any = None
        if data_at:
            prefix = "data: " if lines[data_at[0]].startswith("data: ") else "data:"
            raw = "\n".join(lines[i][len(prefix) :] for i in data_at)
            with contextlib.suppress(ValueError):
                data = json.loads(raw)
        if not isinstance(data, dict):
            decoded.append(None)
            continue
        decoded.append(
            ([ln for ln in lines if not ln.startswith("data:")], data_at[0], prefix, data)
        )
        kind = name or str(data.get("object") or data.get("type") or "")
        if not kind.endswith("delta"):
            continue
        stream = (
            kind,
            data.get("id") or data.get("item_id"),
            data.get("output_index"),
            data.get("content_index"),
        )
        for place, key, text in _fragments(data, (), ()):
            fields.setdefault((*stream, key), []).append((number, place, text))
    dirty: set[int] = set()
    for found in fields.values():
        scrubbed = scrub.pieces([text for _, _, text in found])
        for (number, place, text), new in zip(found, scrubbed, strict=True):
            if new != text:
                entry = decoded[number]
                assert entry is not None
                _set(entry[3], place, new)
                dirty.add(number)
    out = list(events)
    for number in sorted(dirty):
        entry = decoded[number]
        assert entry is not None
        others, at, prefix, data = entry
        line = prefix + json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        out[number] = "\n".join([*others[:at], line, *others[at:]])
    return tuple(out)


def _fragments(
    node: Any, place: tuple[str | int, ...], key: tuple[Any, ...]
) -> Iterator[tuple[tuple[str | int, ...], tuple[Any, ...], str]]:
    """(where it is, what field it belongs to, text) of each string in a delta; list items are
    told apart by their ``index`` when they have one (tool calls), else by position."""
    if isinstance(node, str):
        yield place, key, node
    elif isinstance(node, dict):
        for name, value in node.items():
            if name not in _NAMING_KEYS and not str(name).endswith("_id"):
                yield from _fragments(value, (*place, name), (*key, name))
    elif isinstance(node, list):
        for position, item in enumerate(node):
            index = item.get("index", position) if isinstance(item, dict) else position
            yield from _fragments(item, (*place, position), (*key, ("#", index)))


def _set(data: Any, place: tuple[str | int, ...], value: str) -> None:
    for step in place[:-1]:
        data = data[step]
    data[place[-1]] = value


class _RecordingStream(httpx.AsyncByteStream):
    def __init__(self, inner: Any, finish: Callable[[bytes], None]) -> None:
        self.inner = inner
        self.finish = finish
        self.chunks: list[bytes] = []
        self.done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            self.chunks.append(chunk)
            yield chunk

    async def aclose(self) -> None:
        if not self.done:
            self.done = True
            self.finish(b"".join(self.chunks))
        await self.inner.aclose()


class ReplayTransport(_SlotTransport):
    """Serves one repetition's recorded exchanges in order; never touches the network."""

    def __init__(self, cassette: Cassette, *, repetition: int = 0, match_body: bool = True) -> None:
        super().__init__(cassette, repetition)
        self.match_body = match_body
        self.queue = [ex for ex in cassette.exchanges if ex.repetition == repetition]
        self.position = 0

    def _miss(self, why: str) -> CassetteMiss:
        where = f"repetition {self.repetition + 1}, {_slot_text(self.turn)}"
        return CassetteMiss(
            f"replay of {self.cassette.test_id!r} ({where}): {why}; the test or the runner "
            "changed since it was recorded; "
            + _record_again(self.cassette.test_id, self.cassette.directory)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = await request.aread()
        path = self.cassette.scrubber.text(_path(request.url))
        asked = f"{request.method} {path}"
        if self.position >= len(self.queue):
            raise self._miss(f"{asked} was never recorded (all exchanges were used)")
        ex = self.queue[self.position]
        if ex.turn != self.turn or (ex.method, ex.path) != (request.method, path):
            raise self._miss(
                f"{asked} does not match the next recorded request, "
                f"{ex.method} {ex.path} ({_slot_text(ex.turn)})"
            )
        if self.match_body:
            body = self.cassette.scrubber.data(_request_body(content))
            if body != ex.request_body:
                raise self._miss(
                    f"the body of {asked} differs from the recording: "
                    f"{_short(body)} vs {_short(ex.request_body)}"
                )
        self.position += 1
        return httpx.Response(
            status_code=ex.status,
            headers=ex.response_headers,
            content=ex.content(),
            request=request,
        )


def _slot_text(slot: Slot) -> str:
    return f"turn {slot + 1}" if isinstance(slot, int) else str(slot)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 160 else text[:159] + "…"


_ROUTE: ContextVar[httpx.AsyncBaseTransport | None] = ContextVar("kit_cassette", default=None)


class CassetteRouter(httpx.AsyncBaseTransport):
    """One transport for a client shared by concurrent tests: each task's requests go to the
    cassette transport it chose with ``use()``; requests outside any ``use()`` go to ``fallback``
    (e.g. the real transport, for set-up shared by all tests), or raise ``CassetteMiss``::

        router = CassetteRouter(fallback=None)              # replay: nothing reaches a network
        http = httpx.AsyncClient(base_url=url, transport=router)
        async def one_test():                               # each in its own task
            with router.use(cassette.replayer(repetition=0)) as transport:
                transport.at_turn(0)
                ...
    """

    def __init__(self, fallback: httpx.AsyncBaseTransport | None = None) -> None:
        self.fallback = fallback

    @contextlib.contextmanager
    def use(self, transport: _T) -> Iterator[_T]:
        token = _ROUTE.set(transport)
        try:
            yield transport
        finally:
            _ROUTE.reset(token)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = _ROUTE.get() or self.fallback
        if transport is None:
            raise CassetteMiss(
                f"{request.method} {_path(request.url)} was sent outside any test's cassette"
            )
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        if self.fallback is not None:
            await self.fallback.aclose()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class CassetteStore:
    """A directory of cassettes, one JSON file per test."""

    def __init__(self, directory: str | Path, scrubber: Scrubber | None = None) -> None:
        self.directory = Path(directory)
        self.scrubber = scrubber or Scrubber()

    def path_for(self, test_id: str) -> Path:
        """``DIR/<readable id>.<hash>.json``; the hash keeps distinct ids distinct."""
        readable = _UNSAFE.sub("-", test_id.replace("::", "--")).strip("-")[:80]
        tag = hashlib.sha256(test_id.encode()).hexdigest()[:8]
        return self.directory / f"{readable}.{tag}.json"

    def new(self, test_id: str, digest: str) -> Cassette:
        """An empty cassette to record into."""
        return Cassette(test_id, digest, scrubber=self.scrubber)

    def load(self, test_id: str, digest: str) -> Cassette:
        """The recorded cassette of ``test_id``; ``CassetteMiss`` when there is none or it was
        recorded from a different spec (the digests differ)."""
        path = self.path_for(test_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CassetteMiss(
                f"no cassette for {test_id!r} in {self.directory}; "
                + _record_again(test_id, self.directory)
            ) from None
        except ValueError as exc:
            raise CassetteMiss(
                f"the cassette for {test_id!r} ({path}) is not valid JSON ({exc}); "
                f"{_record_again(test_id, self.directory)}"
            ) from exc
        if data.get("format") != CASSETTE_FORMAT or data.get("version") != CASSETTE_VERSION:
            raise CassetteMiss(
                f"{path} is not a version {CASSETTE_VERSION} kit cassette; "
                + _record_again(test_id, self.directory)
            )
        if data.get("spec_digest") != digest:
            raise CassetteMiss(
                f"the cassette for {test_id!r} was recorded from another version of its spec "
                f"(digest {data.get('spec_digest')} here, {digest} now); "
                + _record_again(test_id, self.directory)
            )
        exchanges = [Exchange.from_json(ex) for ex in data.get("exchanges", [])]
        cassette = Cassette(test_id, digest, exchanges, scrubber=self.scrubber)
        cassette.directory = self.directory
        return cassette

    def save(self, cassette: Cassette) -> Path:
        """Write the cassette atomically (scrubbed once more as a whole, to be sure)."""
        path = self.path_for(cassette.test_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(cassette.to_json(), ensure_ascii=False, indent=1) + "\n"
        text = self.scrubber.text(text)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".cassette-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
        return path
