"""``ServerConfig`` from kit.yaml's ``server:`` section: model routes, built-in tools, expiry.

``kit serve`` and the kit's embedded ``local`` target build their server the same way::

    config = config_from_kit(project.server, base_dir=project.root, database=".kit/server.db")
    app = create_app(config)

``models`` becomes a ``ModelRouter`` (``default`` catches every other name; without any routes
every name goes to the in-process llama-cpp model), ``tools`` / ``plugins`` / ``allowed_hosts``
become the built-in tool registry, ``run_expiry_s`` the run expiry. Relative paths (model
scripts, a search corpus) are read from ``base_dir``. The app closes the router and the tools it
was given this way when it shuts down.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from assistant_kit.errors import ConfigError
from assistant_kit.server.app import ServerConfig
from assistant_kit.server.models.routing import ModelRouter
from assistant_kit.server.tools.registry import build_tools


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
    return ServerConfig(
        models=ModelRouter(section.get("models") or None, base_dir=base),
        tools=build_tools(section, base_dir=base),
        run_expiry_s=float(expiry),
        **fields,
    )
