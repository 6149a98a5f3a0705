"""The ``embsim`` command. Bad input exits with status 2 and one line naming what was wrong."""

from __future__ import annotations

import sys

import click

from embsim.errors import InputError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="embsim")
def cli() -> None:
    """embsim: trace-driven simulation of memory hierarchies for embedding lookups."""


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the experiment YAML format (for editors)."""
    import json

    from simulator.config import Experiment

    click.echo(json.dumps(Experiment.model_json_schema(), indent=2))


def _register_commands() -> None:
    from simulator.cli_compare import compare_command
    from simulator.cli_measure import calibrate, measure, validate
    from simulator.cli_memtrace import memtrace
    from simulator.cli_presets import presets
    from simulator.cli_run import run
    from simulator.cli_trace import trace

    cli.add_command(run)
    cli.add_command(trace)
    cli.add_command(compare_command)
    for command in (measure, calibrate, validate, presets, memtrace):
        cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the click group and turns ``InputError`` into exit status 2."""
    _register_commands()
    try:
        rc = cli.main(args=argv, prog_name="embsim", standalone_mode=False)
    except InputError as err:
        click.echo(f"embsim: error: {err}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("embsim: aborted", err=True)
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)
