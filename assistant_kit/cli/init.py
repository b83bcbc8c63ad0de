"""`kit init`: start a project with a kit.yaml, an example assistant and a partials folder."""

from __future__ import annotations

import secrets
from pathlib import Path

import click

from assistant_kit.errors import ConfigError
from assistant_kit.spec.project import project_slug
from assistant_kit.spec.validate import SCHEMA_DIR

KIT_YAML = """\
# yaml-language-server: $schema=schemas/kit.schema.json
# The project file of assistant-kit: where specs live, template vars, targets, the embedded server.
# schemas/ holds copies of the installed kit's schemas: `kit init --schemas` refreshes them.
project: {project}     # marks this project's assistants on shared targets (keep it stable)
specs: assistants
partials: assistants/partials
vars:
  company: Example Co
default_target: local
targets:
  local: {{provider: local}}          # the embedded Assistant API server, in-process
  # dashscope:
  #   provider: dashscope
  #   base_url: https://dashscope.aliyuncs.com/api/v1
  #   api_key_env: DASHSCOPE_API_KEY
server:
  models:
    default: {{backend: llama-cpp}}   # a small local model serves every model name
test:
  concurrency: 4                    # tests at a time (kit test -j N overrides)
  timeout_s: 60
"""

ASSISTANT_YAML = """\
# yaml-language-server: $schema=../schemas/assistant.schema.json
name: helper                        # identity on every target (a slug)
display_name: Helper                # the API's `name`
model: qwen-max
description: A friendly general assistant.
instructions: |
  You are the helpful assistant of {{ company }}.
  {% include "tone.md.j2" %}
tools:
  - code_interpreter
settings:
  temperature: 0.3
tests:
  - name: knows a capital
    tags: [smoke]
    turns:
      - user: What is the capital of France?
        expect:
          - icontains: Paris
"""

TONE = """\
Answer briefly and politely, in the language of the question.
"""

GITIGNORE_LINE = ".kit/"
GITIGNORE = f"""\
# the embedded server's state and kit chat's history
{GITIGNORE_LINE}
"""

#: What to run after `kit init`: the whole first loop.
NEXT = "kit validate && kit apply --yes && kit test && kit chat helper"


def project_files(project: str) -> dict[str, str]:
    """Relative path -> content of every file `kit init` writes (``.gitignore`` is merged)."""
    return {
        "kit.yaml": KIT_YAML.format(project=project),
        "assistants/helper.yaml": ASSISTANT_YAML,
        "assistants/partials/tone.md.j2": TONE,
        **schema_files(),
    }


def schema_files() -> dict[str, str]:
    """``schemas/<name>`` -> the installed kit's schema, for editor hover docs."""
    return {
        f"schemas/{schema.name}": schema.read_text(encoding="utf-8")
        for schema in sorted(SCHEMA_DIR.glob("*.schema.json"))
    }


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@click.option(
    "--schemas",
    "schemas_only",
    is_flag=True,
    help="Only (re)write schemas/ from the installed kit, e.g. after an upgrade.",
)
def init(directory: Path, force: bool, schemas_only: bool) -> None:
    """Start a project in DIRECTORY (default: here).

    Writes kit.yaml (with a project identity that marks this project's assistants on shared
    targets), assistants/helper.yaml (an example assistant with a test), assistants/partials/
    for {% include %}, schemas/ for editor hover docs and a .gitignore for .kit/ (the embedded
    server's state). Existing files are left alone unless --force is given.

    \b
    Examples:
      kit init                  in the current folder
      kit init my-assistants    in a new folder
      kit init --schemas        refresh schemas/ after upgrading the kit
    """
    if schemas_only:
        for name, content in schema_files().items():
            _write(directory / name, content)
        return
    project = f"{project_slug(directory.resolve().name)[:57]}-{secrets.token_hex(3)}"
    files = project_files(project)
    existing = [name for name in files if (directory / name).exists()]
    if existing and not force:
        raise ConfigError(
            f"{directory / existing[0]} already exists; use --force to overwrite "
            f"({len(existing)} file(s) in the way)"
        )
    for name, content in files.items():
        _write(directory / name, content)
    _ignore_kit_folder(directory / ".gitignore")
    where = "" if directory == Path(".") else f"cd {directory} && "
    click.echo(f"\nNext: {where}{NEXT}")


def _write(path: Path, content: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
    click.echo(f"created {path}")


def _ignore_kit_folder(path: Path) -> None:
    """Write a .gitignore for .kit/, or add the line to the one there."""
    if not path.exists():
        _write(path, GITIGNORE)
        return
    try:
        text = path.read_text(encoding="utf-8")
        lines = {line.strip() for line in text.splitlines()}
        if lines & {GITIGNORE_LINE, ".kit", "/.kit/", "/.kit"}:
            return
        with path.open("a", encoding="utf-8") as fh:
            fh.write(("" if text.endswith("\n") or not text else "\n") + GITIGNORE)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
    click.echo(f"added {GITIGNORE_LINE} to {path}")
