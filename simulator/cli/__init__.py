"""The ``embsim`` command. Bad input exits with status 2 and one line naming what was wrong.

Each subcommand lives in its own module, imported only when that subcommand runs (``embsim
--help`` imports none of them), so that start-up costs what the command needs and no more.
"""

from __future__ import annotations

import importlib
import sys

import click

from embsim.errors import InputError
from embsim.signals import sigterm_as_interrupt

COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("simulator.cli.run", "run",
            "Simulate EXPERIMENT (a YAML file) and write DIR/results.parquet."),
    "trace": ("simulator.cli.trace", "trace",
              "Generate, convert and inspect embedding access traces."),
    "compare": ("simulator.cli.compare", "compare_command",
                "Compare the configurations in RESULTS (results.parquet, or its folder)."),
    "measure": ("simulator.cli.measure", "measure",
                "Execute every point of EXPERIMENT for real and record its timings."),
    "calibrate": ("simulator.cli.measure", "calibrate",
                  "Run microbenchmarks on BACKEND and write a machine preset fitted to them."),
    "validate": ("simulator.cli.measure", "validate",
                 "Simulate EXPERIMENT's measured points and compare with the measurements."),
    "presets": ("simulator.cli.presets", "presets",
                "List the hardware presets and show their parameters with sources."),
    "memtrace": ("simulator.cli.memtrace", "memtrace",
                 "Replay the memory-request TRACE through the device SYSTEM (a preset or a YAML "
                 "file)."),
    "schema": ("simulator.cli", "schema",
               "Print the JSON Schema of the experiment YAML format (for editors)."),
}
"""Subcommand -> (module, attribute, one-line help shown by ``embsim --help``)."""

NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())
"""What click (8.2 on) raises for a group given no subcommand."""


class LazyGroup(click.Group):
    """A group whose subcommands are imported when they are run, not when it is listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="embsim")
def cli() -> None:
    """embsim: trace-driven simulation of memory hierarchies for embedding lookups."""


@click.command()
def schema() -> None:
    """Print the JSON Schema of the experiment YAML format (for editors)."""
    import json

    from simulator.core.config import Experiment

    click.echo(json.dumps(Experiment.model_json_schema(), indent=2))


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the click group and turns ``InputError`` and bad options into exit
    status 2 with one line; SIGTERM ends a command as Ctrl-C does (cleaning up)."""
    try:
        with sigterm_as_interrupt():
            rc = cli.main(args=argv, prog_name="embsim", standalone_mode=False)
    except InputError as err:
        click.echo(f"embsim: error: {err}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except click.UsageError as err:
        if isinstance(err, NO_ARGS_IS_HELP):    # a bare group: its help, as click shows it
            err.show()
            sys.exit(err.exit_code)
        command = err.ctx.command_path if err.ctx is not None else "embsim"
        message = " ".join(err.format_message().split())
        click.echo(f"embsim: error: {message} (see '{command} --help')", err=True)
        sys.exit(err.exit_code)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("embsim: aborted", err=True)
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)
