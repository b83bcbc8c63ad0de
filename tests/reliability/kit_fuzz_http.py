"""Fuzzing the HTTP API: requests built from ``schemas/openapi.json`` against the real app.

``ApiUnderTest`` runs the real ASGI app (lifespan entered, a SQLite file) on an event loop in a
background thread and sends requests through ``httpx.ASGITransport``. ``requests()`` draws
requests from the OpenAPI document (operations, path ids real and bogus, query parameters,
bodies built from the request schemas, random JSON, broken JSON, odd content types and
headers) and from nowhere (random paths and methods). ``ApiUnderTest.check`` asserts:

* no 5xx, and no exception out of the app;
* every error is in the envelope of the dialect the path belongs to (DashScope
  ``{code, message, request_id}``; OpenAI ``{"error": {message, type, param, code}}``);
* every success of a documented operation matches the document's response schema.

Shared by ``test_fuzz_http.py`` (CI) and ``bench/fuzz.py`` (10,000+ cases).
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.from_thread
import httpx
import jsonschema
from hypothesis import strategies as st

from assistant_kit.server.app import ServerConfig, create_app

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "assistant_kit" / "schemas"
OPENAPI = SCHEMA_DIR / "openapi.json"
KEY = "fuzz-key"
#: A small body limit, so that over-limit bodies are cheap to send.
MAX_BODY = 16 * 1024
#: Statuses the API may answer with; anything else is a finding.
ALLOWED_STATUSES = frozenset({200, 400, 401, 404, 405, 409, 413, 415})
METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS", "TRACE", "FOO"]


# -- the OpenAPI document ----------------------------------------------------------------------


@functools.cache
def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def resolve(node: Any, document: Path) -> Any:
    """``node`` with every ``$ref`` inlined (local pointers and files beside ``document``)."""
    if isinstance(node, list):
        return [resolve(item, document) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return {k: resolve(v, document) for k, v in node.items()}
    target_file, _, pointer = ref.partition("#")
    if target_file.startswith("https://assistant-kit.dev/schemas/"):
        target_file = target_file.removeprefix("https://assistant-kit.dev/schemas/")
        where = SCHEMA_DIR / target_file
    else:
        where = (document.parent / target_file).resolve() if target_file else document
    target: Any = _load(where)
    for part in filter(None, pointer.split("/")):
        target = target[part]
    resolved = resolve(target, where)
    siblings = {k: resolve(v, document) for k, v in node.items() if k != "$ref"}
    if isinstance(resolved, dict):
        resolved = {k: v for k, v in resolved.items() if k not in ("$id", "$schema")}
        if set(siblings) & set(resolved):
            return {**siblings, "allOf": [resolved]}
        return {**resolved, **siblings}
    return resolved


@dataclass(frozen=True)
class Operation:
    """One documented method on one path, its parameters and schemas resolved."""

    method: str
    path: str
    dialect: str
    operation_id: str
    path_params: tuple[str, ...]
    query: Mapping[str, Any]
    body: Mapping[str, Any] | None
    #: The JSON Schema of a 200's body; ``None`` for bytes (a file's content).
    response: Mapping[str, Any] | None


def dialect_of(path: str) -> str:
    """The dialect whose envelope a path gets (what the app decides by prefix)."""
    return "dashscope" if path.startswith("/api/v1/") else "openai"


@functools.cache
def operations() -> tuple[Operation, ...]:
    """Every operation of the OpenAPI document."""
    doc = resolve(_load(OPENAPI), OPENAPI)
    found = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            params = op.get("parameters", [])
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    dialect=dialect_of(path),
                    operation_id=op["operationId"],
                    path_params=tuple(p["name"] for p in params if p["in"] == "path"),
                    query={p["name"]: p["schema"] for p in params if p["in"] == "query"},
                    body=body.get("schema"),
                    response=op["responses"]["200"]["content"]
                    .get("application/json", {})
                    .get("schema"),
                )
            )
    return tuple(found)


@functools.cache
def error_schemas() -> dict[str, Any]:
    doc = resolve(_load(OPENAPI), OPENAPI)
    schemas = doc["components"]["schemas"]
    return {"openai": schemas["OpenAIError"], "dashscope": schemas["DashScopeError"]}


@functools.cache
def _validator(key: str) -> jsonschema.Draft202012Validator:
    op_id, _, kind = key.partition(":")
    if kind == "error":
        return jsonschema.Draft202012Validator(error_schemas()[op_id])
    op = next(o for o in operations() if o.operation_id == op_id)
    return jsonschema.Draft202012Validator(op.response)


# -- JSON Schema -> strategy ------------------------------------------------------------------

#: Text, now and then with a lone UTF-16 surrogate (valid JSON as ``\ud800``, not Unicode).
texts = st.text(max_size=10) | st.sampled_from(["\ud800", "a\udfff", "\ud83d\ude00", "\x00"])
#: Keys the API knows somewhere, so that random objects hit fields the schemas leave open.
API_KEYS = [
    "type",
    "text",
    "value",
    "annotations",
    "function",
    "name",
    "parameters",
    "file_id",
    "file_ids",
    "tools",
    "role",
    "content",
    "metadata",
    "model",
    "instructions",
    "url",
    "detail",
    "code_interpreter",
    "file_search",
]
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(API_KEYS) | texts, inner, max_size=4)
    ),
    max_leaves=15,
)


def from_schema(schema: Mapping[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values that mostly satisfy ``schema`` (a resolved JSON Schema subset): valid-ish bodies."""
    if depth > 6:
        return json_scalars
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            base = {k: v for k, v in schema.items() if k != key}
            return st.one_of([from_schema({**base, **sub}, depth + 1) for sub in schema[key]])
    if "allOf" in schema:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for sub in schema["allOf"]:
            for k, v in sub.items():
                if k == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **v}
                elif k == "required":
                    merged["required"] = [*merged.get("required", []), *v]
                else:
                    merged.setdefault(k, v)
        return from_schema(merged, depth + 1)
    types = schema.get("type")
    if types is None:
        types = ["object"] if "properties" in schema else None
    if types is None:
        return json_values
    if isinstance(types, str):
        types = [types]
    return st.one_of([_typed(t, schema, depth) for t in types])


def _typed(kind: str, schema: Mapping[str, Any], depth: int) -> st.SearchStrategy[Any]:
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        low, high = schema.get("minimum"), schema.get("maximum")
        return st.floats(low, high, allow_nan=False, allow_infinity=False) | st.integers(
            None if low is None else int(low), None if high is None else int(high)
        )
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        return st.text(
            min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 24), 24)
        )
    if kind == "array":
        items = schema.get("items", {})
        return st.lists(
            from_schema(items, depth + 1) if items else json_values,
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 3), 3),
        )
    properties = schema.get("properties", {})
    required = [k for k in schema.get("required", []) if k in properties]
    fixed = st.fixed_dictionaries(
        {k: from_schema(properties[k], depth + 1) for k in required},
        optional={k: from_schema(v, depth + 1) for k, v in properties.items() if k not in required},
    )
    # Now and then a field the schema does not mention, with any value.
    fixed = st.tuples(
        fixed, st.dictionaries(st.sampled_from(API_KEYS), json_values, max_size=2) | st.just({})
    ).map(lambda pair: {**pair[1], **pair[0]})
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and not properties:
        names = schema.get("propertyNames", {})
        return st.dictionaries(
            st.text(max_size=min(names.get("maxLength", 8), 8)),
            from_schema(extra, depth + 1),
            max_size=min(schema.get("maxProperties", 4), 4),
        )
    return fixed


# -- requests ---------------------------------------------------------------------------------


@dataclass
class Request:
    """One request to send: a path already percent-encoded, and what it was drawn from."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    query: list[tuple[str, str]] = field(default_factory=list)
    content: bytes | None = None
    #: The documented path the request was drawn from (``/v1/threads/{thread_id}``).
    template: str | None = None

    def describe(self) -> str:
        body = (self.content or b"")[:300]
        return f"{self.method} {self.path} query={self.query} headers={self.headers} body={body!r}"


@dataclass
class Pool:
    """Ids of live objects (refilled when a fuzzed DELETE removes one)."""

    assistant: list[str] = field(default_factory=list)
    thread: list[str] = field(default_factory=list)
    message: list[tuple[str, str]] = field(default_factory=list)
    #: (thread, run) and (run, step) pairs: runs and steps are found under their parent only.
    run: list[tuple[str, str]] = field(default_factory=list)
    step: list[tuple[str, str]] = field(default_factory=list)
    file: list[str] = field(default_factory=list)
    vector_store: list[str] = field(default_factory=list)
    batch: list[str] = field(default_factory=list)
    upload: list[str] = field(default_factory=list)


_PREFIXES = {
    "assistant": ["asst_"],
    "thread": ["thread_"],
    "message": ["msg_", "message_"],
    "run": ["run_"],
    "step": ["step_"],
    "file": ["file-", "file_"],
    "vector_store": ["vs_"],
    "batch": ["vsfb_"],
    "upload": ["upload_"],
}


def _pick(draw: st.DrawFn, items: list[str]) -> str | None:
    """One of ``items``, drawn the same way however many there are (the pool changes between
    cases; Hypothesis needs the same choices to mean the same draws)."""
    index = draw(st.integers(0, 1 << 16))
    return items[index % len(items)] if items else None


#: Path parameters naming objects of another kind: a conversation is a thread, a response is a
#: run, a conversation item a message (``routes/conversations.py``, ``routes/responses.py``).
_SAME_AS = {"conversation": "thread", "response": "run", "item": "message"}


def _id_text(draw: st.DrawFn, kind: str, pool: Pool, parent: str | None) -> str:
    choice = draw(st.integers(0, 9))
    if choice <= 4:
        if kind in ("message", "run", "step"):
            pairs: list[tuple[str, str]] = getattr(pool, kind)
            matching = [c for p, c in pairs if p == parent] or [c for _, c in pairs]
            uid = _pick(draw, matching)
        else:
            uid = _pick(draw, getattr(pool, kind))
        return draw(st.sampled_from(_PREFIXES[kind])) + (uid or str(uuid.uuid4()))
    if choice == 5:
        return draw(st.sampled_from(_PREFIXES[kind])) + str(uuid.uuid4())
    if choice == 6:
        other = draw(st.sampled_from([k for k in _PREFIXES if k != kind]))
        ids = [i if isinstance(i, str) else i[1] for i in getattr(pool, other)]
        return _PREFIXES[other][0] + (_pick(draw, ids) or "x")
    if choice == 7:
        return draw(st.sampled_from(_PREFIXES[kind])) + draw(st.text(max_size=40))
    return draw(st.text(max_size=40))


def _encode(draw: st.DrawFn, value: str) -> str:
    if draw(st.integers(0, 9)) == 0:
        return quote(value, safe="/%?#.")  # path confusion: slashes, dots, stray escapes
    return quote(value, safe="")


AUTH_VARIANTS = [
    f"Bearer {KEY}",
    f"bearer {KEY}",
    f"Bearer  {KEY} ",
    "Bearer wrong",
    "Bearer ",
    "Bearer",
    "Basic Zm9vOmJhcg==",
    "",
    f"Token {KEY}",
    f"Bearer {KEY}x",
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "application/merge-patch+json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "",
    "application/json; charset=latin-1",
    ";",
    "json",
]


@st.composite
def _body(
    draw: st.DrawFn, schema: Mapping[str, Any] | None, pool: Pool | None = None
) -> bytes | None:
    kind = draw(st.integers(0, 19))
    if kind <= 8 and schema is not None:
        value = draw(from_schema(schema))
        real = draw(st.integers(0, 9)) < 7  # mostly an assistant that exists
        existing = _pick(draw, pool.assistant if pool is not None else [])
        if real and existing and isinstance(value, dict) and "assistant_id" in value:
            value["assistant_id"] = "asst_" + existing
        text = json.dumps(value, ensure_ascii=draw(st.booleans()))
        return text.encode("utf-8", "surrogatepass")
    if kind <= 11:
        return json.dumps(draw(json_values)).encode()
    if kind == 12:
        return None
    if kind == 13:
        return draw(st.sampled_from([b"", b" ", b"null", b'""', b"[]", b"{", b"NaN", b"1e999"]))
    if kind == 14:
        return draw(st.binary(max_size=64))
    if kind == 15:
        text = json.dumps(draw(json_values))
        return text[: draw(st.integers(0, len(text)))].encode("utf-8", "surrogatepass")
    if kind == 16:
        depth = draw(st.integers(100, 1100))
        if draw(st.booleans()):
            return b"[" * depth  # unterminated
        nested = b'{"a":' * depth + b"1" + b"}" * depth
        field = draw(st.sampled_from([b"tool_resources", b"response_format", b"metadata"]))
        return b'{"model":"m","' + field + b'":' + nested + b"}"
    if kind == 17:
        return b'{"metadata": "' + b"x" * draw(st.integers(MAX_BODY - 20, MAX_BODY + 50)) + b'"}'
    if kind == 18:
        return json.dumps(draw(json_values)).encode("utf-16", "surrogatepass")
    return b'{"model": "m", "model": 1, "\\ud800": "\\udfff"}'


@st.composite
def _headers(draw: st.DrawFn, content: bytes | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    valid = draw(st.integers(0, 9)) < 8
    auth = AUTH_VARIANTS[0] if valid else draw(st.sampled_from(AUTH_VARIANTS))
    if auth or draw(st.booleans()):
        headers["Authorization"] = auth
    if content is not None or draw(st.booleans()):
        headers["Content-Type"] = draw(
            st.sampled_from(CONTENT_TYPES[:2]) | st.sampled_from(CONTENT_TYPES)
        )
    if draw(st.integers(0, 9)) == 0:
        headers["Content-Length"] = draw(
            st.sampled_from(["0", "-1", "abc", "99999999999999999999", "1", " 5"])
        )
    if draw(st.integers(0, 9)) == 0:
        headers["Accept"] = draw(st.sampled_from(["text/event-stream", "*/*", "text/html"]))
    return headers


@st.composite
def _query(draw: st.DrawFn, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    query: list[tuple[str, str]] = []
    for name, schema in params.items():
        if draw(st.booleans()):
            continue
        value = draw(
            from_schema(schema).map(str)
            | st.sampled_from(["", "0", "-1", "101", "1e2", "asc ", "٣", "null", "msg_x"])
            | st.text(max_size=12)
        )
        query.append((name, value))
    if draw(st.integers(0, 4)) == 0:
        query.append((draw(st.text(max_size=6)), draw(st.text(max_size=6))))
    return query


@st.composite
def requests(draw: st.DrawFn, pool: Pool) -> Request:
    """A request drawn from the OpenAPI document (mostly) or from nowhere."""
    if draw(st.integers(0, 9)) == 0:
        prefix = draw(st.sampled_from(["/v1", "/api/v1", "", "/api", "/v2"]))
        segments = draw(
            st.lists(
                st.sampled_from(["assistants", "threads", "messages", "runs", "files", ".."])
                | st.text(max_size=8).map(lambda s: quote(s, safe="")),
                max_size=5,
            )
        )
        path = prefix + "/" + "/".join(segments)
        content = draw(_body(None))
        return Request(draw(st.sampled_from(METHODS)), path, draw(_headers(content)), [], content)
    with_body = [o for o in operations() if o.body is not None]
    op = draw(st.sampled_from(with_body) | st.sampled_from(operations()))
    path = op.path
    parent = None
    for name in op.path_params:
        kind = name.removesuffix("_id")
        kind = _SAME_AS.get(kind, kind)
        value = _id_text(draw, kind, pool, parent)
        parent = value.partition("_")[2]
        path = path.replace("{" + name + "}", _encode(draw, value))
    method = op.method if draw(st.integers(0, 9)) else draw(st.sampled_from(METHODS))
    content = draw(_body(op.body, pool)) if method in ("POST", "PATCH", "PUT") else None
    if content is None and draw(st.integers(0, 9)) == 0:
        content = draw(_body(op.body, pool))
    headers = draw(_headers(content))
    return Request(method, path, headers, draw(_query(op.query)), content, op.path)


# -- the app under test -----------------------------------------------------------------------


class Finding(AssertionError):
    """A response that breaks the contract, with the request that caused it."""


class ApiUnderTest:
    """The real app over a SQLite file, driven from synchronous code through a portal."""

    def __init__(self, database: Path, config: Mapping[str, Any] | None = None) -> None:
        self._stack = contextlib.ExitStack()
        self.portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
        options: dict[str, Any] = {
            "database": database,
            "api_keys": (KEY,),
            "max_body_bytes": MAX_BODY,
            "models": {"default": {"backend": "scripted", "delay_ms": 0}},
        }
        options.update(config or {})
        self.app = create_app(ServerConfig(**options))
        self.pool = Pool()
        self.portal.call(self._start)
        self.seed()

    async def _start(self) -> None:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://kit"
        )

    async def _stop(self) -> None:
        await self.client.aclose()
        await self._lifespan.__aexit__(None, None, None)

    def close(self) -> None:
        self.portal.call(self._stop)
        self._stack.close()

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request from synchronous code (a bearer key unless ``headers`` say otherwise)."""
        headers = kwargs.pop("headers", {"Authorization": f"Bearer {KEY}"})
        return self.portal.call(
            functools.partial(self.client.request, method, path, headers=headers, **kwargs)
        )

    def seed(self) -> None:
        """Live objects for the fuzzed ids to hit: assistants, threads, messages."""
        while len(self.pool.assistant) < 3:
            made = self.send("POST", "/v1/assistants", json={"model": "m", "name": "fuzz"})
            self.pool.assistant.append(made.json()["id"].removeprefix("asst_"))
        while len(self.pool.thread) < 3:
            made = self.send("POST", "/v1/threads", json={"messages": [{"content": "hi"}]})
            self.pool.thread.append(made.json()["id"].removeprefix("thread_"))
        threads = set(self.pool.thread)
        self.pool.message = [(t, m) for t, m in self.pool.message if t in threads]
        for thread in self.pool.thread:
            if not any(t == thread for t, _ in self.pool.message):
                made = self.send(
                    "POST", f"/v1/threads/thread_{thread}/messages", json={"content": "x"}
                )
                self.pool.message.append((thread, made.json()["id"].removeprefix("msg_")))
        runs = {r for _, r in self.pool.run}
        self.pool.step = [(r, s) for r, s in self.pool.step if r in runs]
        while len(self.pool.run) < 2:
            self._seed_run()
        while len(self.pool.file) < 2:  # what a built-in tool saves (an image)
            files = self.app.state.context.files
            saved = self.portal.call(files, b"\x89PNG\r\n\x1a\nfuzz", "fuzz.png", "image/png")
            self.pool.file.append(saved.id.removeprefix("file-"))
        while len(self.pool.vector_store) < 1:  # a store holding one of those files
            made = self.send(
                "POST", "/v1/vector_stores", json={"file_ids": ["file-" + self.pool.file[0]]}
            )
            self.pool.vector_store.append(made.json()["id"].removeprefix("vs_"))

    def _seed_run(self) -> None:
        """A finished run (on a new thread, added to the pool) and its steps."""
        body = {
            "assistant_id": "asst_" + self.pool.assistant[0],
            "thread": {"messages": [{"content": "hi"}]},
        }
        run = self.send("POST", "/v1/threads/runs", json=body).json()
        thread, run_id = run["thread_id"], run["id"]
        deadline = time.monotonic() + 10
        while run["status"] in ("queued", "in_progress") and time.monotonic() < deadline:
            time.sleep(0.01)
            run = self.send("GET", f"/v1/threads/{thread}/runs/{run_id}").json()
        steps = self.send("GET", f"/v1/threads/{thread}/runs/{run_id}/steps").json()["data"]
        thread_uid, run_uid = thread.removeprefix("thread_"), run_id.removeprefix("run_")
        self.pool.thread.append(thread_uid)
        self.pool.run.append((thread_uid, run_uid))
        self.pool.step += [(run_uid, s["id"].removeprefix("step_")) for s in steps]

    def check(self, request: Request) -> httpx.Response:
        """Send ``request``; raise ``Finding`` if the answer breaks the contract."""
        try:
            response = self.portal.call(
                functools.partial(
                    self.client.request,
                    request.method,
                    "http://kit" + request.path,  # absolute: httpx refuses "//x" as relative
                    params=request.query,
                    headers=request.headers,
                    content=request.content,
                )
            )
        except Exception as exc:
            raise Finding(
                f"the app raised {type(exc).__name__}: {exc}\n{request.describe()}\n"
                + "".join(traceback.format_exception(exc)[-6:])
            ) from exc
        try:
            check_response(request, response)
        except AssertionError as exc:
            raise Finding(
                f"{exc}\n{request.describe()}\n-> {response.status_code} {response.text[:500]}"
            ) from None
        if request.method == "DELETE" and response.status_code == 200:
            self._forget(response.json().get("id", ""))
        return response

    def _forget(self, wire_id: str) -> None:
        uid = wire_id.partition("_")[2]
        self.pool.assistant = [a for a in self.pool.assistant if a != uid]
        self.pool.thread = [t for t in self.pool.thread if t != uid]
        self.pool.message = [(t, m) for t, m in self.pool.message if m != uid]
        self.pool.run = [(t, r) for t, r in self.pool.run if t != uid]
        self.pool.file = [f for f in self.pool.file if f != uid]
        self.pool.vector_store = [v for v in self.pool.vector_store if v != uid]
        self.seed()


def check_response(request: Request, response: httpx.Response) -> None:
    status = response.status_code
    assert status < 500, f"server error {status}"
    assert status in ALLOWED_STATUSES, f"unexpected status {status}"
    if request.method == "HEAD":
        return
    if status == 200 and response.headers.get("content-type", "").startswith("text/event-stream"):
        _check_stream(response.text)
        return
    method = "GET" if request.method == "HEAD" else request.method
    sent = response.request.url.path  # after httpx normalised it: `runs/.` is `runs/`
    documented = [
        o
        for o in operations()
        if o.path == request.template and o.method == method and _template(o.path).match(sent)
    ]
    if status == 200 and documented and documented[0].response is None:
        return  # bytes: a file's content
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"a {status} whose body is not JSON") from None
    # The path the app saw: httpx normalises `..` segments before sending.
    dialect = dialect_of(response.request.url.path)
    if status >= 400:
        errors = sorted(_validator(f"{dialect}:error").iter_errors(body), key=str)
        assert not errors, f"{status} not in the {dialect} envelope: {errors[0].message}"
        request_id = response.headers.get("x-request-id")
        assert request_id, "an error without an x-request-id header"
        if dialect == "dashscope":
            assert body["request_id"] == request_id, "request_id differs from x-request-id"
        return
    for op in documented:
        if op.response is not None:
            errors = sorted(_validator(f"{op.operation_id}:ok").iter_errors(body), key=str)
            assert not errors, f"{op.operation_id} answer breaks the document: {errors[0].message}"


@functools.cache
def _template(path: str) -> re.Pattern[str]:
    """A documented path as a pattern of the paths it stands for."""
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")


def _check_stream(text: str) -> None:
    """An SSE body: events with JSON data, ending with ``done`` / ``[DONE]``."""
    frames = [f for f in text.split("\n\n") if f.strip()]
    assert frames, "an empty event stream"
    for frame in frames:
        data = [
            line.partition(":")[2].strip()
            for line in frame.splitlines()
            if line.startswith("data:")
        ]
        assert data, f"an event without data: {frame[:200]!r}"
        if data[0] != "[DONE]":
            json.loads(data[0])
    assert frames[-1].splitlines()[-1].partition(":")[2].strip() == "[DONE]", "no [DONE] at the end"


def app_routes(app: Any) -> Iterator[tuple[str, frozenset[str]]]:
    """Every (path, methods) the app routes, mounts walked recursively."""
    from starlette.routing import Mount, Route

    def walk(routes: Any, prefix: str) -> Iterator[tuple[str, frozenset[str]]]:
        for route in routes:
            if isinstance(route, Mount):
                yield from walk(route.routes, prefix + route.path)
            elif isinstance(route, Route):
                methods = frozenset(route.methods or ()) - {"HEAD"}
                yield prefix + route.path, methods

    yield from walk(app.routes, "")
