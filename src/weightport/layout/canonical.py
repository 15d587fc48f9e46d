"""Strip the key prefixes that wrappers add: ``module.`` (DataParallel/DDP), ``_orig_mod.`` (torch.compile).

Each rule is a named, registered unit that proposes a renaming of the whole key set; a rule only
applies when it keeps keys unique, and the ops it applied are recorded per key for the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from weightport.errors import DuplicateRegistrationError


@dataclass(frozen=True)
class KeyRule:
    """A whole-key-set renaming: ``propose(keys)`` returns ``{old: new}`` for the keys it changes."""

    name: str
    propose: Callable[[Sequence[str]], dict[str, str]]


_RULES: dict[str, KeyRule] = {}


def register_key_rule(rule: KeyRule, *, override: bool = False) -> KeyRule:
    """Add a canonicalisation rule (applied in registration order)."""
    if rule.name in _RULES and not override:
        raise DuplicateRegistrationError(f"key rule {rule.name!r} is already registered", hint="pass override=True")
    _RULES[rule.name] = rule
    return rule


def key_rules() -> list[KeyRule]:
    """The registered canonicalisation rules, in order."""
    return list(_RULES.values())


def _drop_compile_segments(keys: Sequence[str]) -> dict[str, str]:
    # torch.compile's wrapper attribute is never a real module name, so it may go wherever it appears.
    out = {}
    for key in keys:
        if "_orig_mod." in key:
            out[key] = ".".join(p for p in key.split(".") if p != "_orig_mod")
    return out


def _drop_wrapper_segment(keys: Sequence[str]) -> dict[str, str]:
    # `module` is a legal submodule name, so it is removed only where every key has it at the
    # same position after the same leading path (a DataParallel/DDP wrapper, possibly inside an
    # attribute such as a LightningModule's `net.module.`).
    split = [k.split(".") for k in keys]
    if not split:
        return {}
    for pos in range(0, 3):
        if all(len(p) > pos + 1 and p[pos] == "module" for p in split) and len({tuple(p[:pos]) for p in split}) == 1:
            return {k: ".".join(p[:pos] + p[pos + 1 :]) for k, p in zip(keys, split)}
    return {}


register_key_rule(KeyRule("strip _orig_mod.", _drop_compile_segments))
register_key_rule(KeyRule("strip module.", _drop_wrapper_segment))


def canonicalise(keys: Iterable[str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Apply the key rules until none changes anything.

    Returns:
        ``{canonical_key: original_key}`` and ``{canonical_key: [names of the rules applied]}``.
    """
    current = {k: k for k in keys}  # canonical -> original
    ops: dict[str, list[str]] = {k: [] for k in current}
    for _ in range(8):  # each pass strips one layer of wrapping; real checkpoints have few
        changed = False
        for rule in key_rules():
            renaming = rule.propose(list(current))
            if not renaming:
                continue
            new_keys = [renaming.get(k, k) for k in current]
            if len(set(new_keys)) != len(new_keys):
                continue  # the rule would merge two tensors: not a wrapper prefix here
            current = {renaming.get(k, k): orig for k, orig in current.items()}
            ops = {renaming.get(k, k): ops[k] + ([rule.name] if k in renaming else []) for k in ops}
            changed = True
        if not changed:
            break
    return current, ops
