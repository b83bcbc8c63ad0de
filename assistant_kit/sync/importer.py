"""``kit import``: spec files for remote assistants the kit does not manage yet.

A remote assistant becomes a spec file that renders back to what the target holds: instructions
as YAML block text (guarded with ``{% raw %}`` when they contain Jinja2 markers), tools in the
short forms (``- code_interpreter``, ``{type: function, name: ...}``, ``{type: plugin, id: ...}``),
settings and metadata. Import then writes the ``kit_name`` mark on the remote, so the next plan
matches the two; that plan changes nothing but the marks (``kit_digest`` is written by apply)::

    imported = await import_assistants(client, folder, dialect="openai", ids=["asst_1"])
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from assistant_kit.api.base import AssistantClient, AssistantParams, RemoteAssistant
from assistant_kit.catalog import (
    DEFAULTS,
    KIT_NAME,
    KIT_PROJECT,
    MARKS,
    MAX_METADATA,
    SETTINGS,
    canonical_tool,
    tool_names,
)
from assistant_kit.errors import ConfigError
from assistant_kit.spec.model import Dialect
from assistant_kit.sync.diff import managed_name
from assistant_kit.sync.plan import list_remote
from assistant_kit.sync.retry import RetryPolicy

__all__ = ["Imported", "import_assistants", "slug_for", "spec_data", "spec_yaml"]

SCHEMA_HEADER = "# yaml-language-server: $schema=../schemas/assistant.schema.json\n"
#: Metadata pairs a spec may hold: the APIs' 16 less the kit's marks.
MAX_USER_METADATA = MAX_METADATA - len(MARKS)
_JINJA = re.compile(r"\{[{%#]")
_ENDRAW = re.compile(r"\{%-?\s*endraw\b")


@dataclass(frozen=True, slots=True)
class Imported:
    """One imported assistant: its remote id, the spec name given, the file written."""

    id: str
    name: str
    path: Path
    notes: tuple[str, ...] = ()


def slug_for(remote: RemoteAssistant, taken: Collection[str]) -> str:
    """A spec name for ``remote`` from its display name (else its id), unique among ``taken``."""
    base = re.sub(r"[^a-z0-9]+", "-", (remote.name or "").lower()).strip("-_")[:56]
    if not base:
        base = re.sub(r"[^a-z0-9]+", "-", remote.id.lower()).strip("-")[:56] or "assistant"
    name, n = base, 2
    while name in taken:
        name = f"{base}-{n}"
        n += 1
    return name


def _env_name(plugin_id: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", f"{plugin_id.upper()}_TOKEN")


def _tool(tool: Mapping[str, Any], notes: list[str]) -> Any:
    kind = str(tool.get("type") or "")
    kind = canonical_tool(kind)
    if kind in tool_names(aliases=False):
        return kind
    if kind == "function":
        function = tool.get("function") or {}
        out: dict[str, Any] = {"type": "function", "name": function.get("name")}
        if function.get("description"):
            out["description"] = function["description"]
        if function.get("parameters") is not None:
            out["parameters"] = function["parameters"]
        return out
    plugin: dict[str, Any] = {"type": "plugin", "id": kind}
    auth = tool.get("auth")
    if isinstance(auth, Mapping):
        env = _env_name(kind)
        plugin["auth"] = {"env": env}
        if auth.get("type", "user_http") != "user_http":
            plugin["auth"]["type"] = auth["type"]
        notes.append(f"plug-in `{kind}`: its token is not imported; apply reads it from ${env}")
    extra = sorted(set(tool) - {"type", "auth"})
    if extra:
        notes.append(f"tool `{kind}`: fields {', '.join(extra)} cannot be written in a spec")
    return plugin


def _template(text: str) -> str:
    """Jinja2 source that renders to ``text`` (the renderer drops one trailing newline)."""
    if _JINJA.search(text):
        if _ENDRAW.search(text):  # a raw block cannot hold its own end: quote each marker
            text = _JINJA.sub(lambda m: "{{ " + repr(m.group()) + " }}", text)
        else:
            text = "{% raw %}" + text + "{% endraw %}"
    return text + "\n"


def spec_data(
    remote: RemoteAssistant, name: str, dialect: Dialect
) -> tuple[dict[str, Any], list[str]]:
    """The spec mapping (in file order) for ``remote`` under spec ``name``, and notes."""
    notes: list[str] = []
    data: dict[str, Any] = {"name": name}
    if remote.name and remote.name != name:
        data["display_name"] = remote.name
    data["model"] = remote.model
    if remote.description:
        data["description"] = remote.description
    if remote.instructions:
        data["instructions"] = _template(remote.instructions)
    if remote.tools:
        data["tools"] = [_tool(t, notes) for t in remote.tools]
    settings = {}
    defaults = DEFAULTS[dialect]
    for key in SETTINGS[dialect]:
        value = getattr(remote, key)
        if value is not None and not (key in defaults and value == defaults[key]):
            settings[key] = value
    if settings:
        data["settings"] = settings
    metadata = {k: v for k, v in remote.metadata.items() if k not in MARKS}
    if metadata:
        data["metadata"] = metadata
    if remote.file_ids:
        notes.append("file_ids are not part of a spec; they stay on the target as they are")
    return data, notes


class _Dumper(yaml.SafeDumper):
    """Block style with list items indented under their key, as people write YAML."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def spec_yaml(data: Mapping[str, Any]) -> str:
    """The spec file text: the schema header, then ``data`` in its own key order."""
    body = yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return SCHEMA_HEADER + body


async def import_assistants(
    client: AssistantClient,
    folder: Path,
    *,
    dialect: Dialect,
    ids: Sequence[str] = (),
    taken: Collection[str] = (),
    retry: RetryPolicy | None = None,
    force: bool = False,
    project: str | None = None,
) -> list[Imported]:
    """Write a spec file in ``folder`` for each unmanaged remote assistant (``ids``, or all).

    ``taken`` are spec names already in use. Each imported remote gets the ``kit_name`` mark
    (and ``kit_project`` when ``project`` is given).
    Raises ``ConfigError`` for an unknown or already managed id, or a file in the way.
    """
    policy = retry or RetryPolicy()
    remotes, _ = await list_remote(client, retry=policy)
    by_id = {r.id: r for r in remotes}
    if ids:
        chosen = []
        for remote_id in ids:
            remote = by_id.get(remote_id)
            if remote is None:
                raise ConfigError(f"no assistant {remote_id} on the target")
            if managed_name(remote) is not None:
                raise ConfigError(
                    f"{remote_id} is already managed as `{managed_name(remote)}`; nothing to import"
                )
            chosen.append(remote)
    else:
        chosen = [r for r in remotes if managed_name(r) is None]
    names = set(taken) | {n for r in remotes if (n := managed_name(r)) is not None}
    planned: list[tuple[RemoteAssistant, str, Path, str, list[str]]] = []
    for remote in chosen:
        own = [k for k in remote.metadata if k not in MARKS]
        if len(own) > MAX_USER_METADATA:
            # the spec could not hold them, nor the target the kit's marks beside them
            raise ConfigError(
                f"{remote.id} has {len(own)} metadata pairs; a spec holds at most "
                f"{MAX_USER_METADATA} (the kit's marks take {len(MARKS)} of the 16): "
                "remove some first"
            )
        name = slug_for(remote, names)
        names.add(name)
        data, notes = spec_data(remote, name, dialect)
        path = folder / f"{name}.yaml"
        if path.exists() and not force:
            raise ConfigError(f"{path} already exists; use --force to overwrite")
        planned.append((remote, name, path, spec_yaml(data), notes))
    folder.mkdir(parents=True, exist_ok=True)
    imported = []
    for remote, name, path, text, notes in planned:
        path.write_text(text, encoding="utf-8")
        metadata = {**remote.metadata, KIT_NAME: name}
        if project is not None:
            metadata[KIT_PROJECT] = project
        rid = remote.id
        await policy.call(
            lambda rid=rid, metadata=metadata: client.update_assistant(  # type: ignore[misc]
                rid, AssistantParams(metadata=metadata)
            )
        )
        imported.append(Imported(remote.id, name, path, tuple(notes)))
    return imported
