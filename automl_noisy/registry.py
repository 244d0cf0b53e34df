"""Registry: one per method family. Registering is decorating; one string builds an object.

>>> from automl_noisy.registry import Registry
>>> colors = Registry("color")
>>> @colors.register("red")
... class Red:
...     pass
>>> colors.names()
['red']
>>> colors.get("red").__name__
'Red'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from automl_noisy.errors import choose_from

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to the classes of one family. A duplicate name is an error."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(cls: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.family} {name!r} is registered twice")
            if name == "none":
                raise ValueError(f"'none' is reserved: it means 'no {self.family}'")
            setattr(cls, "name", name)
            self._entries[name] = cls
            return cls

        return decorate

    def get(self, name: str) -> T:
        """The class registered as ``name``; an unknown name is a user error listing the choices."""
        try:
            return self._entries[name]
        except KeyError:
            raise choose_from(self.family, name, self.names()) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
