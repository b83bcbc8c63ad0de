"""Typed, immutable assistant specs and the exact API bodies they stand for.

An ``AssistantSpec`` is what a spec file means once it is valid and rendered: the rest of the kit
never touches raw YAML. ``to_payload(dialect)`` gives the create/update body for the DashScope
dialect or the OpenAI Assistants v2 dialect, and ``digest(dialect)`` the sha256 of its canonical
JSON, which sync uses to see drift::

    spec = project.spec("art-maestro")
    body = spec.to_payload("dashscope")   # {"model": "qwen-max", "name": "Art Maestro", ...}
    spec.digest("dashscope")              # "3f2a91..."
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from assistant_kit.catalog import DIALECTS, WIRE_DIALECTS, canonical_tool
from assistant_kit.errors import ConfigError

__all__ = [
    "DIALECTS",
    "AssistantSpec",
    "Dialect",
    "Expectation",
    "MockCase",
    "MockOutcome",
    "MockSpec",
    "Settings",
    "TestCase",
    "ToolSpec",
    "Turn",
    "canonical_json",
]

#: The name of a wire dialect a payload can be written in: one of ``DIALECTS`` (each is an entry
#: of ``catalog.WIRE_DIALECTS``, which says what its bodies carry).
Dialect = str

#: ``line_of(path)``: the 1-based line of the value at a path of the spec file (0: unknown).
LineOf = Callable[[tuple[str | int, ...]], int]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text (digests use it)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _no_line(path: tuple[str | int, ...]) -> int:
    return 0


def _check_dialect(dialect: str) -> None:
    if dialect not in DIALECTS:
        raise ConfigError(f"unknown dialect {dialect!r}: use one of {', '.join(DIALECTS)}")


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool. ``type`` is normalised: ``function``, ``code_interpreter``, ``quark_search``,
    ``text_to_image`` or ``plugin`` (aliases ``search`` / ``wanx`` are resolved)."""

    type: str
    name: str | None = None
    description: str | None = None
    parameters: Mapping[str, Any] | None = None
    plugin_id: str | None = None
    auth_env: str | None = None
    auth_type: str = "user_http"

    @property
    def key(self) -> str:
        """What identifies the tool within an assistant: function name, plug-in id, or type."""
        return self.name or self.plugin_id or self.type

    @classmethod
    def from_data(cls, data: str | Mapping[str, Any]) -> ToolSpec:
        """A tool from its (valid) spec form: a bare built-in name or a mapping with ``type``."""
        if isinstance(data, str):
            return cls(type=canonical_tool(data))
        kind = canonical_tool(data["type"])
        if kind == "function":
            return cls(
                type="function",
                name=data["name"],
                description=data.get("description"),
                parameters=data.get("parameters"),
            )
        if kind == "plugin":
            auth = data.get("auth") or {}
            return cls(
                type="plugin",
                plugin_id=data["id"],
                auth_env=auth.get("env"),
                auth_type=auth.get("type", "user_http"),
            )
        return cls(type=kind)

    def to_payload(
        self, dialect: Dialect, *, environ: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """The tool as the API takes it. Plug-in tokens are read from ``environ`` when given;
        without it the token is the placeholder ``${VAR}`` (so nothing secret is printed)."""
        _check_dialect(dialect)
        if self.type == "function":
            function: dict[str, Any] = {"name": self.name}
            if self.description is not None:
                function["description"] = self.description
            if self.parameters is not None:
                function["parameters"] = _plain(self.parameters)
            return {"type": "function", "function": function}
        if self.type == "plugin":
            body: dict[str, Any] = {"type": self.plugin_id}
            if self.auth_env is not None:
                if environ is None:
                    token = "${" + self.auth_env + "}"
                elif self.auth_env in environ:
                    token = environ[self.auth_env]
                else:
                    raise ConfigError(
                        f"plug-in `{self.plugin_id}` needs its token in the environment variable "
                        f"{self.auth_env}, which is not set"
                    )
                body["auth"] = {"type": self.auth_type, "user_token": token}
            return body
        return {"type": self.type}


@dataclass(frozen=True, slots=True)
class Settings:
    """Sampling settings; ``None`` means "not set" (the target's default applies)."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Only the fields that are set."""
        values = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "max_tokens": self.max_tokens,
        }
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True, slots=True)
class MockOutcome:
    """What one mocked call gives: ``returns`` (any JSON value or text) or an ``error`` text."""

    returns: Any = None
    error: str | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> MockOutcome:
        return cls(returns=data.get("returns"), error=data.get("error"))


@dataclass(frozen=True, slots=True)
class MockCase:
    """A ``when`` entry: the arguments to match and the outcome of a match."""

    args: Mapping[str, Any]
    outcome: MockOutcome


@dataclass(frozen=True, slots=True)
class MockSpec:
    """A mocked function tool. ``kind`` says which field applies:

    * ``returns``: every call gives ``returns``;
    * ``sequence``: successive calls give successive items (the last repeats);
    * ``error``: every call fails with ``error`` as the tool output;
    * ``when``: the first case whose ``args`` match decides, else ``default`` (else an error).
    """

    tool: str
    kind: Literal["returns", "sequence", "error", "when"]
    returns: Any = None
    sequence: tuple[Any, ...] = ()
    error: str | None = None
    when: tuple[MockCase, ...] = ()
    default: MockOutcome | None = None

    @classmethod
    def from_data(cls, tool: str, data: Mapping[str, Any]) -> MockSpec:
        if "sequence" in data:
            return cls(tool, "sequence", sequence=tuple(data["sequence"]))
        if "error" in data:
            return cls(tool, "error", error=data["error"])
        if "when" in data:
            cases = tuple(MockCase(dict(c["args"]), MockOutcome.from_data(c)) for c in data["when"])
            default = MockOutcome.from_data(data["default"]) if "default" in data else None
            return cls(tool, "when", when=cases, default=default)
        return cls(tool, "returns", returns=data.get("returns"))


def _mocks(data: Any) -> Mapping[str, MockSpec]:
    if not isinstance(data, Mapping):
        return {}
    return {tool: MockSpec.from_data(tool, mock) for tool, mock in data.items()}


@dataclass(frozen=True, slots=True)
class Expectation:
    """One assertion on a reply: ``kind`` is its key (``contains``, ``tool_called``, ``judge``...),
    ``value`` the YAML value as written, ``negate`` true under ``not:``."""

    kind: str
    value: Any
    negate: bool = False
    line: int = 0

    @classmethod
    def from_data(cls, data: Mapping[str, Any], line: int = 0) -> Expectation:
        negate = False
        while set(data) == {"not"}:
            negate = not negate
            data = data["not"]
        ((kind, value),) = data.items()
        return cls(kind=kind, value=value, negate=negate, line=line)


@dataclass(frozen=True, slots=True)
class Turn:
    """One user message, what the reply must satisfy, and mocks that override the test's."""

    user: str
    expect: tuple[Expectation, ...] = ()
    mocks: Mapping[str, MockSpec] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True, slots=True)
class TestCase:
    """A conversation test declared in a spec's ``tests:``."""

    __test__ = False  # not a pytest test class

    name: str
    turns: tuple[Turn, ...]
    mocks: Mapping[str, MockSpec] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    skip: bool | str = False
    repeat: int = 1
    min_pass: int | None = None
    timeout: float | None = None
    file: str = ""
    line: int = 0

    @classmethod
    def from_data(
        cls,
        data: Mapping[str, Any],
        *,
        file: str = "",
        path: tuple[str | int, ...] = (),
        line_of: LineOf = _no_line,
    ) -> TestCase:
        turns = []
        for t, turn in enumerate(data["turns"]):
            turn_path = (*path, "turns", t)
            expect = tuple(
                Expectation.from_data(item, line_of((*turn_path, "expect", e)))
                for e, item in enumerate(turn.get("expect") or [])
            )
            turns.append(Turn(turn["user"], expect, _mocks(turn.get("mocks")), line_of(turn_path)))
        return cls(
            name=data["name"],
            turns=tuple(turns),
            mocks=_mocks(data.get("mocks")),
            tags=tuple(data.get("tags") or ()),
            skip=data.get("skip", False),
            repeat=data.get("repeat", 1),
            min_pass=data.get("min_pass"),
            timeout=data.get("timeout"),
            file=file,
            line=line_of(path),
        )


@dataclass(frozen=True, slots=True)
class AssistantSpec:
    """One assistant, validated and rendered. ``name`` is its identity on every target;
    ``instructions`` holds the rendered text (``template`` the Jinja2 source)."""

    name: str
    model: str
    display_name: str | None = None
    description: str | None = None
    instructions: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    settings: Settings = field(default_factory=Settings)
    metadata: Mapping[str, str] = field(default_factory=dict)
    vars: Mapping[str, Any] = field(default_factory=dict)
    tests: tuple[TestCase, ...] = ()
    template: str | None = None
    file: str = ""
    line: int = 0

    @property
    def api_name(self) -> str:
        """The API's ``name`` field: ``display_name``, else ``name``."""
        return self.display_name or self.name

    def test(self, name: str) -> TestCase:
        """The test called ``name`` (``KeyError`` if there is none)."""
        for case in self.tests:
            if case.name == name:
                return case
        raise KeyError(name)

    def to_payload(
        self, dialect: Dialect, *, environ: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """The create/update body for ``dialect`` (a name in ``DIALECTS``).

        The dialect's ``catalog.WIRE_DIALECTS`` entry says what the body carries: DashScope sends
        the fields and order its SDK sends (``file_ids`` and ``metadata`` always, ``metadata``
        null when empty; the sampling fields at the top level), OpenAI Assistants v2
        ``temperature`` and ``top_p`` only. ``description`` and ``instructions`` left out
        of the spec are left out of the body (the target keeps its value); written as ``null``
        they are sent as ``""`` (cleared).
        """
        _check_dialect(dialect)
        body: dict[str, Any] = {"model": self.model, "name": self.api_name}
        if self.description is not None:
            body["description"] = self.description
        if self.instructions is not None:
            body["instructions"] = self.instructions
        body["tools"] = [tool.to_payload(dialect, environ=environ) for tool in self.tools]
        wire = WIRE_DIALECTS[dialect]
        if wire.sends_file_ids:
            body["file_ids"] = []
        metadata = dict(self.metadata)
        body["metadata"] = (metadata or None) if wire.metadata_none_when_empty else metadata
        sampling = self.settings.as_dict()
        for key in wire.settings:
            if key in sampling:
                body[key] = sampling[key]
        return body

    def digest(self, dialect: Dialect = "dashscope") -> str:
        """sha256 (hex) of the canonical JSON of ``to_payload(dialect)``, secrets not resolved."""
        return hashlib.sha256(canonical_json(self.to_payload(dialect)).encode("utf-8")).hexdigest()

    @classmethod
    def from_data(
        cls,
        data: Mapping[str, Any],
        *,
        instructions: str | None = None,
        file: str = "",
        line_of: LineOf = _no_line,
    ) -> AssistantSpec:
        """An ``AssistantSpec`` from a valid spec mapping and its rendered ``instructions``."""
        settings = data.get("settings") or {}
        return cls(
            name=data["name"],
            model=data["model"],
            display_name=data.get("display_name"),
            description=_clearable(data, "description"),
            instructions="" if instructions is None and "instructions" in data else instructions,
            tools=tuple(ToolSpec.from_data(t) for t in data.get("tools") or ()),
            settings=Settings(
                temperature=settings.get("temperature"),
                top_p=settings.get("top_p"),
                top_k=settings.get("top_k"),
                max_tokens=settings.get("max_tokens"),
            ),
            metadata=dict(data.get("metadata") or {}),
            vars=dict(data.get("vars") or {}),
            tests=tuple(
                TestCase.from_data(t, file=file, path=("tests", i), line_of=line_of)
                for i, t in enumerate(data.get("tests") or ())
            ),
            template=data.get("instructions"),
            file=file,
            line=line_of(()),
        )


def _clearable(data: Mapping[str, Any], key: str) -> str | None:
    """A text field: absent -> None (left alone on the target), ``null`` -> "" (cleared)."""
    if key not in data:
        return None
    value = data[key]
    return "" if value is None else str(value)


def _plain(value: Any) -> Any:
    """A deep copy made of dicts and lists, so payloads never share state with specs."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
