"""DashScope's ``Files`` through dashscope 2.0.2 against ``kit serve``: upload, list by page,
get, delete, in its own shapes and ``file_`` ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def test_upload_list_get_delete(dashscope_sdk: Any, tmp_path: Path) -> None:
    Files = dashscope_sdk.Files
    path = tmp_path / "guide.md"
    path.write_text("# Guide\nDescale monthly.", encoding="utf-8")
    uploaded = Files.upload(file_path=str(path), purpose="assistants")
    assert uploaded.status_code == 200, uploaded
    (entry,) = uploaded.output["uploaded_files"]
    assert entry["name"] == "guide.md" and entry["file_id"].startswith("file_")
    assert uploaded.output["failed_uploads"] == []
    file_id = entry["file_id"]

    got = Files.get(file_id)
    assert got.status_code == 200 and got.output["name"] == "guide.md"
    assert got.output["size"] == len("# Guide\nDescale monthly.")

    listed = Files.list(page=1, page_size=100)
    assert listed.status_code == 200
    assert file_id in [f["file_id"] for f in listed.output["files"]]
    assert listed.output["page_size"] == 100 and listed.output["total"] >= 1

    deleted = Files.delete(file_id)
    assert deleted.status_code == 200
    gone = Files.get(file_id)
    assert gone.status_code == 404


def test_upload_without_files_is_a_clear_400(dashscope_sdk: Any) -> None:
    import httpx

    url = dashscope_sdk.base_http_api_url.rstrip("/") + "/files"
    answer = httpx.post(
        url,
        headers={"Authorization": f"Bearer {dashscope_sdk.api_key}"},
        data={"descriptions": "x"},
        files={"other": ("a.txt", b"x")},
    )
    assert answer.status_code == 400
    assert answer.json()["message"] == "Missing required parameter: 'files'."
