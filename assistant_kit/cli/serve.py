"""`kit serve`: the Assistant API server on a port."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import click

from assistant_kit.errors import ConfigError

#: Where `kit serve` keeps its state unless --db says otherwise (relative to the project).
DEFAULT_DB = Path(".kit") / "server.db"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    default=8900,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on.",
)
@click.option(
    "--db",
    "database",
    default=None,
    help="SQLite file of the store (default .kit/server.db; ':memory:' keeps nothing).",
)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    help="An accepted bearer key (repeatable; also KIT_SERVER_API_KEYS, comma separated).",
)
@click.option(
    "--trusted-host",
    "trusted_hosts",
    multiple=True,
    metavar="NAME",
    help="A Host name to answer besides loopback ones (repeatable; also kit.yaml "
    "server.trusted_hosts; '*' for any). Without keys only loopback names are answered; with "
    "keys and no names, any.",
)
@click.option(
    "--config",
    "config_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="kit.yaml to read `server:` from (model routing, tools, run expiry); "
    "default: the nearest kit.yaml above the current folder.",
)
@click.option(
    "--run-expiry",
    "run_expiry",
    default=None,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds until an unfinished run expires (default: kit.yaml server.run_expiry_s or 600).",
)
@click.option(
    "--log-level",
    default=None,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="uvicorn's log level (default warning; -v or KIT_LOG=info: info, each request; "
    "-vv: debug).",
)
@click.option(
    "--root-path",
    default="",
    metavar="PATH",
    help="The path prefix a reverse proxy serves the API under (e.g. /kit), the proxy "
    "stripping it before passing requests on.",
)
@click.option(
    "--ssl-certfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Serve HTTPS with this certificate (PEM; the chain after it).",
)
@click.option(
    "--ssl-keyfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The private key of --ssl-certfile (PEM), unless the certificate file holds it.",
)
@click.option(
    "--grace",
    "grace_s",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds requests and open streams get to finish after SIGINT/SIGTERM; streams "
    "still open then end with a final event.",
)
@click.option(
    "--keepalive",
    "keepalive_s",
    default=15.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds of silence after which an open event stream sends a keep-alive comment.",
)
def serve(
    host: str,
    port: int,
    database: str | None,
    api_keys: tuple[str, ...],
    trusted_hosts: tuple[str, ...],
    config_file: Path | None,
    run_expiry: float | None,
    log_level: str | None,
    root_path: str,
    ssl_certfile: Path | None,
    ssl_keyfile: Path | None,
    grace_s: float,
    keepalive_s: float,
) -> None:
    """Run the Assistant API server: DashScope under /api/v1, OpenAI Assistants v2 under /v1.

    \b
    Point the official SDKs at it (it prints these lines, ready to paste):
      export OPENAI_BASE_URL=http://127.0.0.1:8900/v1 OPENAI_API_KEY=kit-local
      export DASHSCOPE_HTTP_BASE_URL=http://127.0.0.1:8900/api/v1 DASHSCOPE_API_KEY=kit-local
    With no key configured any non-empty key is accepted, and only on a loopback host.
    A busy port is an error (exit 2) before anything is printed.

    \b
    Examples:
      kit serve                              127.0.0.1:8900, store .kit/server.db
      kit serve --port 9000 --db :memory:    keep nothing
      kit serve --host 0.0.0.0 --api-key "$KIT_KEY"
      kit serve --root-path /kit             behind a proxy at https://host/kit/
      kit serve --ssl-certfile cert.pem --ssl-keyfile key.pem

    \b
    GET /health (liveness) and GET /ready (the store answers) need no key. SIGINT or SIGTERM
    drains: requests and streams get --grace seconds, then open streams end with a final event.
    """
    import uvicorn

    from assistant_kit.cli.listen import DrainingServer, banner, bind, check_tls
    from assistant_kit.cli.logs import level_for
    from assistant_kit.cli.output import current
    from assistant_kit.server.app import create_app
    from assistant_kit.server.auth import TrustedHosts, keys_from_env
    from assistant_kit.server.config import config_from_kit
    from assistant_kit.server.connections import ConnectionLimits, guarded_protocol
    from assistant_kit.server.models.routing import ModelRouter

    if root_path and (not root_path.startswith("/") or root_path.endswith("/")):
        raise click.UsageError(f"--root-path {root_path!r}: start with / and end without one")
    if log_level is None:  # -v / -vv / KIT_LOG, as for every command
        level = level_for(current().verbosity, os.environ) or logging.WARNING
        log_level = logging.getLevelName(level).lower()
    check_tls(ssl_certfile, ssl_keyfile)
    env_keys = keys_from_env(os.environ)
    keys = (*env_keys, *api_keys)
    section, base_dir = read_server_section(config_file)
    names = (*section.get("trusted_hosts", ()), *trusted_hosts)
    # header/body deadlines and a connection cap: half-open connections cannot pile up
    limits = ConnectionLimits.for_process(**(section.get("connections") or {}))
    config = config_from_kit(
        section,
        base_dir=base_dir,
        run_expiry_s=run_expiry,
        database=database or str(Path.cwd() / DEFAULT_DB),
        api_keys=keys,
        trusted_hosts=TrustedHosts.for_server(keys, names),
        host=host,
        port=port,
    )
    config = dataclasses.replace(config, sse_keepalive_s=keepalive_s)
    router = config.models
    app = create_app(config)  # raises ConfigError for a non-loopback host without keys
    _check_store(config.database)
    sock = bind(host, port)  # a busy port is an error before anything is printed
    server = DrainingServer(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            lifespan="on",
            access_log=log_level in ("info", "debug"),
            server_header=False,
            http=guarded_protocol(limits),
            backlog=limits.backlog,
            root_path=root_path,
            ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
            ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
            # the streams' final events are written at grace_s; uvicorn cancels what is left later
            timeout_graceful_shutdown=int(grace_s) + 2,
        ),
        streams=app.state.streams,
        grace_s=grace_s,
    )
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if ssl_certfile else "http"
    lines = banner(
        base=f"{scheme}://{shown}:{port}",
        database=str(config.database),
        routes=router.routes if isinstance(router, ModelRouter) else None,
        keys=keys,
        keys_from_env=bool(env_keys) and not api_keys,
        root_path=root_path,
    )
    for line in lines:
        click.echo(line)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the handler
    # that was installed before it ran; make that one a no-op so a requested stop exits 0.
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc}") from exc
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        raise ConfigError(f"the server did not start on {host}:{port}")
    click.echo("Stopped.")


def read_server_section(config_file: Path | None) -> tuple[Mapping[str, Any], Path]:
    """kit.yaml's ``server:`` mapping (checked against the schema) and the project folder."""
    from assistant_kit.spec.project import find_kit_file, read_config

    path = config_file or find_kit_file(Path.cwd())
    if path is None:
        return {}, Path.cwd()
    config, root = read_config(path, Path.cwd())
    return config["server"] or {}, root


def _check_store(database: str | Path) -> None:
    """Open (and migrate) the store once before serving, so a bad path is a clear error."""
    from assistant_kit.server.store import open_store
    from assistant_kit.server.store.base import StoreError

    if str(database) == ":memory:":
        return
    store = open_store(database)
    try:
        store.open()
    except (OSError, StoreError) as exc:
        raise ConfigError(f"cannot open the store {database}: {exc}") from exc
    finally:
        store.close()


def _stopped(signum: int, frame: FrameType | None) -> None:
    """A stop signal uvicorn already acted on."""
