"""Error types shared by every package.

``InputError`` is a problem with what the user gave (config, trace, command line): the CLI
prints its message and exits with status 2. Anything else escaping a run is a bug.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad user input; the message names the file, the field and what was expected."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        self.detail = message
        parts = [p for p in (source, field) if p]
        super().__init__(": ".join([*parts, message]))


class InvariantError(AssertionError):
    """A simulation broke one of its own invariants: a bug in embsim, not in the input."""


class FunctionalMismatch(AssertionError):
    """The functional data path disagrees with the PyTorch reference."""
