"""assistant-kit: assistants as config, and an embedded Assistant API server to run them."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .errors import ApiConnectionError, ApiError, ConfigError, KitError, PlanError, SpecError

try:
    __version__ = version("assistant-kit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "ConfigError",
    "KitError",
    "PlanError",
    "SpecError",
    "__version__",
]
