"""Error types shared by every package.

``InputError`` is a problem with what the user gave (config, trace, command line): the CLI
prints its message and exits with status 2. Anything else escaping a run is a bug.
"""

from __future__ import annotations

MAX_MESSAGE = 1000
"""Characters of an ``InputError``'s text at most: whatever the input held, the user reads
one line of bounded length."""


class InputError(Exception):
    """Bad user input; the message names the file, the field and what was expected. It is
    kept to one line (line breaks become spaces) of at most ``MAX_MESSAGE`` characters."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        self.detail = message
        parts = [p for p in (source, field) if p]
        text = " ".join(": ".join([*parts, message]).split("\n"))
        super().__init__(text if len(text) <= MAX_MESSAGE else f"{text[:MAX_MESSAGE]}...")


class InvariantError(AssertionError):
    """A simulation broke one of its own invariants: a bug in embsim, not in the input."""


class FunctionalMismatch(AssertionError):
    """The functional data path disagrees with the PyTorch reference."""
