"""What copying and pickling mean for objects that own native (C) state of this process."""

from __future__ import annotations

from typing import NoReturn, TypeVar

_Self = TypeVar("_Self", bound="NativeObject")


class NativeObject:
    """An immutable holder of native state: a copy is the object itself (it shares its kernel,
    as a copied Python function shares its code); pickling raises a TypeError saying why and
    what to do instead (``_pickle_advice``).
    """

    __slots__ = ()

    def _pickle_advice(self) -> str:
        return "it holds native state of this process"

    def __copy__(self: _Self) -> _Self:
        return self

    def __deepcopy__(self: _Self, memo: dict[int, object]) -> _Self:
        return self

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"cannot pickle {self._pickle_advice()}")
