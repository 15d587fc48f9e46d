"""The targets of the loading work (issue 18, "speed at the floor"), checked against a benchmark's tables.

Each target is a named rule that looks at one (model, format) table and returns the values it
judged; the report lists them with a pass or a miss. Nothing here is asserted in tests: the
numbers depend on the machine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024
WEIGHTPORT = "weightport"


@dataclass(frozen=True)
class Verdict:
    """One target judged on one table."""

    target: str
    where: str
    measured: str
    met: bool


Table = Mapping[str, Any]
Rule = Callable[[Table], list[tuple[str, bool]]]


def _median(table: Table, approach: str, metric: str) -> float | None:
    for row in table["rows"]:
        if row["approach"] == approach and row["status"] == "ok":
            value: float | None = row["median"][metric]
            return value
    return None


def usual_recipe(fmt: str) -> str:
    """The approach a user writes by hand for this format: ``naive`` for pickles, ``safetensors`` else."""
    return "safetensors" if fmt == "safetensors" else "naive"


HAND_WRITTEN = "hand-written"
NEW_FILE = "weightport-new-file"


def _within_hand_written(approach: str, limit: float) -> Rule:
    """``approach``'s time after imports within ``limit``× the hand-written fast path's, same file kind."""

    def rule(table: Table) -> list[tuple[str, bool]]:
        base = _median(table, HAND_WRITTEN, "after_imports_s")
        if base is None or not any(row["approach"] == approach for row in table["rows"]):
            return []  # not measured in this run
        value = _median(table, approach, "after_imports_s")
        if value is None:
            return [(f"{approach} did not load", False)]
        return [(f"{value:.3f} s = {value / base:.2f}× the hand-written {base:.3f} s", value <= limit * base)]

    return rule


def _lean(table: Table) -> list[tuple[str, bool]]:
    above = _median(table, WEIGHTPORT, "above_base_mib")
    if above is None:
        return [("weightport did not load", False)]
    ckpt = table["checkpoint_bytes"] / MIB
    return [(f"{above:.0f} MiB = {above / ckpt:.2f}× the file's {ckpt:.0f} MiB", above <= 1.05 * ckpt)]


def _beats_other_loaders(table: Table) -> list[tuple[str, bool]]:
    out = []
    wp_time, wp_mem = _median(table, WEIGHTPORT, "after_imports_s"), _median(table, WEIGHTPORT, "above_base_mib")
    for other in ("timm", "hf-mixin"):
        if not any(row["approach"] == other for row in table["rows"]):
            continue
        time, mem = _median(table, other, "after_imports_s"), _median(table, other, "above_base_mib")
        if wp_time is None or wp_mem is None:
            out.append((f"weightport did not load; {other} {'did' if time is not None else 'did not'}", False))
        elif time is None or mem is None:
            out.append((f"{other} failed to load this file; weightport did", True))
        else:
            out.append((f"{other} {time:.2f} s / {mem:.0f} MiB vs weightport {wp_time:.2f} s / {wp_mem:.0f} MiB",
                        wp_time < time and wp_mem < mem))
    return out


TARGETS: dict[str, Rule] = {
    "warm within 1.2× of the hand-written fast path": _within_hand_written(WEIGHTPORT, 1.2),
    "a never-seen file within 1.5× of the hand-written fast path": _within_hand_written(NEW_FILE, 1.5),
    "peak RSS growth within 1.05× of the checkpoint's bytes": _lean,
    "faster and leaner than timm's and huggingface_hub's loaders": _beats_other_loaders,
}


def judge(tables: Sequence[Table]) -> list[Verdict]:
    """Every target on every table it applies to."""
    return [
        Verdict(target, f"{table['arch']} {table['format']}", measured, met)
        for target, rule in TARGETS.items()
        for table in tables
        for measured, met in rule(table)
    ]


def targets_markdown(tables: Sequence[Table]) -> str:
    """The verdicts as a markdown table."""
    lines = ["| target | model, format | measured | met |\n", "|---|---|---|---|\n"]
    lines.extend(f"| {v.target} | {v.where} | {v.measured} | {'yes' if v.met else '**no**'} |\n" for v in judge(tables))
    return "".join(lines)
