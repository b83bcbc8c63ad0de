"""Custom plugins: HTTP endpoints declared in kit.yaml that the model can call.

```yaml
server:
  plugins:
    - id: weather
      description: Current weather for a city
      method: GET                                   # GET/DELETE: query string; else a JSON body
      url: https://api.example.com/weather/{city}   # {name} is filled from the arguments
      parameters: {type: object, properties: {city: {type: string}}, required: [city]}
      auth: {header: Authorization, scheme: Bearer, env: WEATHER_TOKEN}
      timeout_s: 10
  allowed_hosts: [api.example.com]                  # the only hosts plugins may call
```

A spec's ``{type: plugin, id: weather}`` and DashScope's ``{type: weather, auth: {...}}`` both call
it; a DashScope entry's ``auth.user_token`` is used as the credential when given, else the
environment variable. Against SSRF: the URL's host must be in ``allowed_hosts`` (checked on the
final URL, after the arguments are filled in), only http and https are allowed, and redirects are
never followed (a 3xx answer is an error).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema  # type: ignore[import-untyped,unused-ignore]

from assistant_kit.errors import ConfigError, ToolError
from assistant_kit.server.tools.base import BuiltinTool, ToolContext, ToolOutput
from assistant_kit.server.tools.guard import DEFAULT_MAX_CHARS, guarded, to_json

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class PluginAuth:
    header: str = "Authorization"
    scheme: str = "Bearer"
    env: str = ""


@dataclass(frozen=True, slots=True)
class PluginSpec:
    """One ``server.plugins`` entry."""

    id: str
    url: str
    method: str = "GET"
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    auth: PluginAuth | None = None
    timeout_s: float = 15.0
    max_output_chars: int = DEFAULT_MAX_CHARS

    @classmethod
    def from_config(cls, entry: Mapping[str, Any]) -> PluginSpec:
        """Read and check one kit.yaml entry; ConfigError says what is wrong."""
        if not isinstance(entry, Mapping):
            raise ConfigError("server.plugins: each entry must be a mapping")
        plugin_id = entry.get("id")
        if not isinstance(plugin_id, str) or not _ID.match(plugin_id):
            raise ConfigError(f"server.plugins: bad id {plugin_id!r} (letters, digits, _ and -)")
        where = f"server.plugins[{plugin_id}]"
        url = entry.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: `url` must be an http(s) URL")
        method = str(entry.get("method", "GET")).upper()
        if method not in _METHODS:
            raise ConfigError(f"{where}: method must be one of {', '.join(_METHODS)}")
        parameters = entry.get("parameters") or {"type": "object", "properties": {}}
        try:
            jsonschema.Draft202012Validator.check_schema(parameters)
        except jsonschema.SchemaError as exc:
            raise ConfigError(f"{where}: `parameters` is not a JSON Schema: {exc.message}") from exc
        auth = None
        if entry.get("auth") is not None:
            raw = entry["auth"]
            if not isinstance(raw, Mapping) or not raw.get("env"):
                raise ConfigError(f"{where}: `auth` needs `env`, the variable holding the secret")
            auth = PluginAuth(
                header=str(raw.get("header", "Authorization")),
                scheme=str(raw.get("scheme", "Bearer")),
                env=str(raw["env"]),
            )
        return cls(
            id=plugin_id,
            url=url,
            method=method,
            description=str(entry.get("description", "")),
            parameters=parameters,
            auth=auth,
            timeout_s=float(entry.get("timeout_s", 15.0)),
            max_output_chars=int(entry.get("max_output_chars", DEFAULT_MAX_CHARS)),
        )


class HostAllowlist:
    """Hosts plugins may call: ``example.com`` (any port) or ``127.0.0.1:8080`` (that port)."""

    def __init__(self, hosts: Iterable[str]) -> None:
        self.entries = {h.strip().lower().rstrip(".") for h in hosts if h and h.strip()}

    def allows(self, url: httpx.URL) -> bool:
        if url.scheme not in ("http", "https") or not url.host:
            return False
        host = url.host.lower().rstrip(".")
        port = url.port or (443 if url.scheme == "https" else 80)
        bracketed = f"[{host}]" if ":" in host else host
        return host in self.entries or f"{bracketed}:{port}" in self.entries


class PluginTool(BuiltinTool):
    """Calls one declared plugin over HTTP."""

    def __init__(
        self,
        spec: PluginSpec,
        allowlist: HostAllowlist,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.spec = spec
        self.type = spec.id
        self.allowlist = allowlist
        if not allowlist.allows(httpx.URL(_PLACEHOLDER.sub("x", spec.url))):
            raise ConfigError(
                f"server.plugins[{spec.id}]: host of {spec.url} is not in server.allowed_hosts"
            )
        self._validator = jsonschema.Draft202012Validator(dict(spec.parameters))
        self._http = http
        self._own_http: httpx.AsyncClient | None = None

    def definition(self) -> Mapping[str, Any]:
        return {
            "name": self.spec.id,
            "description": self.spec.description or f"Call the {self.spec.id} plugin",
            "parameters": dict(self.spec.parameters),
        }

    async def call(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        return await guarded(
            self.spec.id,
            self._call(arguments, context),
            timeout_s=self.spec.timeout_s,
            max_chars=self.spec.max_output_chars,
        )

    async def aclose(self) -> None:
        if self._own_http is not None:
            await self._own_http.aclose()
            self._own_http = None

    async def _call(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolOutput:
        problems = sorted(self._validator.iter_errors(dict(arguments)), key=str)
        if problems:
            details = "; ".join(
                f"{'/'.join(map(str, p.absolute_path)) or '(arguments)'}: {p.message}"
                for p in problems
            )
            raise ToolError(f"invalid arguments: {details}")
        rest = dict(arguments)

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in rest:
                raise ToolError(f"missing the {name!r} argument for the URL")
            return quote(str(rest.pop(name)), safe="")

        url = httpx.URL(_PLACEHOLDER.sub(fill, self.spec.url))
        if not self.allowlist.allows(url):
            raise ToolError(f"host {url.host!r} is not allowed (server.allowed_hosts)")
        headers = self._auth_headers(context)
        # Per request, so that a shared client configured to follow redirects cannot undo this.
        request: dict[str, Any] = {"headers": headers, "follow_redirects": False}
        if self.spec.method in ("GET", "DELETE"):
            request["params"] = {k: _query_value(v) for k, v in rest.items()}
        else:
            request["json"] = rest
        limit = self.spec.max_output_chars * 4 + 1024  # bytes: enough for max_output_chars
        client = self._client()
        async with client.stream(self.spec.method, url, **request) as response:
            if response.is_redirect or 300 <= response.status_code < 400:
                raise ToolError(
                    f"HTTP {response.status_code} redirect refused (redirects are not followed)"
                )
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > limit:
                    break
        body = _body_text(bytes(data[:limit]), response.headers.get("content-type", ""))
        if response.status_code >= 400:
            return ToolOutput(output=f"HTTP {response.status_code}: {body}", is_error=True)
        return ToolOutput(output=body)

    def _client(self) -> httpx.AsyncClient:
        if self._http is not None:
            return self._http
        if self._own_http is None:
            self._own_http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.spec.timeout_s), follow_redirects=False, trust_env=False
            )
        return self._own_http

    def _auth_headers(self, context: ToolContext) -> dict[str, str]:
        auth = self.spec.auth
        entry_auth = context.config.get("auth") if context.config else None
        token = ""
        if isinstance(entry_auth, Mapping):
            token = str(entry_auth.get("user_token") or "")
        if not token and auth is not None:
            token = os.environ.get(auth.env, "")
            if not token:
                raise ToolError(f"no credential: set the {auth.env} environment variable")
        if not token:
            return {}
        header = auth.header if auth else "Authorization"
        scheme = auth.scheme if auth else "Bearer"
        return {header: f"{scheme} {token}" if scheme else token}


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return to_json(value)
    return str(value)


def _body_text(data: bytes, content_type: str) -> str:
    text = data.decode("utf-8", "replace")
    if "json" in content_type:
        try:
            return to_json(json.loads(text))
        except ValueError:
            pass
    return text
