"""Source strings → :class:`Source` records.

Forms: ``scheme:rest`` for any registered scheme (``file:``, and those issue-specific adapters add),
a plain path, or a bare name that goes through the name resolvers in order (aliases first).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from pathlib import Path

from weightport.errors import InvalidSourceError, SourceNotFoundError, UnknownSourceError
from weightport.registry.aliases import get_alias, list_aliases
from weightport.registry.schemes import get_adapter, is_registered
from weightport.registry.source import Source
from weightport.registry.table import Registry

SourceLike = str | os.PathLike | Source

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]+):(?P<rest>.*)$", re.S)

#: A name resolver turns a bare name into a Source, or returns None when it does not know it.
NameResolver = Callable[[str], "Source | None"]
#: A candidate lister returns names a resolver knows, for "did you mean" messages.
CandidateLister = Callable[[], "list[str]"]

#: Built-in resolvers, tried in this order after the aliases: ``(resolve_name, candidates)`` pairs.
BUILTIN_NAME_RESOLVERS: dict[str, str] = {
    "torchvision": "weightport.adapters.torchvision:NAME_RESOLVER",
    "timm": "weightport.adapters.timm:NAME_RESOLVER",
}

NAME_RESOLVERS: Registry[tuple[NameResolver, CandidateLister]] = Registry("name resolver", BUILTIN_NAME_RESOLVERS)


def register_name_resolver(name: str, resolve: NameResolver, candidates: CandidateLister, *,
                           override: bool = False) -> None:
    """Add a resolver for bare names, tried after the aliases and the resolvers added before it.

    Raises:
        DuplicateRegistrationError: ``name`` is taken and ``override`` is false.
    """
    NAME_RESOLVERS.register(name, (resolve, candidates), override=override)


def _name_resolvers() -> list[tuple[str, NameResolver, CandidateLister]]:
    out = []
    for name in NAME_RESOLVERS.names():
        try:
            entry = NAME_RESOLVERS.get(name)
        except ImportError:  # a library that is not installed resolves no names
            continue
        if entry is not None:
            out.append((name, *entry))
    return out


def resolve(source: SourceLike) -> Source:
    """Parse a source string (or path, or :class:`Source`) into a :class:`Source`.

    Raises:
        InvalidSourceError: The string is empty or malformed.
        UnknownSourceError: A bare name that no alias or library knows.
        SourceNotFoundError: Something that looks like a path but does not exist.
    """
    if isinstance(source, Source):
        return source
    if isinstance(source, os.PathLike):
        return get_adapter("file").parse(os.fspath(source), os.fspath(source))
    if not isinstance(source, str) or not source.strip():
        raise InvalidSourceError(f"a source must be a non-empty string or path, got {source!r}")
    text = source.strip()
    match = _SCHEME.match(text)
    if match and is_registered(match["scheme"]):
        return get_adapter(match["scheme"]).parse(match["rest"], text)
    if _looks_like_path(text):
        path = Path(text).expanduser()
        if not path.exists():
            raise SourceNotFoundError(
                f"checkpoint not found: {text}",
                hint="check the path; a hub repository is written hf:org/repo, a named source "
                "without any '/' (e.g. resnet18)",
            )
        return get_adapter("file").parse(text, text)
    if match:
        raise UnknownSourceError(
            f"unknown scheme {match['scheme']!r} in source {text!r}",
            hint="known schemes: " + ", ".join(s + ":" for s in _known_schemes()),
        )
    return _resolve_name(text)


#: File extensions that make a bare word a path, not a name (``model.ckpt`` is never a registry name).
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".npz", ".json", ".tar")


def _looks_like_path(text: str) -> bool:
    return ("/" in text or os.sep in text or text.startswith((".", "~")) or text.lower().endswith(CHECKPOINT_SUFFIXES)
            or Path(text).exists())


def _known_schemes() -> list[str]:
    from weightport.registry.schemes import schemes

    return schemes()


def _resolve_name(name: str) -> Source:
    alias = get_alias(name)
    if alias is not None:
        from weightport.registry.alias_source import source_from_alias

        return source_from_alias(alias)
    for resolver_name, resolver, _ in _name_resolvers():
        found = resolver(name)
        if found is not None:
            return found if found.resolved_by else found.replace(resolved_by=f"{name!r} found in {resolver_name}")
    candidates = [a.name for a in list_aliases()]
    for _, _, lister in _name_resolvers():
        candidates.extend(lister())
    close = difflib.get_close_matches(name, list(dict.fromkeys(candidates)), n=5, cutoff=0.6)
    raise UnknownSourceError(
        f"no source named {name!r}: not an alias"
        + "".join(f", not in {n}" for n, _, _ in _name_resolvers())
        + (f"; close matches: {', '.join(close)}" if close else ""),
        hint="use an explicit form (file:PATH, hf:org/repo, https://…), or list names with `weightport list`",
    )
