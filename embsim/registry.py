"""Name -> implementation registries, filled by a decorator.

YAML picks an implementation by name (``policy: lru``); an unknown name is an ``InputError``
that lists the known ones. A registry may be given a ``load`` function that imports the modules
which fill it; it runs on the first lookup, so that a command pays for the implementations it
uses and no others.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from embsim.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of implementations of one extension point."""

    def __init__(self, what: str, load: Callable[[], object] | None = None):
        self.what = what
        self._items: dict[str, T] = {}
        self._load = load

    def _loaded(self) -> dict[str, T]:
        """The items, after the modules that register them have been imported."""
        if self._load is not None:
            load, self._load = self._load, None
            load()
        return self._items

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
            return self._loaded()[name]
        except KeyError:
            raise InputError(
                f"unknown {self.what} {name!r}; expected one of: {', '.join(self.names())}",
                source=source,
                field=field,
            ) from None

    def names(self) -> list[str]:
        return sorted(self._loaded())

    def __contains__(self, name: object) -> bool:
        return name in self._loaded()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def submodules(package: str) -> Callable[[], None]:
    """A ``load`` function that imports every module of ``package`` (so a new
    implementation is one new module there)."""

    def load() -> None:
        found = importlib.import_module(package)
        for module in pkgutil.iter_modules(found.__path__):
            importlib.import_module(f"{package}.{module.name}")

    return load
