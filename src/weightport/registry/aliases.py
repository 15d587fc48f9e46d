"""Named aliases for weight sources: ``register_source("my-resnet", "hf:org/repo", sha256=...)``.

The aliases weightport ships are data (``builtin_aliases.json``), in place before any call; a user's
alias of the same name (registered with ``override=True``) always wins over them.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

from weightport.errors import InvalidSourceError
from weightport.registry.table import Registry

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class Alias:
    """A name that stands for a source string, with what is known about the weights behind it."""

    name: str
    target: str
    sha256: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def _builtin_aliases() -> dict[str, Alias]:
    from weightport.registry.builtin_aliases import builtin_aliases

    out = {}
    for name, entry in builtin_aliases().items():
        entry = dict(entry)
        out[name] = Alias(name, entry.pop("source"), entry.pop("sha256", None), entry)
    return out


ALIASES: Registry[Alias] = Registry("source alias", load_builtins=_builtin_aliases)


def register_source(
    name: str, source: str, *, sha256: str | None = None, override: bool = False, **metadata: Any
) -> Alias:
    """Register ``name`` as an alias for the source string ``source``.

    Args:
        name: The bare name users will write (``Model.from_pretrained(name)``).
        source: Any source string weightport understands (``hf:org/repo``, ``https://…``, a path).
        sha256: Pin the content (64 hex digits): a fetched file with another digest is refused.
        override: Replace an existing alias of the same name (a shipped one included).
        **metadata: Anything the weights come with: ``classes``, ``head``, ``first_conv``,
            ``layout``, ``license``, ``mean``, ``std``, ``input_size``, ``interpolation``.

    Raises:
        DuplicateRegistrationError: ``name`` is taken and ``override`` is false.
        InvalidSourceError: ``name`` or ``source`` is empty, or ``sha256`` is not 64 hex digits.
    """
    if not isinstance(name, str) or not name.strip() or not isinstance(source, str) or not source.strip():
        raise InvalidSourceError(f"an alias needs a non-empty name and source string, got {name!r} -> {source!r}")
    if sha256 is not None and not (isinstance(sha256, str) and _HEX64.match(sha256)):
        raise InvalidSourceError(
            f"sha256={sha256!r} for alias {name!r} is not a sha256 digest",
            hint="pass the file's 64 hex digits (`sha256sum FILE`), or leave sha256 out",
        )
    alias = Alias(name=name, target=source, sha256=sha256.lower() if sha256 else None, metadata=dict(metadata))
    return ALIASES.register(name, alias, override=override)


def get_alias(name: str) -> Alias | None:
    """The alias registered under ``name``, or ``None``."""
    from weightport.registry.plugins import load_plugins

    load_plugins()
    return ALIASES.get(name)


def list_aliases(pattern: str | None = None) -> list[Alias]:
    """Registered aliases whose name matches the glob ``pattern``, sorted by name (copies)."""
    from weightport.registry.plugins import load_plugins

    load_plugins()
    items = sorted((alias for _, alias in ALIASES.items()), key=lambda a: a.name)
    return [a for a in items if pattern is None or fnmatch.fnmatch(a.name, pattern)]


def unregister_source(name: str) -> None:
    """Remove a user alias (mainly for tests); unknown names are ignored. A shipped alias stays."""
    ALIASES.unregister(name)
