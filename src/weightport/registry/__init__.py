"""Named weight sources: the :class:`Source` record, source strings, aliases and the scheme table."""

from weightport.registry.aliases import Alias, list_aliases, register_source
from weightport.registry.resolve import register_name_resolver, resolve
from weightport.registry.schemes import get_adapter, register_adapter
from weightport.registry.source import Preprocessing, Source

__all__ = [
    "Alias",
    "Preprocessing",
    "Source",
    "get_adapter",
    "list_aliases",
    "register_adapter",
    "register_name_resolver",
    "register_source",
    "resolve",
]
