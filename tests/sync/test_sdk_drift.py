"""Drift made by the official SDKs on a live `kit serve` shows in the plan."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant_kit.connect import open_target
from assistant_kit.spec.project import load_project
from assistant_kit.sync.apply import apply_plan
from assistant_kit.sync.plan import build_plan
from assistant_kit.sync.render import render_plan

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))
from kit_server import KitServer, running_kit_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SPEC = """\
name: art-maestro
display_name: Art Maestro
model: qwen-max
instructions: |
  Answer questions about painting.
tools:
  - quark_search
settings: {temperature: 0.7, top_p: 0.8}
metadata: {team: art}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitServer]:
    folder = tmp_path_factory.mktemp("served")
    with running_kit_server(database=str(folder / "server.db"), output_dir=folder) as server:
        yield server


def project_dir(tmp_path: Path, server: KitServer, name: str) -> Path:
    (tmp_path / "assistants").mkdir()
    spec = SPEC.replace("art-maestro", name)
    (tmp_path / "assistants" / f"{name}.yaml").write_text(spec, encoding="utf-8")
    (tmp_path / "kit.yaml").write_text(
        "targets:\n"
        f"  served: {{provider: local, base_url: '{server.dashscope_url}', dialect: dashscope,"
        " api_key_env: KIT_TEST_KEY}\n"
        f"  oai: {{provider: openai, base_url: '{server.openai_url}',"
        " api_key_env: KIT_TEST_KEY}\n",
        encoding="utf-8",
    )
    return tmp_path


async def test_a_dashscope_sdk_edit_shows_as_drift(
    served: KitServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dashscope

    monkeypatch.setenv("KIT_TEST_KEY", served.api_key)
    project = load_project(target="served", cwd=project_dir(tmp_path, served, "ds-maestro"))
    async with open_target(project) as client:
        plan = await build_plan(client, project.specs, target="served", dialect="dashscope")
        report = await apply_plan(client, plan)
        assert report.ok
        (outcome,) = report.outcomes

        monkeypatch.setattr(dashscope, "base_http_api_url", served.dashscope_url)
        monkeypatch.setattr(dashscope, "api_key", served.api_key)
        edited = dashscope.Assistants.update(
            outcome.remote_id, instructions="Answer anything at all.", top_k=5
        )
        assert edited.status_code == 200

        drift = await build_plan(client, project.specs, target="served", dialect="dashscope")
        (change,) = drift.changes
        assert change.action == "update" and change.drifted and not change.spec_changed
        assert [(f.field, f.before) for f in change.fields] == [
            ("instructions", "Answer anything at all."),
            ("top_k", 5),
        ]
        text = render_plan(drift, diff=True)
        assert "! changed outside the kit since the last apply" in text
        assert "+Answer questions about painting." in text
        assert (await apply_plan(client, drift)).ok
        settled = await build_plan(client, project.specs, target="served", dialect="dashscope")
        assert not settled.has_changes


async def test_an_openai_sdk_edit_shows_as_drift(
    served: KitServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openai import OpenAI

    monkeypatch.setenv("KIT_TEST_KEY", served.api_key)
    project = load_project(target="oai", cwd=project_dir(tmp_path, served, "oai-maestro"))
    async with open_target(project) as client:
        plan = await build_plan(client, project.specs, target="oai", dialect="openai")
        assert [c.action for c in plan.changes] == ["create"]
        assert (await apply_plan(client, plan)).ok
        remote = next(
            a
            for a in await client.list_all_assistants()
            if a.metadata.get("kit_name") == "oai-maestro"
        )
        sdk = OpenAI(base_url=served.openai_url, api_key=served.api_key, max_retries=0)
        try:
            sdk.beta.assistants.update(
                remote.id, tools=[], metadata={**remote.metadata, "team": "x"}
            )
        finally:
            sdk.close()
        drift = await build_plan(client, project.specs, target="oai", dialect="openai")
        (change,) = drift.changes
        assert change.drifted
        assert [f.field for f in change.fields] == ["tools", "metadata.team"]
        assert '+ tool "quark_search"' in render_plan(drift)
