"""Shared type aliases; nothing else lives here."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any] | list[Any] | str | int | float | bool | None
JSONObject = dict[str, Any]
