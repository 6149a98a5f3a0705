"""Name -> implementation registries, filled by a decorator.

YAML picks an implementation by name (``policy: lru``); an unknown name is an ``InputError``
that lists the known ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from embsim.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of implementations of one extension point."""

    def __init__(self, what: str):
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@POLICIES.register("lru")`` adds the decorated object under ``name``."""

        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.what} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str, *, source: str | None = None, field: str | None = None) -> T:
        """The implementation called ``name``; an ``InputError`` listing the choices otherwise."""
        try:
            return self._items[name]
        except KeyError:
            raise InputError(
                f"unknown {self.what} {name!r}; expected one of: {', '.join(self.names())}",
                source=source,
                field=field,
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
