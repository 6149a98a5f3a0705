"""From a pydantic validation error to what a user reads: the one translation every config,
preset and option parser shares."""

from __future__ import annotations

import re
import reprlib

from pydantic import ValidationError

MAX_SHOWN = 120
"""Characters of a given value quoted back in a message, at most."""

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 8
_REPR.maxstring = _REPR.maxother = MAX_SHOWN
_REPR.maxlong = 40


def shown(value: object) -> str:
    """``repr(value)``, cut short if long (a message must stay one readable line). The repr
    itself is bounded, so a huge value (a YAML alias expanded a billion times) costs nothing."""
    text = _REPR.repr(value)
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}..."


_TYPE_LABEL = re.compile(r"^(constrained-\w+|function-[\w-]+\[.*\]|int|str|float|bool|"
                         r"(list|dict|literal)\[.*\])$")
"""Parts of a pydantic error location that name a branch of a union, not a key."""


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a dotted path of the user's keys (union branches left
    out)."""
    return ".".join(str(part) for part in loc
                    if not (isinstance(part, str) and _TYPE_LABEL.match(part)))


def first_problem(err: ValidationError, unknown: str = "unknown key") -> tuple[str, str]:
    """(dotted location, message) of the first problem pydantic found. The message says what
    was given (unless it was a mapping or missing) and what was expected; ``unknown`` is the
    message for a key the model does not have; further problems are counted."""
    problems = err.errors()
    first = problems[0]
    loc = field_path(first["loc"])
    given = first.get("input")
    text = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = unknown
    elif first["type"] == "missing" or isinstance(given, dict) or "got " in text:
        message = text
    else:
        message = f"{text} (got {shown(given)})"
    if len(problems) > 1:
        more = len(problems) - 1
        message += f" [and {more} more problem{'s' if more > 1 else ''}]"
    return loc, message
