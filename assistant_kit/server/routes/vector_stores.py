"""OpenAI's vector stores (``/v1/vector_stores``): stores, their files, file batches, search.

Handlers turn wire ids and bodies into ``knowledge.vector_stores`` calls and render the records
through the mount's dialect. Ingestion runs in the background (``VectorStores``): a create
answers at once with ``in_progress`` files, and polling shows them complete or fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.routing import BaseRoute

from assistant_kit.errors import ApiError
from assistant_kit.server.endpoints import Api, Call
from assistant_kit.server.ids import parse_id
from assistant_kit.server.knowledge.chunking import ChunkingStrategy
from assistant_kit.server.knowledge.filters import check_filter
from assistant_kit.server.knowledge.records import FileBatchRecord, VectorStoreRecord
from assistant_kit.server.knowledge.vector_stores import FileInput, VectorStoreInput, VectorStores
from assistant_kit.server.routes.context import ServerContext
from assistant_kit.server.store.base import PageQuery

JSONObject = dict[str, Any]
_FILE_STATUSES = ("in_progress", "completed", "failed", "cancelled")


def _bad(param: str, message: str) -> ApiError:
    return ApiError(400, "invalid_value", message, param=param)


def _file_uid(value: Any, param: str) -> str:
    uid = parse_id("file", value) if isinstance(value, str) else None
    if uid is None:
        raise _bad(param, f"Invalid '{param}': {value!r} is not a file id.")
    return uid


def _strategy(body: Mapping[str, Any], param: str = "chunking_strategy") -> ChunkingStrategy | None:
    raw = body.get(param)
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise _bad(param, f"Invalid '{param}': expected an object.")
    try:
        return ChunkingStrategy.from_body(raw)
    except ValueError as e:
        raise _bad(param, f"Invalid '{param}': {e}.") from None


def _attributes(body: Mapping[str, Any], param: str = "attributes") -> dict[str, Any]:
    raw = body.get(param)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or len(raw) > 16:
        raise _bad(param, f"Invalid '{param}': expected an object of at most 16 keys.")
    for key, value in raw.items():
        if len(key) > 64 or not isinstance(value, (str, int, float, bool)):
            raise _bad(
                param,
                f"Invalid '{param}.{key}': keys have at most 64 characters and values are "
                "strings, numbers or booleans.",
            )
        if isinstance(value, str) and len(value) > 512:
            raise _bad(
                param, f"Invalid '{param}.{key}': a string value has at most 512 characters."
            )
    return dict(raw)


def _expires_after(body: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = body.get("expires_after")
    if raw is None:
        return None
    days = raw.get("days") if isinstance(raw, Mapping) else None
    anchor = raw.get("anchor") if isinstance(raw, Mapping) else None
    if anchor != "last_active_at" or not isinstance(days, int) or not 1 <= days <= 365:
        raise _bad(
            "expires_after",
            'Invalid \'expires_after\': expected {"anchor": "last_active_at", "days": 1..365}.',
        )
    return {"anchor": anchor, "days": days}


def _metadata(body: Mapping[str, Any]) -> dict[str, str] | None:
    raw = body.get("metadata")
    if raw is None:
        return None
    if (
        not isinstance(raw, Mapping)
        or len(raw) > 16
        or not all(isinstance(v, str) and len(k) <= 64 and len(v) <= 512 for k, v in raw.items())
    ):
        raise _bad("metadata", "Invalid 'metadata': at most 16 string keys and string values.")
    return dict(raw)


def _file_inputs(body: Mapping[str, Any]) -> list[FileInput]:
    """``file_ids`` (with the body's ``attributes`` and ``chunking_strategy``) or ``files``."""
    shared_strategy, shared_attributes = _strategy(body), _attributes(body)
    given: list[FileInput] = []
    ids = body.get("file_ids")
    if ids is not None:
        if not isinstance(ids, list) or len(ids) > 500:
            raise _bad("file_ids", "Invalid 'file_ids': expected an array of at most 500 ids.")
        for i, wire in enumerate(ids):
            uid = _file_uid(wire, f"file_ids[{i}]")
            given.append(FileInput(uid, shared_attributes, shared_strategy))
    files = body.get("files")
    if files is not None:
        if ids is not None:
            raise _bad("files", "Give either 'file_ids' or 'files', not both.")
        if not isinstance(files, list) or len(files) > 500:
            raise _bad("files", "Invalid 'files': expected an array of at most 500 objects.")
        for i, entry in enumerate(files):
            if not isinstance(entry, Mapping):
                raise _bad(f"files[{i}]", f"Invalid 'files[{i}]': expected an object.")
            uid = _file_uid(entry.get("file_id"), f"files[{i}].file_id")
            attributes = _attributes(entry, "attributes") if "attributes" in entry else None
            strategy = _strategy(entry)
            given.append(
                FileInput(
                    uid,
                    shared_attributes if attributes is None else attributes,
                    strategy or shared_strategy,
                )
            )
    return given


def _queries(body: Mapping[str, Any]) -> list[str]:
    query = body.get("query")
    queries = [query] if isinstance(query, str) else query
    if not isinstance(queries, list) or not queries or not all(isinstance(q, str) for q in queries):
        raise _bad("query", "Invalid 'query': expected a string or an array of strings.")
    return queries


def routes(api: Api, ctx: ServerContext) -> list[BaseRoute]:
    stores: VectorStores = ctx.vector_stores
    d = api.dialect

    async def render(record: VectorStoreRecord) -> JSONObject:
        summary = await stores.summary(record.id)
        return d.vector_store(record, summary, stores.status(record, summary))

    async def render_batch(batch: FileBatchRecord) -> JSONObject:
        summary = await stores.summary(batch.vector_store_id, batch.id)
        return d.file_batch(batch, summary, stores.batch_status(batch, summary))

    def page_of(call: Call) -> PageQuery:
        return call.page("file")

    async def create(call: Call) -> JSONObject:
        body = call.body
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise _bad("name", "Invalid 'name': expected a string.")
        record = await stores.create(
            VectorStoreInput(
                name=name,
                metadata=_metadata(body) or {},
                expires_after=_expires_after(body),
                files=_file_inputs(body),
                chunking_strategy=_strategy(body),
            )
        )
        return await render(record)

    async def list_stores(call: Call) -> JSONObject:
        page = await stores.list_stores(call.page("vector_store"))
        return d.list_body([await render(r) for r in page.items], page.has_more)

    async def get(call: Call) -> JSONObject:
        return await render(await stores.get(call.id("vector_store")))

    async def update(call: Call) -> JSONObject:
        body, changes = call.body, dict[str, Any]()
        if "name" in body:
            if body["name"] is not None and not isinstance(body["name"], str):
                raise _bad("name", "Invalid 'name': expected a string.")
            changes["name"] = body["name"]
        if body.get("metadata") is not None:
            changes["metadata"] = _metadata(body)
        if "expires_after" in body:
            changes["expires_after"] = _expires_after(body)
        return await render(await stores.update(call.id("vector_store"), changes))

    async def delete(call: Call) -> JSONObject:
        uid = call.id("vector_store")
        await stores.delete(uid)
        return d.deleted("vector_store", "vector_store.deleted", uid)

    async def search(call: Call) -> JSONObject:
        body = call.body
        queries = _queries(body)
        limit = body.get("max_num_results", 10)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 50:
            raise _bad("max_num_results", "Invalid 'max_num_results': expected 1..50.")
        filters = body.get("filters")
        if filters is not None:
            try:
                check_filter(filters)
            except ValueError as e:
                raise _bad("filters", f"Invalid 'filters': {e}.") from None
        threshold = _threshold(body.get("ranking_options"))
        uid = call.id("vector_store")
        await stores.usable(uid)
        hits = await stores.search(
            [uid], " ".join(queries), limit=limit, score_threshold=threshold, filters=filters
        )
        return d.search_results(queries, hits)

    async def add_file(call: Call) -> JSONObject:
        body = call.body
        given = FileInput(
            _file_uid(body.get("file_id"), "file_id"), _attributes(body), _strategy(body)
        )
        return d.vector_store_file(await stores.add_file(call.id("vector_store"), given))

    async def list_files(call: Call) -> JSONObject:
        status = _status_filter(call)
        page = await stores.list_files(call.id("vector_store"), page_of(call), status=status)
        return d.list_body([d.vector_store_file(x) for x in page.items], page.has_more)

    async def get_file(call: Call) -> JSONObject:
        link = await stores.get_file(call.id("vector_store"), call.id("file"))
        return d.vector_store_file(link)

    async def update_file(call: Call) -> JSONObject:
        if "attributes" not in call.body:
            raise _bad("attributes", "Missing required parameter: 'attributes'.")
        link = await stores.set_attributes(
            call.id("vector_store"), call.id("file"), _attributes(call.body)
        )
        return d.vector_store_file(link)

    async def delete_file(call: Call) -> JSONObject:
        file_uid = call.id("file")
        await stores.remove_file(call.id("vector_store"), file_uid)
        return d.deleted("file", "vector_store.file.deleted", file_uid)

    async def file_content(call: Call) -> JSONObject:
        chunks = await stores.file_chunks(call.id("vector_store"), call.id("file"))
        return d.chunk_page([c.text for c in chunks])

    async def create_batch(call: Call) -> JSONObject:
        files = _file_inputs(call.body)
        if not files:
            raise _bad("file_ids", "Missing required parameter: 'file_ids' (or 'files').")
        return await render_batch(await stores.create_batch(call.id("vector_store"), files))

    async def get_batch(call: Call) -> JSONObject:
        batch = await stores.get_batch(call.id("vector_store"), call.id("file_batch", "batch_id"))
        return await render_batch(batch)

    async def cancel_batch(call: Call) -> JSONObject:
        uid, batch_id = call.id("vector_store"), call.id("file_batch", "batch_id")
        return await render_batch(await stores.cancel_batch(uid, batch_id))

    async def batch_files(call: Call) -> JSONObject:
        uid, batch_id = call.id("vector_store"), call.id("file_batch", "batch_id")
        await stores.get_batch(uid, batch_id)
        page = await stores.list_files(
            uid, page_of(call), status=_status_filter(call), batch_id=batch_id
        )
        return d.list_body([d.vector_store_file(x) for x in page.items], page.has_more)

    r = api.route
    base = "/vector_stores/{vector_store_id}"
    batch = base + "/file_batches/{batch_id}"
    return [
        r("/vector_stores", create, ["POST"]),
        r("/vector_stores", list_stores, ["GET"]),
        r(base, get, ["GET"]),
        r(base, update, ["POST"]),
        r(base, delete, ["DELETE"]),
        r(base + "/search", search, ["POST"]),
        r(base + "/files", add_file, ["POST"]),
        r(base + "/files", list_files, ["GET"]),
        r(base + "/files/{file_id}", get_file, ["GET"]),
        r(base + "/files/{file_id}", update_file, ["POST"]),
        r(base + "/files/{file_id}", delete_file, ["DELETE"]),
        r(base + "/files/{file_id}/content", file_content, ["GET"]),
        r(base + "/file_batches", create_batch, ["POST"]),
        r(batch, get_batch, ["GET"]),
        r(batch + "/cancel", cancel_batch, ["POST"]),
        r(batch + "/files", batch_files, ["GET"]),
    ]


def _status_filter(call: Call) -> str | None:
    status = call.request.query_params.get("filter")
    if status is not None and status not in _FILE_STATUSES:
        raise _bad("filter", f"Invalid 'filter': expected one of {', '.join(_FILE_STATUSES)}.")
    return status


def _threshold(options: Any) -> float:
    if options is None:
        return 0.0
    if not isinstance(options, Mapping):
        raise _bad("ranking_options", "Invalid 'ranking_options': expected an object.")
    value = options.get("score_threshold", 0.0)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise _bad("ranking_options.score_threshold", "Invalid 'score_threshold': expected 0..1.")
    return float(value)
