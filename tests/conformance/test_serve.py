"""`kit serve` as a user runs it: what it prints, where it stores, how it stops."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from kit_server import KitServer, running_kit_server, server_env, stop

pytestmark = pytest.mark.slow


def test_it_prints_both_base_urls_and_the_sdk_variables(kit_server: KitServer) -> None:
    lines = kit_server.read_output().splitlines()
    base = kit_server.base_url
    # the server has one --api-key: the lines say where the key goes, never the key
    assert f"  export DASHSCOPE_HTTP_BASE_URL={base}/api/v1 DASHSCOPE_API_KEY=YOUR-KEY" in lines
    assert f"  export OPENAI_BASE_URL={base}/v1 OPENAI_API_KEY=YOUR-KEY" in lines
    assert f"  DashScope: {base}/api/v1" in lines and f"  OpenAI:    {base}/v1" in lines
    assert kit_server.api_key not in kit_server.read_output()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_it_cleanly(tmp_path: Path, sig: int) -> None:
    with running_kit_server(output_dir=tmp_path) as server:
        headers = {"Authorization": f"Bearer {server.api_key}"}
        r = httpx.post(
            f"{server.openai_url}/assistants", json={"model": "m"}, headers=headers, trust_env=False
        )
        assert r.status_code == 200
        assert stop(server, sig) == 0
        assert "Traceback" not in server.read_output()
    assert "Stopped." in server.read_output()
    assert not (tmp_path / ".kit").exists()  # --db :memory: keeps nothing


def test_the_default_store_is_kit_server_db_under_the_project(tmp_path: Path) -> None:
    env = {"KIT_SERVER_API_KEYS": "k1,k2"}
    with running_kit_server(
        api_key="k2", database=None, pass_key=False, env=env, output_dir=tmp_path
    ) as server:
        url = f"{server.openai_url}/assistants"
        ok = httpx.get(url, headers={"Authorization": "Bearer k1"}, trust_env=False)
        assert ok.status_code == 200
        wrong = httpx.get(url, headers={"Authorization": "Bearer other"}, trust_env=False)
        assert wrong.status_code == 401
        assert stop(server) == 0
    db = tmp_path / ".kit" / "server.db"
    assert db.exists()
    output = server.read_output()
    assert f"store {db}" in output and "Stopped." in output
    assert "any non-empty key" not in output and "k1" not in output


def test_it_refuses_a_public_host_without_a_key(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "assistant_kit", "serve", "--host", "0.0.0.0", "--db", ":memory:"],
        env=server_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without an API key" in result.stderr
    assert "KIT_SERVER_API_KEYS" in result.stderr


def test_a_port_in_use_is_reported(kit_server: KitServer, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "assistant_kit",
            "serve",
            "--port",
            str(kit_server.port),
            "--db",
            ":memory:",
        ],
        env=server_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


def test_a_store_that_cannot_be_opened_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "assistant_kit", "serve", "--db", str(tmp_path / "a-file" / "x.db")],
        env=server_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("Error: cannot open the store")
    assert "Traceback" not in result.stderr
