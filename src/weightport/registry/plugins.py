"""Third-party adapters and aliases from the ``weightport.sources`` entry points.

The built-in schemes, name resolvers and aliases are data in their tables (nothing here registers
them). An entry point may name an :class:`~weightport.adapters.base.Adapter` subclass (registered
under its ``scheme``) or a callable taking no arguments that registers adapters and aliases itself.
They load once per process, on the first lookup; a plugin that fails (cannot be imported, raises,
or registers a name that is taken) is reported with a :class:`~weightport.warnings.PluginWarning`
and skipped, and the others still load.
"""

from __future__ import annotations

import logging
import threading
from importlib.metadata import EntryPoint, distributions, entry_points

logger = logging.getLogger("weightport")

ENTRY_POINT_GROUP = "weightport.sources"

_loaded = False
_lock = threading.RLock()
#: Entry point name → why it failed, for the plugins that could not be loaded in this process.
FAILED: dict[str, str] = {}


def load_plugins() -> None:
    """Load the entry-point plugins, once per process."""
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        _loaded = True
        if not _declared():
            return
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            _load_entry_point(ep)


def _declared() -> bool:
    """Whether an installed distribution's entry points name the group at all.

    ``entry_points(group=...)`` parses every distribution's entry points (~8 ms for 100 installed
    packages, the first load in a process pays it); reading them and looking for the group's name
    is a third of that, and only a distribution whose text names the group can have one.
    """
    return any(ENTRY_POINT_GROUP in (dist.read_text("entry_points.txt") or "") for dist in distributions())


def _load_entry_point(ep: EntryPoint) -> None:
    try:
        _register(ep)
    except Exception as exc:  # a broken plugin must not break every load, nor the other plugins
        from weightport.warnings import PluginWarning, warn

        FAILED[ep.name] = f"{type(exc).__name__}: {exc}"
        message = f"weightport plugin {ep.name!r} ({ep.value}) could not be loaded and is skipped: {FAILED[ep.name]}"
        logger.warning("%s", message)
        warn(message, PluginWarning)


def _register(ep: EntryPoint) -> None:
    from weightport.errors import UsageError
    from weightport.registry.schemes import register_adapter

    obj = ep.load()
    # An adapter class by its contract (a ``scheme`` and ``parse``/``fetch``), not by importing the
    # Adapter base class: the registry sits before the adapters in the pipeline and never imports them.
    scheme = getattr(obj, "scheme", None)
    if isinstance(obj, type) and isinstance(scheme, str) and all(callable(getattr(obj, m, None))
                                                                 for m in ("parse", "fetch")):
        register_adapter(scheme)(obj)
    elif callable(obj):
        obj()
    else:
        raise UsageError(f"{ep.value} is neither an Adapter subclass nor a callable")
