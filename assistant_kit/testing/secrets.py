"""Keeping secrets out of reports and cassettes.

A ``Scrubber`` replaces every configured secret value (and its JSON, HTML and URL-escaped forms)
with ``[REDACTED]``, and the credentials of ``Authorization`` headers and ``Bearer`` tokens
wherever they appear in text. Secret values come from the environment variables the project names
(``api_key_env`` of targets and models, plugin ``auth.env``) plus the well-known API key variables::

    scrubber = Scrubber.from_env(secret_env_names(kit_yaml))
    safe = scrubber.data(suite)     # any dataclass / dict / list / str tree, rebuilt scrubbed
"""

from __future__ import annotations

import dataclasses
import enum
import html
import json
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

REDACTED = "[REDACTED]"

#: Always treated as secrets when set.
WELL_KNOWN_SECRET_ENV = ("OPENAI_API_KEY", "DASHSCOPE_API_KEY", "KIT_SERVER_API_KEYS")

#: Shorter values are not scrubbed: no real credential is that short, and replacing every "x" or
#: "test" (common dummy keys for a local server) would wreck the reports.
MIN_SECRET_LENGTH = 6

#: Request and response headers whose values are always replaced.
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie"}
)

_AUTH_PATTERNS = (
    # "Authorization: Bearer abc", '"authorization": "Bearer abc"', authorization=abc
    re.compile(
        r"""(?i)(\b(?:proxy-)?authorization\b["']?\s*[:=]\s*["']?)"""
        r"""(?!(?:(?:bearer|basic|token)\s+)?\[REDACTED\])"""
        r"""((?:bearer|basic|token)\s+)?[^\s"',}\]]+"""
    ),
    # a bearer token: 8+ token characters, at least one of them not a letter (spares prose)
    re.compile(r"(?i)(\bbearer\s+)(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,}"),
)


def _redact(match: re.Match[str]) -> str:
    scheme = match.group(2) if match.re.groups >= 2 and match.group(2) else ""
    return match.group(1) + scheme + REDACTED


def secret_env_names(config: Any) -> set[str]:
    """The environment variable names a kit.yaml mapping marks as secret.

    Collected: every ``api_key_env`` (and any key ending in ``_key_env`` or ``_token_env``) and
    the ``env`` of every ``auth`` mapping, anywhere in the tree, plus ``WELL_KNOWN_SECRET_ENV``.
    """
    names = set(WELL_KNOWN_SECRET_ENV)

    def walk(node: Any, parent_key: str = "") -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                k = str(key)
                if isinstance(value, str) and (
                    k == "api_key_env"
                    or k.endswith(("_key_env", "_token_env"))
                    or (k == "env" and parent_key == "auth")
                ):
                    names.add(value)
                walk(value, k)
        elif isinstance(node, list):
            for value in node:
                walk(value, parent_key)

    walk(config)
    return names


class Scrubber:
    """Replaces secret values and credentials in text and in data trees."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if not secret or len(secret) < MIN_SECRET_LENGTH:
                continue
            forms.add(secret)
            forms.add(json.dumps(secret)[1:-1])
            forms.add(html.escape(secret))
            forms.add(html.escape(secret, quote=False))
            forms.add(urllib.parse.quote(secret, safe=""))
            forms.add(urllib.parse.quote_plus(secret))
        # Longest first, so a secret that contains another is replaced whole.
        self.forms = tuple(sorted(forms, key=len, reverse=True))

    @classmethod
    def from_env(cls, names: Iterable[str], environ: Mapping[str, str] | None = None) -> Scrubber:
        """Secrets are the values of these variables (comma-separated lists are split too)."""
        env = os.environ if environ is None else environ
        values: list[str] = []
        for name in names:
            value = env.get(name)
            if value:
                values.append(value)
                values.extend(part.strip() for part in value.split(",") if part.strip())
        return cls(values)

    def text(self, value: str) -> str:
        for form in self.forms:
            if form in value:
                value = value.replace(form, REDACTED)
        for pattern in _AUTH_PATTERNS:
            value = pattern.sub(_redact, value)
        return value

    def headers(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Header pairs with sensitive values replaced and the rest scrubbed."""
        return [
            (name, REDACTED if name.lower() in SENSITIVE_HEADERS else self.text(value))
            for name, value in headers
        ]

    def data(self, value: T) -> T:
        """The same tree (dataclasses, dicts, lists, tuples, strings) with every string scrubbed."""
        return self._walk(value)  # type: ignore[no-any-return]

    def _walk(self, value: Any) -> Any:
        if isinstance(value, enum.Enum):  # str enums (Verdict) stay members
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self._walk(k): self._walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._walk(v) for v in value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {
                f.name: self._walk(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if f.init
            }
            return dataclasses.replace(value, **changes)
        return value
