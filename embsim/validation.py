"""From a pydantic validation error to what a user reads: the one translation every config,
preset and option parser shares."""

from __future__ import annotations

from pydantic import ValidationError

MAX_SHOWN = 120
"""Characters of a given value quoted back in a message, at most."""


def shown(value: object) -> str:
    """``repr(value)``, cut short if long (a message must stay one readable line)."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}... ({len(text)} chars)"


def first_problem(err: ValidationError, unknown: str = "unknown key") -> tuple[str, str]:
    """(dotted location, message) of the first problem pydantic found. The message says what
    was given (unless it was a mapping or missing) and what was expected; ``unknown`` is the
    message for a key the model does not have; further problems are counted."""
    problems = err.errors()
    first = problems[0]
    loc = ".".join(str(part) for part in first["loc"])
    given = first.get("input")
    if first["type"] == "extra_forbidden":
        message = unknown
    elif first["type"] == "missing" or isinstance(given, dict) or "got " in first["msg"]:
        message = first["msg"]
    else:
        message = f"{first['msg']} (got {shown(given)})"
    if len(problems) > 1:
        more = len(problems) - 1
        message += f" [and {more} more problem{'s' if more > 1 else ''}]"
    return loc, message
