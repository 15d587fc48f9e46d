"""The scheme → adapter table.

Adapters register with :func:`register_adapter`; third-party packages may also declare them in the
entry-point group ``weightport.sources`` (see :mod:`weightport.registry.plugins`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from weightport.errors import DuplicateRegistrationError, UnknownSourceError

if TYPE_CHECKING:
    from weightport.adapters.base import Adapter

A = TypeVar("A", bound="type[Adapter]")

_ADAPTERS: dict[str, type[Adapter]] = {}


def register_adapter(scheme: str, *, override: bool = False) -> Callable[[A], A]:
    """Class decorator registering an :class:`~weightport.adapters.base.Adapter` for ``scheme``.

    Args:
        scheme: The prefix before ``:`` in a source string (lower case, e.g. ``s3``).
        override: Replace an adapter already registered for the scheme.

    Raises:
        DuplicateRegistrationError: The scheme is taken and ``override`` is false.
    """
    scheme = scheme.lower()

    def decorate(cls: A) -> A:
        if scheme in _ADAPTERS and _ADAPTERS[scheme] is not cls and not override:
            raise DuplicateRegistrationError(
                f"scheme {scheme!r} is already registered to {_ADAPTERS[scheme].__qualname__}",
                hint="pass override=True to replace it",
            )
        _ADAPTERS[scheme] = cls
        return cls

    return decorate


def get_adapter(scheme: str) -> Adapter:
    """A fresh adapter instance for ``scheme``.

    Raises:
        UnknownSourceError: No adapter is registered for the scheme.
    """
    from weightport.registry.plugins import load_plugins

    load_plugins()
    cls = _ADAPTERS.get(scheme.lower())
    if cls is None:
        close = difflib.get_close_matches(scheme, list(_ADAPTERS), n=3)
        raise UnknownSourceError(
            f"no adapter for scheme {scheme!r}; known schemes: {', '.join(sorted(_ADAPTERS))}",
            hint=f"did you mean {' or '.join(repr(c + ':') for c in close)}?" if close else
            "register one with @weightport.register_adapter(scheme)",
        )
    return cls()


def schemes() -> list[str]:
    """The registered schemes, sorted."""
    from weightport.registry.plugins import load_plugins

    load_plugins()
    return sorted(_ADAPTERS)


def is_registered(scheme: str) -> bool:
    """Whether an adapter is registered for ``scheme`` (built-ins and plugins)."""
    from weightport.registry.plugins import load_plugins

    load_plugins()
    return scheme.lower() in _ADAPTERS
