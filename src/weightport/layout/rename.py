"""User rename rules: ``rename={r"^encoder\\.": "backbone."}`` applied in order with ``re.sub``."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
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


def smallest_rules(mapping: Mapping[str, str], unchanged: Sequence[str] = ()) -> dict[str, str]:
    """The fewest rules that rename every key of ``mapping`` as it says and leave ``unchanged`` alone.

    Each pair is split at the longest common tail of dotted parts (``model.backbone.layer1.0.conv1.weight``
    → ``layer1.0.conv1.weight`` gives the prefix pair ``model.backbone.`` → ``""``); pairs that share a
    prefix pair become one anchored prefix rule, most specific first. The rule set is then checked by
    applying it, in order, to every key: when it renames any key otherwise than ``mapping`` says, or
    touches a key of ``unchanged``, the exact per-key rules of :func:`exact_rules` are returned instead.
    """
    prefixes: dict[tuple[str, str], int] = {}
    for src, dst in mapping.items():
        a, b = src.split("."), dst.split(".")
        tail = 0
        while tail < min(len(a), len(b)) and a[-1 - tail] == b[-1 - tail]:
            tail += 1
        if tail == 0:
            return exact_rules(mapping)  # a key renamed in its last part: no prefix explains it
        pair = (".".join(a[:-tail]) + "." if len(a) > tail else "", ".".join(b[:-tail]) + "." if len(b) > tail else "")
        prefixes[pair] = prefixes.get(pair, 0) + 1
    ordered = sorted(prefixes, key=lambda p: (-len(p[0]), p[0]))
    rules = {f"^{re.escape(src)}": dst for src, dst in ordered}
    compiled = [(re.compile(p), r) for p, r in rules.items()]

    def renamed(key: str) -> str:
        for pattern, replacement in compiled:
            key = pattern.sub(replacement, key)
        return key

    if all(renamed(s) == d for s, d in mapping.items()) and all(renamed(k) == k for k in unchanged):
        return rules
    return exact_rules(mapping)
