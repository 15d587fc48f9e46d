"""User rename rules: ``rename={r"^encoder\\.": "backbone."}`` applied in order with ``re.sub``."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from os import PathLike
from pathlib import Path

from weightport.errors import InvalidSourceError, LayoutRuleError

RenameRules = Mapping[str, str] | str | PathLike


def load_rules(rules: RenameRules | None) -> list[tuple[re.Pattern[str], str]]:
    """Compile rename rules given as a mapping, or as a path to a JSON file holding one.

    A JSON file written by ``LoadPlan.save_rules`` holds ``{"rename": {pattern: replacement}}``.

    Raises:
        InvalidSourceError: A pattern that is not a valid regular expression, or an unreadable file.
    """
    if rules is None:
        return []
    if isinstance(rules, (str, PathLike)):
        try:
            data = json.loads(Path(rules).read_text())
        except (OSError, ValueError) as exc:
            raise InvalidSourceError(f"cannot read rename rules from {rules}: {exc}",
                                     hint="pass a mapping {regex: replacement} or a JSON file of one") from exc
        rules = data.get("rename", data) if isinstance(data, dict) else data
    if not isinstance(rules, Mapping):
        raise InvalidSourceError(f"rename rules must be a mapping {{regex: replacement}}, got {type(rules).__name__}")
    compiled = []
    for pattern, replacement in rules.items():
        try:
            compiled.append((re.compile(pattern), replacement))
        except re.error as exc:
            raise InvalidSourceError(f"rename pattern {pattern!r} is not a valid regular expression: {exc}") from exc
    return compiled


def apply_rules(keys: list[str], rules: list[tuple[re.Pattern[str], str]], *,
                what: str = "rename rules") -> tuple[dict[str, str], dict[str, list[str]]]:
    """Rename ``keys`` with ``rules`` (``re.sub``, in order); ``{new: old}`` and the rules applied per new key.

    Raises:
        LayoutRuleError: Two keys renamed to the same name (the rules would merge tensors).
    """
    out: dict[str, str] = {}
    ops: dict[str, list[str]] = {}
    for key in keys:
        new, applied = key, []
        for pattern, replacement in rules:
            renamed = pattern.sub(replacement, new)
            if renamed != new:
                applied.append(f"rename {pattern.pattern!r}->{replacement!r}")
                new = renamed
        if new in out:
            raise LayoutRuleError(
                f"{what}: both {out[new]!r} and {key!r} become {new!r}",
                hint="make the patterns more specific (anchor them with ^ and $)",
            )
        out[new] = key
        ops[new] = applied
    return out, ops


def exact_rules(mapping: Mapping[str, str]) -> dict[str, str]:
    """Turn an exact ``{source_key: target_key}`` table into anchored regex rules."""
    return {f"^{re.escape(src)}$": dst for src, dst in mapping.items()}
