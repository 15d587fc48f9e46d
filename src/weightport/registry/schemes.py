"""The scheme → adapter table.

The built-in schemes are data (:data:`BUILTIN_SCHEMES`), in place before any call; their modules are
imported on first use. Adapters register with :func:`register_adapter` and always win over a
built-in of the same scheme (with ``override=True``); third-party packages may also declare them in
the entry-point group ``weightport.sources`` (see :mod:`weightport.registry.plugins`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from weightport.errors import UnknownSourceError
from weightport.registry.table import Registry

if TYPE_CHECKING:
    from weightport.adapters.base import Adapter

A = TypeVar("A", bound="type[Adapter]")

#: Scheme → where its adapter class lives.
BUILTIN_SCHEMES: dict[str, str] = {
    "file": "weightport.adapters.local:LocalAdapter",
    "https": "weightport.adapters.url:UrlAdapter",
    "http": "weightport.adapters.url:UrlAdapter",
    "pkg": "weightport.adapters.pkg:PackageAdapter",
    "hf": "weightport.adapters.hf:HubAdapter",
    "torchvision": "weightport.adapters.torchvision:TorchvisionAdapter",
    "timm": "weightport.adapters.timm:TimmAdapter",
}

SCHEMES: Registry[type[Adapter]] = Registry("scheme", BUILTIN_SCHEMES)


def register_adapter(scheme: str, *, override: bool = False) -> Callable[[A], A]:
    """Class decorator registering an :class:`~weightport.adapters.base.Adapter` for ``scheme``.

    Args:
        scheme: The prefix before ``:`` in a source string (lower case, e.g. ``s3``).
        override: Replace an adapter already registered for the scheme (a built-in one included;
            the other built-ins are not affected).

    Raises:
        DuplicateRegistrationError: The scheme is taken and ``override`` is false.
    """
    scheme = scheme.lower()

    def decorate(cls: A) -> A:
        SCHEMES.register(scheme, cls, override=override)
        return cls

    return decorate


def get_adapter(scheme: str) -> Adapter:
    """A fresh adapter instance for ``scheme``.

    Raises:
        UnknownSourceError: No adapter is registered for the scheme.
    """
    from weightport.registry.plugins import load_plugins

    load_plugins()
    cls = SCHEMES.get(scheme.lower())
    if cls is None:
        close = SCHEMES.close_matches(scheme)
        raise UnknownSourceError(
            f"no adapter for scheme {scheme!r}; known schemes: {', '.join(sorted(SCHEMES.names()))}",
            hint=f"did you mean {' or '.join(repr(c + ':') for c in close)}?" if close else
            "register one with @weightport.register_adapter(scheme)",
        )
    return cls()


def schemes() -> list[str]:
    """The registered schemes, sorted."""
    from weightport.registry.plugins import load_plugins

    load_plugins()
    return sorted(SCHEMES.names())


def is_registered(scheme: str) -> bool:
    """Whether an adapter is registered for ``scheme`` (built-ins and plugins)."""
    from weightport.registry.plugins import load_plugins

    load_plugins()
    return SCHEMES.is_registered(scheme.lower())
