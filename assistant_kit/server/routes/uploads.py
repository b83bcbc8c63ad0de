"""Reading an uploaded file from a ``multipart/form-data`` body, within the server's limits.

``read_upload(call, ...)`` returns the file's name, bytes, content type and the other form
fields, or raises the ``ApiError`` a client should see: 415 for another content type, 413 for
a file over ``max_file_bytes``, 400 for a missing ``file`` part or a malformed body, 507 when
the stored files together would pass ``max_files_total_bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import UploadFile
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
    request = call.request
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Unsupported content type {media_type or '(none)'!r}; send multipart/form-data.",
        )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_file_bytes + _FORM_OVERHEAD:
        raise too_large(max_file_bytes)
    try:
        form = await request.form(max_files=1, max_fields=32)
    except MultiPartException as e:
        raise ApiError(400, "invalid_request", f"The multipart body is malformed: {e}.") from None
    try:
        part = form.get(field)
        if not isinstance(part, UploadFile):
            raise ApiError(
                400, "invalid_request", f"Missing required parameter: '{field}'.", param=field
            )
        data = await part.read(max_file_bytes + 1)
        if len(data) > max_file_bytes:
            raise too_large(max_file_bytes)
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        return Upload(
            part.filename or "file",
            data,
            part.content_type or "application/octet-stream",
            fields,
        )
    finally:
        await form.close()
