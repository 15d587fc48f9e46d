"""plan.save_rules writes the fewest rules that reproduce the mapping, and the report folds long rule lists."""

from __future__ import annotations

import re

from weightport.layout.rename import exact_rules, smallest_rules


def rename(rules: dict[str, str], key: str) -> str:
    for pattern, replacement in rules.items():
        key = re.sub(pattern, replacement, key)
    return key


def test_two_prefixes_explain_a_whole_lightning_checkpoint():
    mapping = {f"model.backbone.layer{i}.{j}.conv1.weight": f"layer{i}.{j}.conv1.weight" for i in range(1, 5)
               for j in range(2)}
    mapping |= {"model.head.weight": "fc.weight", "model.head.bias": "fc.bias"}
    rules = smallest_rules(mapping)
    assert rules == {r"^model\.backbone\.": "", r"^model\.head\.": "fc."}
    assert all(rename(rules, s) == d for s, d in mapping.items())


def test_a_prefix_rule_that_would_touch_a_key_left_alone_falls_back_to_exact_rules():
    mapping = {"encoder.a.weight": "a.weight"}
    assert smallest_rules(mapping, unchanged=["encoder.keep.weight"]) == exact_rules(mapping)
    assert smallest_rules(mapping, unchanged=["other.weight"]) == {r"^encoder\.": ""}


def test_a_renamed_last_part_needs_exact_rules():
    mapping = {"conv.w": "conv.weight", "conv.b": "conv.bias"}
    assert smallest_rules(mapping) == exact_rules(mapping)


def test_the_report_folds_a_long_list_of_rules():
    from weightport.report import GROUP_LINES, _group

    groups = {f"rename '^k{i}$'->'t{i}'": [f"t{i}"] for i in range(122)}
    lines = _group("renamed", groups)
    assert len(lines) == GROUP_LINES
    assert lines[-1] == f"  renamed: … {122 - GROUP_LINES + 1} more rules ({122 - GROUP_LINES + 1} tensors)"
