"""Helpers for spec-layer tests: tiny projects written into tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


class ProjectDir:
    """A scratch project: write specs, partials and kit.yaml, then load or validate it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "assistants").mkdir()

    def spec(self, name: str, text: str | bytes) -> Path:
        path = self.root / "assistants" / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def partial(self, name: str, text: str) -> Path:
        folder = self.root / "assistants" / "partials"
        folder.mkdir(exist_ok=True)
        path = folder / name
        path.write_text(text, encoding="utf-8")
        return path

    def kit(self, text: str) -> Path:
        path = self.root / "kit.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    def fixture(self, *names: str) -> None:
        for name in names:
            source = FIXTURES / name
            (self.root / "assistants" / source.name).write_bytes(source.read_bytes())


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ProjectDir:
    """An empty project in tmp_path, which is also the working directory."""
    monkeypatch.chdir(tmp_path)
    return ProjectDir(tmp_path)
