"""`kit init`: start a project with a kit.yaml, an example assistant and a partials folder."""

from __future__ import annotations

from pathlib import Path

import click

from assistant_kit.errors import ConfigError
from assistant_kit.spec.validate import SCHEMA_DIR

KIT_YAML = """\
# yaml-language-server: $schema=schemas/kit.schema.json
# The project file of assistant-kit: where specs live, template vars, targets, the embedded server.
specs: assistants
partials: assistants/partials
vars:
  company: Example Co
default_target: local
targets:
  local: {provider: local}          # the embedded Assistant API server, in-process
  # dashscope:
  #   provider: dashscope
  #   base_url: https://dashscope.aliyuncs.com/api/v1
  #   api_key_env: DASHSCOPE_API_KEY
server:
  models:
    default: {backend: llama-cpp}   # a small local model serves every model name
test:
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

#: Relative path -> content of every file `kit init` writes (schemas are copied separately).
FILES: dict[str, str] = {
    "kit.yaml": KIT_YAML,
    "assistants/helper.yaml": ASSISTANT_YAML,
    "assistants/partials/tone.md.j2": TONE,
}


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: Path, force: bool) -> None:
    """Start a project in DIRECTORY (default: here).

    Writes kit.yaml, assistants/helper.yaml (an example assistant with a test),
    assistants/partials/ for {% include %} and schemas/ for editor hover docs.
    Existing files are left alone unless --force is given.

    \b
    Examples:
      kit init                  in the current folder
      kit init my-assistants    in a new folder
    """
    files = dict(FILES)
    for schema in sorted(SCHEMA_DIR.glob("*.schema.json")):
        files[f"schemas/{schema.name}"] = schema.read_text(encoding="utf-8")
    existing = [name for name in files if (directory / name).exists()]
    if existing and not force:
        raise ConfigError(
            f"{directory / existing[0]} already exists; use --force to overwrite "
            f"({len(existing)} file(s) in the way)"
        )
    for name, content in files.items():
        path = directory / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
        click.echo(f"created {path}")
    where = "" if directory == Path(".") else f"cd {directory} && "
    click.echo(f"\nNext: {where}kit validate && kit render helper")
