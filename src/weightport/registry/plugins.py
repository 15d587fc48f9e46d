"""Discovery of built-in adapters and of third-party ones from the ``weightport.sources`` entry points.

An entry point may name an :class:`~weightport.adapters.base.Adapter` subclass (registered under its
``scheme``) or a callable taking no arguments that registers adapters and aliases itself.
"""

from __future__ import annotations

import importlib
import logging
import threading
from importlib.metadata import entry_points

logger = logging.getLogger("weightport")

#: Modules holding the built-in adapters; each registers itself on import.
BUILTIN_ADAPTER_MODULES: tuple[str, ...] = (
    "weightport.adapters.local",
    "weightport.adapters.url",
    "weightport.adapters.pkg",
    "weightport.adapters.hf",
    # Bare names resolve in the order these register their name resolvers: torchvision, then timm.
    "weightport.adapters.torchvision",
    "weightport.adapters.timm",
    "weightport.registry.builtin_aliases",
)

ENTRY_POINT_GROUP = "weightport.sources"

_loaded = False
_lock = threading.RLock()


def load_plugins() -> None:
    """Import the built-in adapters and the entry-point plugins, once per process."""
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        _loaded = True
        for module in BUILTIN_ADAPTER_MODULES:
            importlib.import_module(module)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            _load_entry_point(ep)


def _load_entry_point(ep) -> None:
    from weightport.adapters.base import Adapter
    from weightport.registry.schemes import register_adapter

    try:
        obj = ep.load()
    except Exception as exc:  # a broken plugin must not break every load
        logger.warning("weightport plugin %r could not be loaded: %s", ep.name, exc)
        return
    if isinstance(obj, type) and issubclass(obj, Adapter):
        register_adapter(obj.scheme)(obj)
    elif callable(obj):
        obj()
    else:
        logger.warning("weightport plugin %r is neither an Adapter nor a callable; ignored", ep.name)
