"""``ModelRouter``: which backend answers a model name.

Built from kit.yaml's ``server.models`` (model name -> ``{backend: openai|llama-cpp|scripted,
...}``, the ``default`` entry catching every other name) or, in Python, from a mapping of names to
backend instances::

    router = ModelRouter({"default": ScriptedBackend(default="Hello!")})
    router = ModelRouter(kit_yaml["server"]["models"], base_dir=project_dir)
    backend = router.resolve("qwen-max")        # ModelError when nothing routes the name

Without any ``server.models`` the default route is the in-process ``llama-cpp`` backend. Backends
are created once and shared between every name that routes to the same configuration. ``openai``
and ``scripted`` routes are built (and checked, raising ``ConfigError``) when the router is;
``llama-cpp`` is imported and loaded on the first ``resolve`` that needs it, which blocks while the
weights load: call ``resolve`` through ``anyio.to_thread.run_sync`` if that matters (it is
thread-safe).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant_kit.errors import ConfigError, ModelError
from assistant_kit.server.models.base import ModelBackend
from assistant_kit.server.models.openai import OpenAIChatBackend
from assistant_kit.server.models.scripted import ScriptedBackend

#: The route kit.yaml gets when it says nothing about models.
DEFAULT_ROUTES: Mapping[str, Mapping[str, Any]] = {"default": {"backend": "llama-cpp"}}

_LOCAL_MODEL_HELP = (
    'Install it with: CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install "assistant-kit[local-model]", '
    "or route the model to a chat-completions endpoint in kit.yaml, e.g. "
    "server: {models: {default: {backend: openai, base_url: http://127.0.0.1:11434/v1, "
    "api_key_env: MY_KEY}}}."
)


@dataclass(frozen=True, slots=True)
class _Lazy:
    """A llama-cpp route, built on first use."""

    options: Mapping[str, Any]


class ModelRouter:
    """Maps model names to backends; ``default`` catches the names nobody else claims."""

    def __init__(
        self,
        routes: Mapping[str, ModelBackend | Mapping[str, Any]] | None = None,
        *,
        base_dir: str | Path | None = None,
    ) -> None:
        self._base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        self._lock = threading.Lock()
        self._shared: dict[str, ModelBackend | _Lazy] = {}  # canonical config -> backend
        self._routes: dict[str, ModelBackend | _Lazy] = {}
        self._kinds: dict[str, str] = {}
        if routes is None:
            routes = DEFAULT_ROUTES
        if not isinstance(routes, Mapping):
            raise ConfigError("server.models must be a mapping of model names to backends")
        for name, value in routes.items():
            self._add(str(name), value)

    @property
    def routes(self) -> dict[str, str]:
        """Model name -> backend kind, as configured (``default`` included)."""
        return dict(self._kinds)

    def resolve(self, model: str) -> ModelBackend:
        """The backend for ``model``; raises ``ModelError`` when no route takes it."""
        name = model if model in self._routes else "default"
        route = self._routes.get(name)
        if route is None:
            configured = ", ".join(sorted(self._routes)) or "none"
            raise ModelError(
                f'no backend for model "{model}": kit.yaml server.models has no entry "{model}" '
                f"and no default (configured: {configured})"
            )
        if isinstance(route, ModelBackend):
            return route
        with self._lock:
            current = self._routes[name]
            if isinstance(current, ModelBackend):
                return current
            backend = _load_llama(model, current.options)
            for key, value in list(self._shared.items()):
                if value is current:
                    self._shared[key] = backend
            for key, value in list(self._routes.items()):
                if value is current:
                    self._routes[key] = backend
            return backend

    async def aclose(self) -> None:
        """Close every backend the router created or was given (each once)."""
        seen: set[int] = set()
        for backend in list(self._routes.values()):
            if isinstance(backend, ModelBackend) and id(backend) not in seen:
                seen.add(id(backend))
                await backend.aclose()

    def _add(self, name: str, value: ModelBackend | Mapping[str, Any]) -> None:
        if isinstance(value, ModelBackend):
            self._routes[name] = value
            self._kinds[name] = value.kind or type(value).__name__
            return
        where = f"server.models.{name}"
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping like {{backend: openai, ...}}")
        options = dict(value)
        kind = options.pop("backend", None)
        if kind not in KINDS:
            raise ConfigError(f"{where}: backend must be one of {', '.join(KINDS)} (got {kind!r})")
        key = json.dumps([kind, options], sort_keys=True, default=str)
        if key not in self._shared:
            self._shared[key] = self._build(kind, options, where)
        self._routes[name] = self._shared[key]
        self._kinds[name] = kind

    def _build(self, kind: str, options: dict[str, Any], where: str) -> ModelBackend | _Lazy:
        return BUILDERS[kind](options, where, self._base_dir)


def _check_options(
    cls: type, options: Mapping[str, Any], where: str, kind: str, extra: set[str] | None = None
) -> None:
    known = {
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in {"http", "source"}
        and not p.name.startswith("_")
    } | (extra or set())
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown option(s) {', '.join(unknown)} for backend {kind} "
            f"(known: backend, {', '.join(sorted(known))})"
        )


def _llama_cpp_importable() -> bool:
    """Whether llama-cpp-python is installed, without importing it (that is slow)."""
    if "llama_cpp" in sys.modules:
        return sys.modules["llama_cpp"] is not None
    try:
        return importlib.util.find_spec("llama_cpp") is not None
    except (ImportError, ValueError):
        return False


def _load_llama(model: str, options: Mapping[str, Any]) -> ModelBackend:
    try:
        if not _llama_cpp_importable():
            raise ModuleNotFoundError("No module named 'llama_cpp'", name="llama_cpp")
        module = importlib.import_module("assistant_kit.server.models.llama_cpp")
        backend = module.LlamaCppBackend(**options)
    except ImportError as exc:
        raise ModelError(
            f'model "{model}" routes to the in-process llama-cpp backend, which is not available '
            f"({exc}). {_LOCAL_MODEL_HELP}"
        ) from exc
    except TypeError as exc:
        raise ModelError(f'model "{model}": bad llama-cpp options in kit.yaml: {exc}') from exc
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f'model "{model}": the llama-cpp backend failed to load: {exc}') from exc
    if not isinstance(backend, ModelBackend):
        raise ModelError(f'model "{model}": LlamaCppBackend is not a ModelBackend')
    return backend


def _llama_cpp(options: dict[str, Any], where: str, base_dir: Path) -> ModelBackend | _Lazy:
    path = options.get("path")
    if isinstance(path, str) and path and not Path(path).is_absolute():
        options["path"] = str(base_dir / path)
    return _Lazy(options)


def _openai(options: dict[str, Any], where: str, base_dir: Path) -> ModelBackend | _Lazy:
    if "timeout_s" in options:  # kit.yaml spells every timeout in seconds as `timeout_s`
        options["timeout"] = options.pop("timeout_s")
    _check_options(OpenAIChatBackend, options, where, "openai")
    if not isinstance(options.get("base_url"), str):
        raise ConfigError(f"{where}: the openai backend needs a base_url")
    try:
        return OpenAIChatBackend(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _scripted(options: dict[str, Any], where: str, base_dir: Path) -> ModelBackend | _Lazy:
    script = options.pop("script", None)
    _check_options(ScriptedBackend, options, where, "scripted", extra={"script"})
    if script is not None and "rules" in options:
        raise ConfigError(f"{where}: give either `script` (a file) or inline `rules`, not both")
    try:
        if script is not None:
            path = Path(str(script))
            return ScriptedBackend.from_file(
                path if path.is_absolute() else base_dir / path, **options
            )
        return ScriptedBackend(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


#: kit.yaml's ``backend:`` kinds and how each builds its backend from its options (the
#: route's mapping without ``backend``), the route's name for errors and the project folder.
#: A new model backend is one module and one line here.
BUILDERS: dict[str, Callable[[dict[str, Any], str, Path], ModelBackend | _Lazy]] = {
    "openai": _openai,
    "llama-cpp": _llama_cpp,
    "scripted": _scripted,
}
KINDS = tuple(BUILDERS)
