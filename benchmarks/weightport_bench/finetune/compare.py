"""Do two runs of the benchmark give the same numbers? ``python -m weightport_bench.finetune.compare A B``.

A and B are run directories (or their ``results.json``). Runs are matched by (source, protocol,
seed); every field is compared except the timings, which measure the machine and not the result.
Exit code 0 when every number is identical, 1 when something differs (each difference is listed,
with the largest score difference per cell), 2 when the runs do not cover the same grid.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Fields that measure the machine, not the result: never compared.
TIMINGS: frozenset[str] = frozenset(
    {"wall_s", "cpu_s", "load_s", "train_s", "images_per_s", "images_per_s_per_device"}
)


def load_runs(path: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The runs of a results directory (or file), keyed by (source, protocol, seed)."""
    file = path / "results.json" if path.is_dir() else path
    runs = json.loads(file.read_text())["runs"]
    return {(r["source"], r["protocol"], int(r["seed"])): r for r in runs}


def differences(a: dict[tuple[str, str, int], dict[str, Any]],
                b: dict[tuple[str, str, int], dict[str, Any]]) -> list[tuple[tuple[str, str, int], str, Any, Any]]:
    """``(run, field, value in a, value in b)`` for every differing non-timing field of the common runs."""
    out = []
    for key in sorted(set(a) & set(b)):
        for name in sorted((set(a[key]) | set(b[key])) - TIMINGS):
            if a[key].get(name) != b[key].get(name):
                out.append((key, name, a[key].get(name), b[key].get(name)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Compare two runs; print what differs."""
    parser = argparse.ArgumentParser(prog="python -m weightport_bench.finetune.compare", description=__doc__)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    a, b = load_runs(args.a), load_runs(args.b)
    if set(a) != set(b):
        print(f"the runs differ: only in A {sorted(set(a) - set(b))}, only in B {sorted(set(b) - set(a))}")
        return 2
    diffs = differences(a, b)
    for key, name, va, vb in diffs:
        print(f"{'/'.join(map(str, key))}: {name}: {va!r} != {vb!r}")
    cells: dict[tuple[str, str], float] = {}
    for key in a:
        sa, sb = a[key].get("score"), b[key].get("score")
        if sa is not None and sb is not None:
            cells[key[:2]] = max(cells.get(key[:2], 0.0), abs(float(sa) - float(sb)))
    if any(cells.values()):
        print("largest score difference per cell (over seeds):")
        for (source, protocol), d in cells.items():
            print(f"  {source} / {protocol}: {d:.4f}")
    print(f"{len(a)} runs compared, {len(diffs)} differing field(s)" + ("" if diffs else ": every number identical"))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
