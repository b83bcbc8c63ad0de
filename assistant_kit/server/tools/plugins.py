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
it. The credential is the environment variable ``auth.env`` names, read when the plug-in is called;
the server never stores a token (``seal_plugin_tokens``): a DashScope entry's ``auth.user_token``
is kept as the reference ``${WEATHER_TOKEN}``, a token the server's environment does not hold is
refused, and the token of a plug-in the server lacks is kept as ``[not stored]``.

Against SSRF and token theft:

* the URL's host must be in ``allowed_hosts`` (checked on the final URL, after the arguments are
  filled in), only http and https are allowed, and redirects are never followed;
* arguments filled into the URL are percent-encoded whole (``/`` and ``.`` included), so ``..``
  cannot climb out of the URL template;
* the host is resolved and every address it resolves to must be public, unless it lies in
  ``server.allowed_private_networks`` (e.g. ``[127.0.0.0/8]`` for a plug-in on this machine):
  loopback, private, link-local (cloud metadata), shared and reserved addresses are refused. The
  request then goes to the address that was checked, so a second DNS answer cannot differ;
* the answer is read at most ``max_output_chars * 4`` bytes on the wire and, once decompressed
  (gzip and deflate only), at most as many bytes again: a compression bomb is cut off as it is read.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import os
import re
import socket
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema  # type: ignore[import-untyped,unused-ignore]

from assistant_kit.errors import ApiError, ConfigError, ToolError
from assistant_kit.server.tools.base import BuiltinTool, ToolContext, ToolOutput
from assistant_kit.server.tools.guard import DEFAULT_MAX_CHARS, guarded, to_json

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: What is stored instead of the token of a plug-in the server does not have (or that takes none).
NOT_STORED = "[not stored]"
#: A stored plug-in token: a reference to the server's environment variable that holds it.
_ENV_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
    """Hosts plugins may call: ``example.com`` (any port) or ``127.0.0.1:8080`` (that port),
    and the non-public networks they may resolve to (``private_networks``, default none)."""

    def __init__(self, hosts: Iterable[str], private_networks: Iterable[str] = ()) -> None:
        self.entries = {h.strip().lower().rstrip(".") for h in hosts if h and h.strip()}
        try:
            self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in private_networks)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"server.allowed_private_networks: {exc}") from exc

    def address_allowed(self, address: _IPAddress) -> bool:
        """Public unicast addresses, and those in the allowed private networks."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.networks):
            return True
        return address.is_global and not address.is_multicast

    async def checked_address(self, url: httpx.URL) -> str:
        """The address to connect to for ``url``: every address its host resolves to must be
        allowed (``ToolError`` otherwise), and the first one is used."""
        host = url.host
        try:
            addresses: list[_IPAddress] = [ipaddress.ip_address(host)]
        except ValueError:
            port = url.port or (443 if url.scheme == "https" else 80)
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except OSError as exc:
                raise ToolError(f"cannot resolve host {host!r}: {exc}") from exc
            addresses = []
            for info in infos:
                found = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
                if found not in addresses:
                    addresses.append(found)
        refused = [a for a in addresses if not self.address_allowed(a)]
        if refused or not addresses:
            shown = f" (resolved to {refused[0]})" if refused and str(refused[0]) != host else ""
            raise ToolError(
                f"host {host!r}{shown} is not a public address: loopback, private, link-local "
                "and reserved addresses are refused unless in server.allowed_private_networks"
            )
        return str(addresses[0])

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
            return _path_segment(rest.pop(name))

        url = httpx.URL(_PLACEHOLDER.sub(fill, self.spec.url))
        if not self.allowlist.allows(url):
            raise ToolError(f"host {url.host!r} is not allowed (server.allowed_hosts)")
        headers = self._auth_headers(context)
        # Connect to the address that was checked (a second DNS answer could differ), naming
        # the host in the Host header and, for https, in SNI and the certificate check.
        address = await self.allowlist.checked_address(url)
        headers["Host"] = url.netloc.decode("ascii")
        headers["Accept-Encoding"] = "gzip, deflate"
        # Per request, so that a shared client configured to follow redirects cannot undo this.
        request: dict[str, Any] = {
            "headers": headers,
            "follow_redirects": False,
            "extensions": {"sni_hostname": url.host},
        }
        if self.spec.method in ("GET", "DELETE"):
            request["params"] = {k: _query_value(v) for k, v in rest.items()}
        else:
            request["json"] = rest
        limit = self.spec.max_output_chars * 4 + 1024  # bytes: enough for max_output_chars
        client = self._client()
        pinned = url.copy_with(host=address)
        async with client.stream(self.spec.method, pinned, **request) as response:
            if response.is_redirect or 300 <= response.status_code < 400:
                raise ToolError(
                    f"HTTP {response.status_code} redirect refused (redirects are not followed)"
                )
            data = await _read_capped(response, limit)
        body = _body_text(data, response.headers.get("content-type", ""))
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
        given = entry_auth.get("user_token") if isinstance(entry_auth, Mapping) else None
        if auth is None:
            return {}  # this plug-in takes no credential: a token given with it is never sent
        if given and given != "${" + auth.env + "}":
            # stored before tokens were sealed, or when the server had no such plug-in
            raise ToolError("the assistant's plug-in token is not usable here; apply it again")
        token = os.environ.get(auth.env, "")
        if not token:
            raise ToolError(f"no credential: set the {auth.env} environment variable")
        return {auth.header: f"{auth.scheme} {token}" if auth.scheme else token}


def seal_plugin_tokens(tools: Any, find: Callable[[Mapping[str, Any]], BuiltinTool | None]) -> Any:
    """Tool entries as the server may store them: no plug-in token, only a reference.

    A DashScope entry's ``auth.user_token`` becomes ``${VAR}``, the environment variable the
    server's plug-in reads its credential from (``auth.env``), when the token is that variable's
    value or that reference; any other token for that plug-in is refused (``ApiError`` 400): the
    server has no place to keep it other than its environment. The token of a plug-in the server
    does not have, or that takes no credential, is dropped for ``NOT_STORED``. ``find`` maps an
    entry to the server's tool.
    """

    def seal(entry: Mapping[str, Any], token: Any) -> str:
        tool = find(entry)
        env = tool.spec.auth.env if isinstance(tool, PluginTool) and tool.spec.auth else None
        if env is None:  # a plug-in this server does not have, or one without a credential
            return NOT_STORED
        reference = "${" + env + "}"
        held = os.environ.get(env, "")
        if token == reference or (
            isinstance(token, str) and held and hmac.compare_digest(token.encode(), held.encode())
        ):
            return reference
        raise ApiError(
            400,
            "invalid_value",
            f"plug-in {entry.get('type')!r}: tokens are not stored; put the token in the server's "
            f"environment variable {env} and send 'auth.user_token' as {reference!r}.",
            param="tools",
        )

    return _replace_tokens(tools, seal)


def public_tools(tools: Any) -> Any:
    """Tool entries as the API shows them: a plug-in token that is not a ``${VAR}`` reference
    (a row stored before tokens were sealed) shows as ``NOT_STORED``, never as its value."""

    def shown(entry: Mapping[str, Any], token: Any) -> str:
        is_reference = isinstance(token, str) and _ENV_REFERENCE.match(token) is not None
        return token if is_reference else NOT_STORED

    return _replace_tokens(tools, shown)


def _replace_tokens(tools: Any, replace: Callable[[Mapping[str, Any], Any], str]) -> Any:
    """``tools`` with each non-empty ``auth.user_token`` replaced by ``replace(entry, token)``."""
    if not isinstance(tools, list):
        return tools
    out: list[Any] = []
    for entry in tools:
        auth = entry.get("auth") if isinstance(entry, Mapping) else None
        token = auth.get("user_token") if isinstance(auth, Mapping) else None
        if token not in (None, "") and isinstance(auth, Mapping):
            entry = {**entry, "auth": {**auth, "user_token": replace(entry, token)}}
        out.append(entry)
    return out


def _path_segment(value: Any) -> str:
    """An argument as one URL path segment: every byte but letters, digits, ``-``, ``_`` and
    ``~`` percent-encoded, so ``..`` (``%2E%2E``) and ``/`` stay inside the segment."""
    return quote(str(value), safe="").replace(".", "%2E")


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of the body, decompressed as it is read (gzip and deflate), and
    at most ``limit`` bytes read from the wire: a compression bomb stops at the cap."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    compressed = encoding in ("gzip", "x-gzip", "deflate")
    if not compressed and encoding not in ("", "identity"):
        raise ToolError(f"unsupported Content-Encoding {encoding!r}")
    decoder: Any = None  # made on the first chunk (deflate comes zlib-wrapped or raw)
    data = bytearray()
    wire = 0
    try:
        async for chunk in response.aiter_raw():
            wire += len(chunk)
            if not compressed:
                data += chunk
            else:
                if decoder is None:
                    decoder = zlib.decompressobj(_window_bits(encoding, chunk))
                data += decoder.decompress(chunk, limit + 1 - len(data))
            if len(data) > limit or wire > limit:
                break
    except zlib.error as exc:
        raise ToolError(f"the answer's {encoding} body is corrupt: {exc}") from exc
    return bytes(data[:limit])


def _window_bits(encoding: str, first: bytes) -> int:
    if encoding != "deflate":
        return 16 + zlib.MAX_WBITS  # gzip
    zlib_header = (
        len(first) > 1 and (first[0] & 0x0F) == 8 and ((first[0] << 8) | first[1]) % 31 == 0
    )
    return zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS


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
