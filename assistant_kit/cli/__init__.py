"""The `kit` command line: a thin shell over the library.

This is the only package that imports click. Each command lives in its own module and is loaded
lazily, so `kit --help` stays fast and one command's imports never slow another.
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
import sys

import click

from assistant_kit import __version__
from assistant_kit.errors import ApiConnectionError, ConfigError, KitError, SpecError


class ExitCode(enum.IntEnum):
    """Process exit codes of every `kit` command."""

    #: Everything went as asked.
    OK = 0
    #: Checks failed: bad specs, failing tests, a failed apply, an error from the target.
    FAILED = 1
    #: The command line or the configuration cannot be used (click's own usage errors too).
    USAGE = 2
    #: `kit test` selected no test (pytest's code for it): a typo in a CI filter fails the job.
    NO_TESTS = 5
    #: Ctrl-C (SIGINT): what finished is reported, runs are cancelled (128 + SIGINT, as shells do).
    INTERRUPTED = 130


#: command name -> "module:attribute", loaded on first use.
COMMANDS: dict[str, str] = {
    "init": "assistant_kit.cli.init:init",
    "validate": "assistant_kit.cli.validate:validate",
    "render": "assistant_kit.cli.render:render",
    "serve": "assistant_kit.cli.serve:serve",
    "plan": "assistant_kit.cli.plan:plan",
    "apply": "assistant_kit.cli.plan:apply",
    "import": "assistant_kit.cli.plan:import_",
    "destroy": "assistant_kit.cli.plan:destroy",
    "test": "assistant_kit.cli.test:test",
    "chat": "assistant_kit.cli.chat:chat",
}


def _set_color(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    from assistant_kit.cli.output import configure

    if value is not None:
        configure(color=value)


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: int) -> None:
    from assistant_kit.cli.logs import setup_logging
    from assistant_kit.cli.output import configure

    configure(verbosity=value)
    setup_logging(value)


def common_options() -> list[click.Parameter]:
    """The options every command takes: ``--color`` and ``-v/--verbose``."""
    return [
        click.Option(
            ["--color"],
            type=click.Choice(["auto", "always", "never"]),
            default=None,
            expose_value=False,
            is_eager=True,
            callback=_set_color,
            help="Colour the output: auto (a terminal, unless NO_COLOR; FORCE_COLOR forces "
            "it), always, never.",
        ),
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            is_eager=True,
            callback=_set_verbosity,
            help="Log what the kit does on stderr (-vv: every HTTP exchange, secrets redacted; "
            "also KIT_LOG=debug|info).",
        ),
    ]


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when they are used; each gets the
    ``common_options``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if _available(name))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None or not _available(cmd_name):
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        known = {name for p in command.params for name in p.opts}
        for option in common_options():
            if not known & set(option.opts):
                command.params.append(option)
                known.update(option.opts)
        return command


def _available(name: str) -> bool:
    module_name = COMMANDS[name].split(":")[0]
    return importlib.util.find_spec(module_name) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="kit")
def cli() -> None:
    """Assistants as config: validate, plan, apply and test them.

    \b
    Examples:
      kit init my-project        start a project with an example assistant
      kit validate               check every spec under assistants/
      kit plan                   show what `kit apply` would change
      kit apply --yes            make the target match the specs
      kit test                   replay the conversations declared in the specs
      kit chat art-maestro       talk to an assistant in the terminal
      kit serve                  run the Assistant API server on 127.0.0.1:8900

    Every command takes --color auto|always|never and -v/--verbose (or KIT_LOG=debug).
    """
    from assistant_kit.cli.output import reset

    reset()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `kit` script: every KitError becomes a message and an exit code."""
    try:
        code = cli.main(args=argv, prog_name="kit", standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort) as exc:
        # click turns Ctrl-C into Abort (its cause); a "no" to a confirmation is a bare Abort
        if isinstance(exc, KeyboardInterrupt) or isinstance(exc.__cause__, KeyboardInterrupt):
            click.echo("Interrupted.", err=True)
            sys.exit(ExitCode.INTERRUPTED)
        click.echo("Aborted.", err=True)
        sys.exit(ExitCode.FAILED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.USAGE if isinstance(exc, click.UsageError) else exc.exit_code)
    except SpecError as exc:
        from assistant_kit.cli.output import current

        for issue in exc.issues:
            current().line(str(issue), "red", err=True)
        sys.exit(ExitCode.FAILED)
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(ExitCode.USAGE)
    except KitError as exc:
        from assistant_kit.cli.output import current, error_text

        current().error(error_text(exc))
        # a target that cannot be reached is a configuration problem, not a failed check
        sys.exit(ExitCode.USAGE if isinstance(exc, ApiConnectionError) else ExitCode.FAILED)
    except OSError as exc:  # a file or folder the command cannot read or write
        click.echo(f"Error: {exc}", err=True)
        sys.exit(ExitCode.FAILED)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
