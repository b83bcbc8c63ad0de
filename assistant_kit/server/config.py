"""What a server is built from: ``ServerConfig``; ``config_from_kit`` reads kit.yaml's ``server:``.

``kit serve`` and the kit's embedded ``local`` target build their server the same way::

    config = config_from_kit(project.server, base_dir=project.root, database=".kit/server.db")
    app = create_app(config)

``models`` becomes a ``ModelRouter`` (``default`` catches every other name; without any routes
every name goes to the in-process llama-cpp model), ``tools`` / ``plugins`` / ``allowed_hosts``
become the built-in tool registry, ``run_expiry_s`` the run expiry, ``embeddings`` the
endpoint vector store search uses, ``files`` (``max_bytes``, ``total_bytes``) the upload
limits. Relative paths (model scripts, a search corpus) are read from ``base_dir``. The app
closes the router and the tools it was given this way when it shuts down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant_kit.errors import ConfigError
from assistant_kit.server.auth import TrustedHosts
from assistant_kit.server.knowledge.embeddings import EmbeddingsConfig
from assistant_kit.server.models.base import ModelBackend
from assistant_kit.server.models.routing import ModelRouter
from assistant_kit.server.tools.base import SaveFile
from assistant_kit.server.tools.registry import build_tools
from assistant_kit.server.tools.runner import Tools

if TYPE_CHECKING:
    from assistant_kit.server.routes.context import RouteFactory


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything the app is built from; later runtime parts add fields here.

    ``api_keys`` empty means "any non-empty bearer key", which ``create_app`` only allows when
    ``host`` is a loopback address.
    """

    database: str | Path = ":memory:"
    api_keys: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8900
    #: The ``Host`` header values answered (others get a 400): ``None`` answers any, which suits
    #: the in-process app (no socket, nothing to rebind); ``kit serve`` always sets it, see
    #: ``TrustedHosts.for_server``.
    trusted_hosts: TrustedHosts | None = None
    #: Request bodies larger than this get a 413.
    max_body_bytes: int = 2 * 1024 * 1024
    #: Extra route factories by mount path (``"/v1"``), matched before the built-in tables.
    extra_routes: Mapping[str, Sequence[RouteFactory]] = field(default_factory=dict)
    #: Model routing: a ``ModelRouter``, or kit.yaml's ``server.models`` mapping (names to
    #: ``{backend: ...}`` or to ``ModelBackend`` instances); ``None`` routes every name to the
    #: default in-process llama-cpp backend.
    models: ModelRouter | Mapping[str, ModelBackend | Mapping[str, Any]] | None = None
    #: Built-in tools by type (``code_interpreter``, ``quark_search``, ``text_to_image``, plugin
    #: ids); a run's tool entry of a type nobody serves is not shown to the model.
    tools: Tools = field(default_factory=dict)
    #: Seconds until an unfinished run expires (also while it waits for tool outputs).
    run_expiry_s: float = 600.0
    #: Seconds the event log of a finished run is kept, then deleted (kit.yaml
    #: ``server.event_retention_s``).
    event_retention_s: float = 3600.0
    #: Model calls per run before the last call is made with ``tool_choice: none``.
    max_model_calls: int = 25
    #: Resume on start-up the runs a crash left (``kit serve``); False cancels them (the embedded
    #: server of a ``kit`` command: the process that wanted them is gone).
    resume_runs: bool = True
    #: Where built-in tools save files (images); ``None``: the store's ``files`` table, served
    #: at ``/v1/files/{id}/content`` and ``/api/v1/files/{id}/content``.
    save_file: SaveFile | None = None
    #: Seconds of silence after which an open SSE stream sends a ``: keep-alive`` comment.
    sse_keepalive_s: float = 15.0
    #: An OpenAI-compatible embeddings endpoint for vector store search (``None``: BM25 alone).
    embeddings: EmbeddingsConfig | None = None
    #: The largest uploaded file, and all stored files together (413 / 507 beyond them).
    max_file_bytes: int = 512 * 1024 * 1024
    max_files_total_bytes: int = 10 * 1024 * 1024 * 1024


def config_from_kit(
    section: Mapping[str, Any] | None,
    *,
    base_dir: str | Path,
    run_expiry_s: float | None = None,
    **fields: Any,
) -> ServerConfig:
    """The server configuration kit.yaml's ``server`` mapping describes, plus ``fields``
    (``database``, ``api_keys``, ``host``, ``port``...); ``run_expiry_s`` overrides kit.yaml's."""
    section = section or {}
    if not isinstance(section, Mapping):
        raise ConfigError("kit.yaml: `server` must be a mapping")
    base = Path(base_dir)
    expiry = run_expiry_s if run_expiry_s is not None else section.get("run_expiry_s", 600.0)
    if isinstance(expiry, bool) or not isinstance(expiry, (int, float)) or expiry <= 0:
        raise ConfigError("kit.yaml: server.run_expiry_s must be a number of seconds above 0")
    embeddings = section.get("embeddings")
    limits = section.get("files") or {}
    for key in ("max_bytes", "total_bytes"):
        value = limits.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise ConfigError(f"kit.yaml: server.files.{key} must be a positive number of bytes")
    if "max_bytes" in limits:
        fields.setdefault("max_file_bytes", limits["max_bytes"])
    if "total_bytes" in limits:
        fields.setdefault("max_files_total_bytes", limits["total_bytes"])
    retention = section.get("event_retention_s", 3600.0)
    if isinstance(retention, bool) or not isinstance(retention, (int, float)) or retention <= 0:
        raise ConfigError("kit.yaml: server.event_retention_s must be a number of seconds above 0")
    return ServerConfig(
        models=ModelRouter(section.get("models") or None, base_dir=base),
        tools=build_tools(section, base_dir=base),
        run_expiry_s=float(expiry),
        embeddings=None if embeddings is None else EmbeddingsConfig.from_mapping(embeddings),
        event_retention_s=float(retention),
        **fields,
    )
