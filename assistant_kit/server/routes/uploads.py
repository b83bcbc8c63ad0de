"""Reading an uploaded file from a ``multipart/form-data`` body, within the server's limits.

``read_upload(call, ...)`` returns the file's name, bytes, content type and the other form
fields, or raises the ``ApiError`` a client should see: 415 for another content type, 413 for
a file over ``max_file_bytes``, 400 for a missing ``file`` part or a malformed body, 507 when
the stored files together would pass ``max_files_total_bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from assistant_kit.errors import ApiError
from assistant_kit.server.endpoints import Call
from assistant_kit.server.files import FileStore

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
