"""`kit render`: the exact API body an assistant becomes."""

from __future__ import annotations

import os

import click

from assistant_kit.catalog import DIALECTS
from assistant_kit.cli.output import echo_json
from assistant_kit.spec.project import load_project


@click.command()
@click.argument("name")
@click.option(
    "--target",
    "-t",
    metavar="NAME",
    help="Target whose vars render the instructions (default: kit.yaml's default_target).",
)
@click.option(
    "--dialect",
    type=click.Choice(DIALECTS),
    help="Wire dialect of the body (default: the target's).",
)
@click.option(
    "--digest", "show_digest", is_flag=True, help="Print only the payload's sha256 digest."
)
def render(name: str, target: str | None, dialect: str | None, show_digest: bool) -> None:
    """Print the create/update body of assistant NAME as JSON.

    Instructions are rendered with the target's vars; plug-in tokens are shown as ${VAR}
    placeholders, never their values.

    \b
    Examples:
      kit render art-maestro                       body for the default target's dialect
      kit render art-maestro --dialect dashscope   what DashScope's SDK sends on create
      kit render order-desk --target dashscope --dialect openai
    """
    project = load_project((), target, jobs=os.cpu_count() or 1)
    spec = project.spec(name)
    chosen = dialect or project.target.dialect
    if show_digest:
        click.echo(spec.digest(chosen))
        return
    echo_json(spec.to_payload(chosen))
