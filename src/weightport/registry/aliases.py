"""Named aliases for weight sources: ``register_source("my-resnet", "hf:org/repo", sha256=...)``."""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, field
from typing import Any

from weightport.errors import DuplicateRegistrationError


@dataclass(frozen=True)
class Alias:
    """A name that stands for a source string, with what is known about the weights behind it."""

    name: str
    target: str
    sha256: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


_ALIASES: dict[str, Alias] = {}
_lock = threading.RLock()


def register_source(
    name: str, source: str, *, sha256: str | None = None, override: bool = False, **metadata: Any
) -> Alias:
    """Register ``name`` as an alias for the source string ``source``.

    Args:
        name: The bare name users will write (``Model.from_pretrained(name)``).
        source: Any source string weightport understands (``hf:org/repo``, ``https://…``, a path).
        sha256: Pin the content: a fetched file with another digest is refused.
        override: Replace an existing alias of the same name.
        **metadata: Anything the weights come with: ``classes``, ``head``, ``first_conv``,
            ``layout``, ``license``, ``mean``, ``std``, ``input_size``, ``interpolation``.

    Raises:
        DuplicateRegistrationError: ``name`` is taken and ``override`` is false.
    """
    with _lock:
        existing = _ALIASES.get(name)
        if existing is not None and not override and (existing.target, existing.sha256) != (source, sha256):
            raise DuplicateRegistrationError(
                f"source alias {name!r} is already registered as {existing.target!r}",
                hint="pass override=True to replace it",
            )
        alias = Alias(name=name, target=source, sha256=sha256, metadata=dict(metadata))
        _ALIASES[name] = alias
        return alias


def get_alias(name: str) -> Alias | None:
    """The alias registered under ``name``, or ``None``."""
    from weightport.registry.plugins import load_plugins

    load_plugins()
    return _ALIASES.get(name)


def list_aliases(pattern: str | None = None) -> list[Alias]:
    """Registered aliases whose name matches the glob ``pattern``, sorted by name (copies)."""
    from weightport.registry.plugins import load_plugins

    load_plugins()
    with _lock:
        items = sorted(_ALIASES.values(), key=lambda a: a.name)
    return [a for a in items if pattern is None or fnmatch.fnmatch(a.name, pattern)]


def unregister_source(name: str) -> None:
    """Remove an alias (mainly for tests); unknown names are ignored."""
    with _lock:
        _ALIASES.pop(name, None)
