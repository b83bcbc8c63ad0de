"""Uploaded files: reading one from a ``multipart/form-data`` body within the server's limits,
and OpenAI's Uploads API (``upload_routes``: a large file sent in parts, then completed).

``read_upload(call, ...)`` returns the file's name, bytes, content type and the other form
fields, or raises the ``ApiError`` a client should see: 415 for another content type, 413 for
a file over ``max_file_bytes``, 400 for a missing ``file`` part or a malformed body, 507 when
the stored files together would pass ``max_files_total_bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.routing import BaseRoute

from assistant_kit.errors import ApiError
from assistant_kit.server.endpoints import Api, Call
from assistant_kit.server.files import FileStore
from assistant_kit.server.ids import new_id, now_ms, parse_id
from assistant_kit.server.routes.context import ServerContext
from assistant_kit.server.services import NotFound
from assistant_kit.server.store.base import PageQuery
from assistant_kit.server.store.records import (
    UPLOAD_PARTS,
    UPLOADS,
    UploadPartRecord,
    UploadRecord,
)

JSONObject = dict[str, Any]

#: Room for the form's other fields and part headers beyond the file itself.
_FORM_OVERHEAD = 64 * 1024
#: OpenAI's file purposes.
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str
    data: bytes
    mime_type: str
    fields: dict[str, str]


def too_large(limit: int) -> ApiError:
    return ApiError(
        413, "file_too_large", f"The file is larger than this server's limit of {limit} bytes."
    )


async def check_room(files: FileStore, size: int, total_limit: int) -> None:
    used = await files.total_bytes()
    if used + size > total_limit:
        raise ApiError(
            507,
            "storage_full",
            f"No room for {size} more bytes: stored files use {used} of {total_limit} bytes.",
        )


async def read_upload(call: Call, *, field: str, max_file_bytes: int) -> Upload:
    """The one file in part ``field`` (OpenAI's ``file``)."""
    return (await read_uploads(call, field=field, max_file_bytes=max_file_bytes, max_files=1))[0]


async def read_uploads(
    call: Call, *, field: str, max_file_bytes: int, max_files: int
) -> list[Upload]:
    """Every file in parts named ``field`` (DashScope sends several ``files``), at least one."""
    request = call.request
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Unsupported content type {media_type or '(none)'!r}; send multipart/form-data.",
        )
    length = request.headers.get("content-length")
    most = max_files * max_file_bytes + _FORM_OVERHEAD
    if length is not None and length.isdigit() and int(length) > most:
        raise too_large(max_file_bytes)
    try:
        form = await request.form(max_files=max_files, max_fields=32)
    except (MultiPartException, HTTPException) as e:
        detail = getattr(e, "detail", None) or getattr(e, "message", None) or str(e)
        raise ApiError(400, "invalid_request", f"The multipart body is refused: {detail}") from None
    try:
        parts = [p for p in form.getlist(field) if isinstance(p, UploadFile)]
        if not parts:
            raise ApiError(
                400, "invalid_request", f"Missing required parameter: '{field}'.", param=field
            )
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        uploads = []
        for part in parts:
            data = await part.read(max_file_bytes + 1)
            if len(data) > max_file_bytes:
                raise too_large(max_file_bytes)
            mime_type = part.content_type or "application/octet-stream"
            uploads.append(Upload(part.filename or "file", data, mime_type, fields))
        return uploads
    finally:
        await form.close()


#: How long an upload may take from create to complete (OpenAI's hour).
UPLOAD_TTL_MS = 3_600_000


def upload_routes(api: Api, ctx: ServerContext) -> list[BaseRoute]:
    """OpenAI's Uploads API: create, add parts (multipart ``data``), complete, cancel."""
    files, store, d = ctx.files, ctx.store, api.dialect
    limit, total = ctx.config.max_file_bytes, ctx.config.max_files_total_bytes

    async def pending(call: Call) -> UploadRecord:
        uid = call.id("upload")
        upload = await store.get(UPLOADS, uid)
        if upload is None:
            raise NotFound("upload", uid)
        if upload.status == "pending" and upload.expires_at <= now_ms():
            upload = await store.update(UPLOADS, uid, {"status": "expired"}) or upload
        return upload

    def must_be_pending(upload: UploadRecord) -> None:
        if upload.status != "pending":
            wire = d.id("upload", upload.id)
            raise ApiError(
                400, "invalid_request", f"Upload {wire} is {upload.status}; it takes no more."
            )

    async def render(upload: UploadRecord) -> JSONObject:
        record = await files.get(upload.file_id) if upload.file_id else None
        body = None if record is None else d.file(record, "")
        return d.upload(upload, body)

    async def create(call: Call) -> JSONObject:
        body = call.body
        for key in ("filename", "purpose", "mime_type"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise ApiError(
                    400, "invalid_request", f"Missing required parameter: '{key}'.", param=key
                )
        size = body.get("bytes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ApiError(
                400, "invalid_request", "Missing required parameter: 'bytes'.", param="bytes"
            )
        if body["purpose"] not in PURPOSES:
            raise ApiError(
                400,
                "invalid_value",
                f"Invalid 'purpose': {body['purpose']!r}. Expected one of {', '.join(PURPOSES)}.",
                param="purpose",
            )
        if size > limit:
            raise too_large(limit)
        now = now_ms()
        upload = UploadRecord(
            new_id(),
            now,
            body["filename"],
            body["purpose"],
            size,
            body["mime_type"],
            now + UPLOAD_TTL_MS,
        )
        await store.insert(UPLOADS, upload)
        return await render(upload)

    async def add_part(call: Call) -> JSONObject:
        upload = await pending(call)
        must_be_pending(upload)
        part_upload = await read_upload(call, field="data", max_file_bytes=limit)
        part = UploadPartRecord(new_id(), now_ms(), upload.id, part_upload.data)
        await store.insert(UPLOAD_PARTS, part)
        return d.upload_part(part)

    async def complete(call: Call) -> JSONObject:
        upload = await pending(call)
        must_be_pending(upload)
        ids = call.body.get("part_ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ApiError(
                400, "invalid_request", "Missing required parameter: 'part_ids'.", param="part_ids"
            )
        chunks = []
        for wire in ids:
            uid = parse_id("part", wire)
            part: UploadPartRecord | None = None
            if uid is not None:
                part = await store.get(UPLOAD_PARTS, uid, upload_id=upload.id)
            if part is None:
                raise ApiError(
                    400,
                    "invalid_value",
                    f"Invalid 'part_ids': no part {wire!r} in this upload.",
                    param="part_ids",
                )
            chunks.append(part.data)
        data = b"".join(chunks)
        if len(data) != upload.bytes:
            raise ApiError(
                400,
                "invalid_value",
                f"The parts hold {len(data)} bytes; the upload was created for {upload.bytes}.",
                param="part_ids",
            )
        await check_room(files, len(data), total)
        record = await files.add(data, upload.filename, upload.mime_type, purpose=upload.purpose)
        done = await store.update(UPLOADS, upload.id, {"status": "completed", "file_id": record.id})
        await _drop_parts(upload.id)
        return await render(done or upload)

    async def cancel(call: Call) -> JSONObject:
        upload = await pending(call)
        must_be_pending(upload)
        done = await store.update(UPLOADS, upload.id, {"status": "cancelled"})
        await _drop_parts(upload.id)
        return await render(done or upload)

    async def _drop_parts(upload_id: str) -> None:
        parts = await store.list_page(
            UPLOAD_PARTS, PageQuery(limit=1 << 40), {"upload_id": upload_id}
        )
        for part in parts.items:
            await store.delete(UPLOAD_PARTS, part.id)

    r = api.route
    return [
        r("/uploads", create, ["POST"]),
        r("/uploads/{upload_id}/parts", add_part, ["POST"], multipart=True),
        r("/uploads/{upload_id}/complete", complete, ["POST"]),
        r("/uploads/{upload_id}/cancel", cancel, ["POST"]),
    ]
