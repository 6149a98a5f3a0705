"""``embsim --help`` lists every subcommand without importing any of them, and the one-line
help it shows is each command's own."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from simulator.cli import COMMANDS, cli


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_listed_help_is_the_commands_own(name):
    command = cli.get_command(None, name)
    assert command is not None and command.name in (name, f"{name}_command", "compare")
    first_line = (command.help or "").strip().splitlines()[0]
    assert COMMANDS[name][2] == first_line


def test_help_imports_no_subcommand_and_no_model():
    code = ("import sys; from simulator.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('\\n' + __import__('json').dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert "Commands:" in proc.stdout and all(name in proc.stdout for name in COMMANDS)
    heavy = {"numpy", "numba", "pandas", "scipy", "pydantic", "simpy", "simulator.core",
             *(module for module, _, _ in COMMANDS.values() if module != "simulator.cli")}
    assert not heavy & loaded, sorted(heavy & loaded)
