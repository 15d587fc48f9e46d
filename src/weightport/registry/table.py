"""One kind of registry for every named table weightport keeps (schemes, aliases, layout rule sets, ...).

Built-in entries are *data*: a name and where its object lives (``"module:attribute"``), in place
when the table is created and imported only when first looked up, so ``import weightport`` stays
cheap and no lookup order can change what is registered. User entries live beside them and always
win: registering a built-in name (with ``override=True``) shadows it without touching the others,
and nothing weightport does later re-registers over a user's entry.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from weightport.errors import DuplicateRegistrationError

T = TypeVar("T")

_TABLES: list[Registry] = []  # type: ignore[type-arg]


@dataclass(frozen=True)
class Snapshot(Generic[T]):
    """The user entries of one table at one moment (see :meth:`Registry.snapshot`)."""

    user: dict[str, T]


class Registry(Generic[T]):
    """Named entries: built-ins given as import locations, user entries given as objects.

    Args:
        kind: What an entry is, for messages (``"scheme"``, ``"layout rule set"``).
        builtins: ``{name: "package.module:attribute"}``, in lookup order.
    """

    def __init__(self, kind: str, builtins: Mapping[str, str] | None = None, *,
                 load_builtins: Callable[[], Mapping[str, T]] | None = None) -> None:
        self.kind = kind
        self._builtin_specs: dict[str, str] = dict(builtins or {})
        self._builtin_objects: dict[str, T] = {}
        self._load_builtins = load_builtins  # built-ins kept as data elsewhere (a JSON file), read once
        self._user: dict[str, T] = {}
        self._lock = threading.RLock()
        _TABLES.append(self)

    def _read_builtins(self) -> None:
        if self._load_builtins is None:
            return
        with self._lock:
            loader, self._load_builtins = self._load_builtins, None
            if loader is not None:
                for name, obj in loader().items():
                    self._builtin_specs[name] = "(data)"
                    self._builtin_objects[name] = obj

    def register(self, name: str, obj: T, *, override: bool = False) -> T:
        """Add ``obj`` under ``name``; a user entry always wins over a built-in of the same name.

        Raises:
            DuplicateRegistrationError: ``name`` is taken (by a built-in or an earlier registration)
                by another object and ``override`` is false.
        """
        with self._lock:
            if not override and self.is_registered(name) and not self._same(name, obj):
                raise DuplicateRegistrationError(
                    f"{self.kind} {name!r} is already registered"
                    + (" (built in)" if name in self._builtin_specs and name not in self._user else ""),
                    hint="pass override=True to replace it",
                )
            self._user[name] = obj
            return obj

    def _same(self, name: str, obj: T) -> bool:
        if name in self._user:
            return self._user[name] is obj or self._user[name] == obj
        try:
            return self._builtin(name) is obj
        except ImportError:
            return False

    def unregister(self, name: str) -> None:
        """Remove a user entry (the built-in of that name, if any, is visible again)."""
        with self._lock:
            self._user.pop(name, None)

    def is_registered(self, name: str) -> bool:
        """Whether ``name`` has a user entry or a built-in one (nothing is imported)."""
        self._read_builtins()
        return name in self._user or name in self._builtin_specs

    def get(self, name: str) -> T | None:
        """The entry for ``name`` (user first, then built-in), or ``None``.

        Raises:
            ImportError: The built-in's module cannot be imported (a missing optional dependency).
        """
        self._read_builtins()
        with self._lock:
            if name in self._user:
                return self._user[name]
        if name in self._builtin_specs:
            return self._builtin(name)
        return None

    def _builtin(self, name: str) -> T:
        with self._lock:
            if name not in self._builtin_objects:
                module, _, attribute = self._builtin_specs[name].partition(":")
                self._builtin_objects[name] = getattr(importlib.import_module(module), attribute)
            return self._builtin_objects[name]

    def names(self) -> list[str]:
        """Every name, built-ins first in their order, then user entries in registration order."""
        self._read_builtins()
        with self._lock:
            return list(dict.fromkeys([*self._builtin_specs, *self._user]))

    def items(self) -> Iterator[tuple[str, T]]:
        """``(name, entry)`` in :meth:`names` order (importing built-ins as needed)."""
        for name in self.names():
            obj = self.get(name)
            if obj is not None:
                yield name, obj

    def close_matches(self, name: str, n: int = 3) -> list[str]:
        """Registered names that look like ``name`` (for "did you mean")."""
        return difflib.get_close_matches(name, self.names(), n=n)

    def snapshot(self) -> Snapshot[T]:
        """The user entries now, to :meth:`restore` later (tests)."""
        with self._lock:
            return Snapshot(dict(self._user))

    def restore(self, snapshot: Snapshot[T]) -> None:
        """Put the user entries back as they were at :meth:`snapshot`."""
        with self._lock:
            self._user = dict(snapshot.user)


def snapshot_all() -> list[tuple[Registry, Snapshot]]:  # type: ignore[type-arg]
    """A snapshot of every registry's user entries (tests restore it after each test)."""
    return [(table, table.snapshot()) for table in list(_TABLES)]


def restore_all(snapshots: list[tuple[Registry, Snapshot]]) -> None:  # type: ignore[type-arg]
    """Undo every registration made since :func:`snapshot_all`."""
    for table, snap in snapshots:
        table.restore(snap)
