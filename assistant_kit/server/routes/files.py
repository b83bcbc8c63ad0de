"""Files made by built-in tools, per dialect: metadata and content.

OpenAI (``/v1``): ``GET /files`` (a page), ``GET /files/{id}`` (``{id, object: "file", bytes,
created_at, filename, purpose, status}``), ``GET /files/{id}/content`` (the bytes),
``DELETE /files/{id}``. DashScope (``/api/v1``): ``GET /files/{id}`` answered non-flattened, as its
SDK's ``Files.get`` reads it (``{"data": {file_id, name, url, ...}, "request_id"}``, ``url`` being
the content route), and ``GET /files/{id}/content``. Both accept either dialect's id form
(``file-...`` or ``file_...``); the usual authentication applies to all of them.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from assistant_kit.server.endpoints import Api, Call
from assistant_kit.server.envelopes import Dialect
from assistant_kit.server.files import FileStore
from assistant_kit.server.routes.context import ServerContext
from assistant_kit.server.services import NotFound
from assistant_kit.server.store.records import FileRecord

JSONObject = dict[str, Any]


def openai_file_object(d: Dialect, f: FileRecord) -> JSONObject:
    return {
        "id": d.id("file", f.id),
        "object": "file",
        "bytes": f.bytes,
        "created_at": d.ts(f.created_at),
        "filename": f.filename,
        "purpose": f.purpose,
        "status": "processed",
        "status_details": None,
    }


def dashscope_file_object(d: Dialect, f: FileRecord, url: str) -> JSONObject:
    return {
        "file_id": d.id("file", f.id),
        "name": f.filename,
        "description": "",
        "size": f.bytes,
        "content_type": f.mime_type,
        "purpose": f.purpose,
        "created_at": d.ts(f.created_at),
        "url": url,
    }


async def _record(files: FileStore, call: Call) -> FileRecord:
    uid = call.id("file")
    record = await files.get(uid)
    if record is None:
        raise NotFound("file", uid)
    return record


async def _content(files: FileStore, call: Call) -> Response:
    uid = call.id("file")
    found = await files.content(uid)
    if found is None:
        raise NotFound("file", uid)
    record, data = found
    safe_name = record.filename.replace('"', "")
    headers = {
        **call.dialect.headers(call.request_id),
        "content-disposition": f'inline; filename="{safe_name}"',
        "cache-control": "private, max-age=3600",
    }
    return Response(data, media_type=record.mime_type, headers=headers)


def openai_routes(api: Api, ctx: ServerContext) -> list[BaseRoute]:
    files = ctx.files
    d = api.dialect

    async def list_files(call: Call) -> JSONObject:
        page = await files.list(call.page("file"))
        return d.list_body([openai_file_object(d, f) for f in page.items], page.has_more)

    async def get_file(call: Call) -> JSONObject:
        return openai_file_object(d, await _record(files, call))

    async def file_content(call: Call) -> Response:
        return await _content(files, call)

    async def delete_file(call: Call) -> JSONObject:
        record = await _record(files, call)
        await files.delete(record.id)
        return {"id": d.id("file", record.id), "object": "file", "deleted": True}

    r = api.route
    return [
        r("/files", list_files, ["GET"]),
        r("/files/{file_id}", get_file, ["GET"]),
        r("/files/{file_id}", delete_file, ["DELETE"]),
        r("/files/{file_id}/content", file_content, ["GET"]),
    ]


def dashscope_routes(api: Api, ctx: ServerContext) -> list[BaseRoute]:
    files = ctx.files
    d = api.dialect

    async def get_file(call: Call) -> JSONObject:
        record = await _record(files, call)
        url = call.request.url
        content_url = str(url.replace(path=url.path.rstrip("/") + "/content", query=""))
        return {"data": dashscope_file_object(d, record, content_url)}

    async def file_content(call: Call) -> Response:
        return await _content(files, call)

    r = api.route
    return [
        r("/files/{file_id}", get_file, ["GET"]),
        r("/files/{file_id}/content", file_content, ["GET"]),
    ]
