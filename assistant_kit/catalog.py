"""The kit's facts, in one place: metadata marks, built-in tools, what each wire dialect takes.

A ground-floor module: it imports nothing of the kit, and spec, sync, testing and the server
read these facts from here instead of keeping copies. The JSON Schemas under ``schemas/`` repeat
some of them as enums (editors read the schemas without Python); a test keeps the two equal::

    canonical_tool("search")                 # "quark_search"
    tool_names()                             # every built-in type and older name
    SETTINGS["openai"]                       # ("temperature", "top_p")
    WIRE_DIALECTS["dashscope"].base_path     # "/api/v1"
    {KIT_NAME: "art-maestro", KIT_DIGEST: digest}     # what `kit apply` writes on an assistant
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BUILTIN_TOOLS",
    "DEFAULTS",
    "DIALECTS",
    "KIT_DIGEST",
    "KIT_NAME",
    "KIT_PROJECT",
    "KIT_TEST",
    "MARKS",
    "MAX_METADATA",
    "RESERVED_TOOL_TYPES",
    "SETTINGS",
    "TOOL_ALIASES",
    "WIRE_DIALECTS",
    "BuiltinToolInfo",
    "WireDialect",
    "aliases_of",
    "canonical_tool",
    "tool_names",
]

# -- metadata marks -----------------------------------------------------------------------------

#: Metadata key naming the spec a remote assistant is managed as (written by `kit apply`).
KIT_NAME = "kit_name"
#: Metadata key holding the digest of what `kit apply` last wrote (drift detection).
KIT_DIGEST = "kit_digest"
#: Metadata key on what `kit test` and `kit chat` create for themselves (temporary assistants,
#: test threads, the judge). Never ``kit_name``: a run that dies half-way leaves nothing that
#: `kit plan` would take for an applied assistant.
KIT_TEST = "kit_test"
#: Metadata key naming the project (kit.yaml ``project``) that manages a remote assistant: two
#: projects on one target never see, update or prune each other's assistants.
KIT_PROJECT = "kit_project"
#: The marks `kit apply` writes; spec metadata may not use these keys.
MARKS: tuple[str, ...] = (KIT_NAME, KIT_DIGEST, KIT_PROJECT)
#: Metadata pairs the APIs allow on an object (a spec gets this less ``len(MARKS)``).
MAX_METADATA = 16

# -- built-in tools -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuiltinToolInfo:
    """A tool the server runs itself: its type today and the older names it answers to."""

    type: str
    aliases: tuple[str, ...] = ()


#: The built-in tools a spec may name (plug-ins aside), in the order docs list them.
BUILTIN_TOOLS: tuple[BuiltinToolInfo, ...] = (
    BuiltinToolInfo("code_interpreter"),
    BuiltinToolInfo("quark_search", ("search",)),
    BuiltinToolInfo("text_to_image", ("wanx",)),
)
#: Older tool names -> the names the APIs use today.
TOOL_ALIASES: Mapping[str, str] = {
    alias: tool.type for tool in BUILTIN_TOOLS for alias in tool.aliases
}
#: Tool types that are not built-ins but still may not be a plug-in's id.
RESERVED_TOOL_TYPES: tuple[str, ...] = ("function", "plugin", "file_search")


def canonical_tool(kind: str) -> str:
    """``kind`` with an older name resolved (``search`` -> ``quark_search``); others unchanged."""
    return TOOL_ALIASES.get(kind, kind)


def aliases_of(kind: str) -> tuple[str, ...]:
    """The older names of the built-in ``kind`` (``()`` for anything else)."""
    return next((t.aliases for t in BUILTIN_TOOLS if t.type == kind), ())


def tool_names(*, aliases: bool = True) -> tuple[str, ...]:
    """Every built-in tool type, each followed by its older names unless ``aliases=False``."""
    if not aliases:
        return tuple(t.type for t in BUILTIN_TOOLS)
    return tuple(name for t in BUILTIN_TOOLS for name in (t.type, *t.aliases))


# -- wire dialects -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WireDialect:
    """What the client side knows of one wire dialect: the body it sends and where it is served.

    A new dialect is one entry in ``WIRE_DIALECTS`` here, one ``AssistantClient`` module in
    ``api/`` and its line in ``api.registry.CLIENTS``; nothing else on the client side asks which
    dialect it holds.
    """

    name: str
    #: Sampling settings it stores on an assistant, in the order bodies list them.
    settings: tuple[str, ...]
    #: Values it reports for a setting nobody set (they compare equal to "not set").
    defaults: Mapping[str, Any]
    #: The path its API is served under (``kit serve`` and the embedded server mount it there).
    base_path: str
    #: The hosted API's root, for a target of this provider with no ``base_url``.
    default_base_url: str
    #: Assistant bodies carry ``file_ids`` (always, ``[]`` when there are none).
    sends_file_ids: bool = False
    #: Assistant bodies carry ``metadata`` as ``null`` when it is empty (else ``{}``).
    metadata_none_when_empty: bool = False


#: Every wire dialect the client speaks, by name.
WIRE_DIALECTS: Mapping[str, WireDialect] = {
    dialect.name: dialect
    for dialect in (
        WireDialect(
            "dashscope",
            settings=("top_p", "top_k", "temperature", "max_tokens"),
            defaults={},
            base_path="/api/v1",
            default_base_url="https://dashscope.aliyuncs.com/api/v1",
            # its SDK always sends file_ids, and metadata null when there is none
            sends_file_ids=True,
            metadata_none_when_empty=True,
        ),
        WireDialect(
            "openai",
            settings=("temperature", "top_p"),
            defaults={"temperature": 1.0, "top_p": 1.0},
            base_path="/v1",
            default_base_url="https://api.openai.com/v1",
        ),
    )
}
#: The dialect names, in ``WIRE_DIALECTS`` order.
DIALECTS: tuple[str, ...] = tuple(WIRE_DIALECTS)
#: Sampling settings each wire dialect stores on an assistant, in the order bodies list them.
SETTINGS: Mapping[str, tuple[str, ...]] = {n: d.settings for n, d in WIRE_DIALECTS.items()}
#: Values a dialect reports for a setting nobody set (they compare equal to "not set").
DEFAULTS: Mapping[str, Mapping[str, Any]] = {n: d.defaults for n, d in WIRE_DIALECTS.items()}
