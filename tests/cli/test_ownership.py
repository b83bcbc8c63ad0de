"""Two projects on one `kit serve`: each plans, applies, prunes and destroys only its own
assistants (the `kit_project` mark); assistants marked before projects existed keep matching."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))
from kit_server import KitServer, running_kit_server, server_env

pytestmark = pytest.mark.slow

SPEC = """\
name: {name}
model: qwen-max
instructions: You are {name}.
tests:
  - name: greets
    turns: [{{user: hi, expect: [{{contains: Hello}}]}}]
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KitServer]:
    folder = tmp_path_factory.mktemp("served")
    (folder / "models.yaml").write_text(
        "server:\n  models:\n    default: {backend: scripted, default: Hello there.}\n"
    )
    with running_kit_server(
        database=str(folder / "server.db"),
        output_dir=folder,
        extra_args=["--config", str(folder / "models.yaml")],
    ) as server:
        yield server


def make_project(root: Path, server: KitServer, names: list[str], project: str | None) -> Path:
    (root / "assistants").mkdir(parents=True)
    for name in names:
        (root / "assistants" / f"{name}.yaml").write_text(SPEC.format(name=name))
    identity = f"project: {project}\n" if project else ""
    (root / "kit.yaml").write_text(
        f"{identity}default_target: served\n"
        "targets:\n"
        f"  served: {{provider: local, base_url: '{server.openai_url}', api_key_env: KIT_KEY}}\n"
    )
    return root


def kit(cwd: Path, server: KitServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant_kit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env({"KIT_KEY": server.api_key}),
    )


def remote(server: KitServer) -> list[dict[str, object]]:
    headers = {"Authorization": f"Bearer {server.api_key}", "OpenAI-Beta": "assistants=v2"}
    with httpx.Client(trust_env=False) as http:
        page = http.get(f"{server.openai_url}/assistants?limit=100", headers=headers).json()
    return list(page["data"])


def names_of(server: KitServer, project: str | None) -> list[str]:
    return sorted(
        str(a["metadata"]["kit_name"])  # type: ignore[index]
        for a in remote(server)
        if a["metadata"].get("kit_project") == project  # type: ignore[union-attr]
        and "kit_name" in a["metadata"]  # type: ignore[operator]
    )


def test_two_projects_prune_and_destroy_only_their_own(served: KitServer, tmp_path: Path) -> None:
    alpha = make_project(tmp_path / "alpha", served, ["a-one", "a-two", "shared"], "alpha")
    beta = make_project(tmp_path / "beta", served, ["b-one", "shared"], "beta")
    for project in (alpha, beta):
        done = kit(project, served, "apply", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
    assert names_of(served, "alpha") == ["a-one", "a-two", "shared"]
    assert names_of(served, "beta") == ["b-one", "shared"]

    # each project tests its own `shared`, not "applied more than once"
    tested = kit(alpha, served, "test", "shared")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.startswith("PASS   shared::greets")

    # nothing of beta's is planned, listed as an orphan or counted as alpha's
    (alpha / "assistants" / "a-two.yaml").unlink()
    planned = kit(alpha, served, "plan", "--prune")
    assert planned.returncode == 0, planned.stderr
    lines = planned.stdout.splitlines()
    assert lines[0].startswith('  - assistant "a-two"') and "will be deleted" in lines[0]
    assert "Plan: 0 to create, 0 to update, 1 to delete." in lines
    assert "2 assistants of other projects on the target left alone (this project: alpha)." in lines
    assert "b-one" not in planned.stdout and "has no spec" not in planned.stdout

    pruned = kit(alpha, served, "apply", "--prune", "--yes")
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert names_of(served, "alpha") == ["a-one", "shared"]
    assert names_of(served, "beta") == ["b-one", "shared"]

    # beta's plan is untouched by alpha's life: no changes, no orphans
    beta_plan = kit(beta, served, "plan", "--prune")
    assert beta_plan.stdout.splitlines()[0] == "No changes. The target matches the specs."

    destroyed = kit(alpha, served, "destroy", "--yes")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert names_of(served, "alpha") == []
    assert names_of(served, "beta") == ["b-one", "shared"]
    gone = kit(beta, served, "destroy", "--yes")
    assert gone.returncode == 0 and names_of(served, "beta") == []


def test_assistants_marked_before_projects_keep_matching(served: KitServer, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {served.api_key}", "OpenAI-Beta": "assistants=v2"}
    with httpx.Client(trust_env=False) as http:
        for name in ("legacy-bot", "legacy-orphan"):
            created = http.post(
                f"{served.openai_url}/assistants",
                headers=headers,
                json={
                    "model": "qwen-max",
                    "name": name,
                    "instructions": f"You are {name}.",
                    "metadata": {"kit_name": name},
                },
            )
            assert created.is_success, created.text
    mine = make_project(tmp_path / "mine", served, ["legacy-bot"], "mine")
    other = make_project(tmp_path / "other", served, ["unrelated"], "other")

    planned = kit(mine, served, "plan", "--json", "-")
    data = json.loads(planned.stdout)
    (change,) = [c for c in data["changes"] if c["name"] == "legacy-bot"]
    assert change["action"] == "update" and change["marks_only"]
    assert {f["field"] for f in change["fields"]} >= {"metadata.kit_project"}
    # the text went to stderr; the bookkeeping digest is only in the JSON
    assert "kit_project" in planned.stderr and "kit_digest" not in planned.stderr
    assert kit(mine, served, "apply", "--yes").returncode == 0
    assert names_of(served, "mine") == ["legacy-bot"]

    # an old mark with no spec here may be anyone's: never pruned, never listed
    pruning = kit(other, served, "apply", "--prune", "--yes")
    assert pruning.returncode == 0, pruning.stdout + pruning.stderr
    assert "legacy" not in pruning.stdout
    left = {a["metadata"]["kit_name"] for a in remote(served) if "kit_name" in a["metadata"]}  # type: ignore[index,operator]
    assert {"legacy-bot", "legacy-orphan"} <= left


def test_a_project_without_an_identity_takes_its_folder_name(
    served: KitServer, tmp_path: Path
) -> None:
    folder = make_project(tmp_path / "My Bots", served, ["folder-bot"], None)
    done = kit(folder, served, "apply", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert names_of(served, "my-bots") == ["folder-bot"]
    assert kit(folder, served, "destroy", "--yes").returncode == 0


def test_the_update_plan_hides_the_digest_line(served: KitServer, tmp_path: Path) -> None:
    project = make_project(tmp_path / "digest", served, ["digest-bot"], "digest")
    assert kit(project, served, "apply", "--yes").returncode == 0
    spec = project / "assistants" / "digest-bot.yaml"
    spec.write_text(spec.read_text().replace("You are", "You were"))
    planned = kit(project, served, "plan")
    assert "~ instructions" in planned.stdout
    assert "kit_digest" not in planned.stdout
    assert "Plan: 0 to create, 1 to update, 0 to delete." in planned.stdout
    assert kit(project, served, "destroy", "--yes").returncode == 0
