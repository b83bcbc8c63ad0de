"""Files: uploads and what built-in tools make; metadata and content, rendered by the mount's
dialect.

``full_routes`` (OpenAI's ``/v1``): ``POST /files`` (multipart ``file`` and ``purpose``, optional
``expires_after``; ``server.files`` limits), ``GET /files`` (a page), ``GET /files/{id}``,
``GET /files/{id}/content`` (the bytes), ``DELETE /files/{id}``. ``read_routes`` (DashScope's
``/api/v1``): ``GET /files/{id}`` (``Dialect.file``, with the content route as its ``url``) and
``GET /files/{id}/content``. Both accept any dialect's id form (``file-...`` or ``file_...``); the
usual authentication applies to all of them.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute

from assistant_kit.errors import ApiError
from assistant_kit.server.endpoints import Api, Call
from assistant_kit.server.files import FileStore
from assistant_kit.server.ids import now_ms
from assistant_kit.server.routes.context import ServerContext
from assistant_kit.server.routes.uploads import PURPOSES, check_room, read_upload, read_uploads
from assistant_kit.server.services import NotFound
from assistant_kit.server.store.base import PageQuery
from assistant_kit.server.store.records import FileRecord

JSONObject = dict[str, Any]


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


def _content_url(call: Call, uid: str | None = None) -> str:
    """The URL of the bytes of the file ``call`` asked for (or, from the list, of ``uid``)."""
    url = call.request.url
    path = url.path.rstrip("/")
    if uid is not None:
        path += f"/{call.dialect.id('file', uid)}"
    return str(url.replace(path=path + "/content", query=""))


def _expires_at(fields: dict[str, str]) -> int | None:
    """``expires_after[anchor]=created_at`` and ``expires_after[seconds]`` (1 hour..30 days)."""
    anchor = fields.get("expires_after[anchor]")
    seconds = fields.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at" or seconds is None or not seconds.isdigit():
        raise ApiError(
            400,
            "invalid_value",
            "Invalid 'expires_after': expected anchor 'created_at' and seconds.",
            param="expires_after",
        )
    if not 3600 <= int(seconds) <= 2_592_000:
        raise ApiError(
            400,
            "invalid_value",
            "Invalid 'expires_after[seconds]': expected 3600 (1 hour) to 2592000 (30 days).",
            param="expires_after[seconds]",
        )
    return now_ms() + int(seconds) * 1000


def full_routes(api: Api, ctx: ServerContext) -> list[BaseRoute]:
    """Upload, list, get, delete and read files (OpenAI's file API)."""
    files = ctx.files
    d = api.dialect
    limit, total = ctx.config.max_file_bytes, ctx.config.max_files_total_bytes

    async def create_file(call: Call) -> JSONObject:
        upload = await read_upload(call, field="file", max_file_bytes=limit)
        purpose = upload.fields.get("purpose")
        if purpose is None:
            raise ApiError(
                400, "invalid_request", "Missing required parameter: 'purpose'.", param="purpose"
            )
        if purpose not in PURPOSES:
            raise ApiError(
                400,
                "invalid_value",
                f"Invalid 'purpose': {purpose!r}. Expected one of {', '.join(PURPOSES)}.",
                param="purpose",
            )
        expires_at = _expires_at(upload.fields)
        await check_room(files, len(upload.data), total)
        record = await files.add(
            upload.data, upload.filename, upload.mime_type, purpose=purpose, expires_at=expires_at
        )
        return d.file(record, _content_url(call, record.id))

    async def list_files(call: Call) -> JSONObject:
        page = await files.list(call.page("file"))
        items = [d.file(f, _content_url(call, f.id)) for f in page.items]
        return d.list_body(items, page.has_more)

    async def get_file(call: Call) -> JSONObject:
        return d.file(await _record(files, call), _content_url(call))

    async def file_content(call: Call) -> Response:
        return await _content(files, call)

    async def delete_file(call: Call) -> JSONObject:
        record = await _record(files, call)
        await files.delete(record.id)
        await ctx.vector_stores.forget_file(record.id)
        return d.deleted("file", "file", record.id)

    r = api.route
    return [
        r("/files", create_file, ["POST"], multipart=True),
        r("/files", list_files, ["GET"]),
        r("/files/{file_id}", get_file, ["GET"]),
        r("/files/{file_id}", delete_file, ["DELETE"]),
        r("/files/{file_id}/content", file_content, ["GET"]),
    ]


def _positive(call: Call, name: str, default: int, most: int) -> int:
    raw = call.request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise ApiError(400, "invalid_value", f"Invalid '{name}': expected 1 to {most}.", param=name)
    return int(raw)


def read_routes(api: Api, ctx: ServerContext) -> list[BaseRoute]:
    """DashScope's ``Files``: upload (multipart ``files``), list by page, get, read, delete."""
    files = ctx.files
    d = api.dialect
    limit, total = ctx.config.max_file_bytes, ctx.config.max_files_total_bytes

    async def upload_files(call: Call) -> JSONObject:
        uploads = await read_uploads(call, field="files", max_file_bytes=limit, max_files=20)
        await check_room(files, sum(len(u.data) for u in uploads), total)
        purpose = uploads[0].fields.get("purpose") or "assistants"
        records = [
            await files.add(u.data, u.filename, u.mime_type, purpose=purpose) for u in uploads
        ]
        return d.uploaded_files(records)

    async def list_files(call: Call) -> JSONObject:
        page_no = _positive(call, "page_no", 1, 1_000_000)
        page_size = _positive(call, "page_size", 10, 100)
        every = await files.list(PageQuery(limit=1 << 40, order="desc"))
        shown = every.items[(page_no - 1) * page_size : page_no * page_size]
        items = [d.file(f, _content_url(call, f.id)) for f in shown]
        return d.file_page(items, page_no, page_size, len(every.items))

    async def delete_file(call: Call) -> JSONObject:
        record = await _record(files, call)
        await files.delete(record.id)
        await ctx.vector_stores.forget_file(record.id)
        return d.deleted("file", "file", record.id)

    async def get_file(call: Call) -> JSONObject:
        return d.file(await _record(files, call), _content_url(call))

    async def file_content(call: Call) -> Response:
        return await _content(files, call)

    r = api.route
    return [
        r("/files", upload_files, ["POST"], multipart=True),
        r("/files", list_files, ["GET"]),
        r("/files/{file_id}", get_file, ["GET"]),
        r("/files/{file_id}", delete_file, ["DELETE"]),
        r("/files/{file_id}/content", file_content, ["GET"]),
    ]
