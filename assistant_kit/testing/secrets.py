"""Keeping secrets out of reports and cassettes.

A ``Scrubber`` replaces every configured secret value (and its JSON, HTML and URL-escaped forms)
with ``[REDACTED]``, and the credentials of ``Authorization`` headers and ``Bearer`` tokens
wherever they appear in text. Secret values come from the environment variables the project names
(``api_key_env`` of targets and models, plugin ``auth.env``) plus the well-known API key variables::

    scrubber = Scrubber.from_env(secret_env_names(kit_yaml))
    safe = scrubber.data(suite)     # any dataclass / dict / list / str tree, rebuilt scrubbed
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
import html
import itertools
import json
import os
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
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


def _sub_pieces(
    pieces: Sequence[str], pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str]
) -> list[str]:
    """``pattern.sub(replace, "".join(pieces))`` cut back into as many pieces: text kept stays
    in its piece, a replacement goes whole to the piece where its match starts."""
    joined = "".join(pieces)
    starts = list(itertools.accumulate((len(p) for p in pieces[:-1]), initial=0))
    out = [""] * len(pieces)

    def owner(index: int) -> int:
        # the last piece starting at or before index (an empty piece never owns text)
        return max(bisect.bisect_right(starts, index) - 1, 0)

    def keep(begin: int, end: int) -> None:
        while begin < end:
            k = owner(begin)
            stop = min(end, starts[k + 1] if k + 1 < len(starts) else end)
            out[k] += joined[begin:stop]
            begin = stop

    position = 0
    for match in pattern.finditer(joined):
        keep(position, match.start())
        out[owner(match.start())] += replace(match)
        position = match.end()
    keep(position, len(joined))
    return out


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
        self._forms = re.compile("|".join(map(re.escape, self.forms))) if self.forms else None

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
        if self._forms is not None:
            value = self._forms.sub(REDACTED, value)
        for pattern in _AUTH_PATTERNS:
            value = pattern.sub(_redact, value)
        return value

    def pieces(self, pieces: Sequence[str]) -> list[str]:
        """Fragments of one text (a streamed reply) scrubbed as the text they make together.

        A secret streamed in pieces (``'rer p' 't-SEN' 'TINEL'``) is in no single piece; here
        every replacement is made on the joined text and given whole to the piece where the
        match started (the other pieces lose their part of it), so the number of pieces stays
        the same and ``"".join`` of the result is ``self.text("".join(pieces))``.
        """
        out = list(pieces)
        for pattern, replace in self._rules():
            out = _sub_pieces(out, pattern, replace)
        return out

    def _rules(self) -> list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]:
        rules: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = []
        if self._forms is not None:
            rules.append((self._forms, lambda _match: REDACTED))
        rules.extend((pattern, _redact) for pattern in _AUTH_PATTERNS)
        return rules

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
