"""The benchmark's results: a JSON document and a markdown table, with the floor and every ratio.

The floor of a (model, format) pair is the sum of the two floor approaches: reading the file's
bytes into memory, and building the model on the meta device. Its whole-process time is the meta
build's (which pays the imports) plus the read; its memory above the baseline is both of theirs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from weightport_bench.loading.approaches import APPROACHES, FORMATS
from weightport_bench.loading.fixtures import Fixture
from weightport_bench.loading.runner import JobResult
from weightport_bench.loading.targets import judge, targets_markdown, usual_recipe

MIB = 1024 * 1024
READ, META = "read-bytes", "meta-build"
RATIO_METRICS: tuple[str, ...] = ("wall_s", "after_imports_s", "above_base_mib")


def _floor(read: Mapping[str, float | None], meta: Mapping[str, float | None]) -> dict[str, float | None]:
    def add(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a + b

    return {
        "wall_s": add(meta.get("wall_s"), read.get("after_imports_s")),
        "import_s": meta.get("import_s"),
        "after_imports_s": add(meta.get("after_imports_s"), read.get("after_imports_s")),
        "peak_rss_mib": add(meta.get("peak_rss_mib"), read.get("above_base_mib")),
        "above_base_mib": add(meta.get("above_base_mib"), read.get("above_base_mib")),
        "library_paged_mib": add(meta.get("library_paged_mib"), read.get("library_paged_mib")),
        "anon_above_base_mib": add(meta.get("anon_above_base_mib"), read.get("anon_above_base_mib")),
    }


def _ratio(value: float | None, floor: float | None) -> float | None:
    return None if value is None or not floor else value / floor


def _row(result: JobResult, floor: Mapping[str, float | None], nbytes: int) -> dict[str, Any]:
    app = APPROACHES[result.job.approach]
    median = result.medians()
    ratios = {m: _ratio(median[m], floor.get(m)) for m in RATIO_METRICS}
    ratios["above_base_per_checkpoint"] = _ratio(median["above_base_mib"], nbytes / MIB)
    return {
        "approach": app.name, "label": app.label, "group": app.group, "status": result.status,
        "error": result.error, "runs": len(result.runs), "ok_runs": len(result.ok_runs),
        "median": median, "ratio_to_floor": ratios, "notes": result.notes,
    }


HAND_WRITTEN = "hand-written"


def _add_hand_written_ratios(rows: list[dict[str, Any]]) -> None:
    """``ratio_to_hand_written``: each row's time after imports over the hand-written fast path's, on
    the same kind of file (``hand-written-uncached`` for an ``-uncached`` row where it was run)."""
    by_name = {row["approach"]: row for row in rows}
    for row in rows:
        base = APPROACHES[row["approach"]].base
        kind = row["approach"][len(base) + 1:] if base else None
        ref = by_name.get(f"{HAND_WRITTEN}-{kind}") if kind else None
        ref = ref or by_name.get(HAND_WRITTEN)
        value = row["median"]["after_imports_s"]
        row["hand_written_reference"] = ref["approach"] if ref else None
        row["ratio_to_hand_written"] = _ratio(value, ref["median"]["after_imports_s"]) if ref else None


def build_tables(results: Sequence[JobResult], fixtures: Mapping[str, Fixture]) -> list[dict[str, Any]]:
    """One table per (model, format): every approach that applies, its medians and ratios to the floor."""
    by_key = {(r.job.arch, r.job.fmt, r.job.approach): r for r in results}
    pairs = sorted({(r.job.arch, r.job.fmt) for r in results if r.job.fmt is not None},
                   key=lambda p: (list(fixtures).index(p[0]), FORMATS.index(p[1])))
    tables = []
    for arch, fmt in pairs:
        read, meta = by_key.get((arch, fmt, READ)), by_key.get((arch, None, META))
        floor = _floor(read.medians() if read else {}, meta.medians() if meta else {})
        nbytes = fixtures[arch].nbytes(fmt)
        rows = [
            _row(r, floor, nbytes)
            for name in APPROACHES
            if (r := by_key.get((arch, fmt, name)) or by_key.get((arch, None, name))) is not None
        ]
        _add_hand_written_ratios(rows)
        tables.append({"arch": arch, "format": fmt, "checkpoint_bytes": nbytes, "floor": floor, "rows": rows})
    return tables


def build_document(results: Sequence[JobResult], fixtures: Mapping[str, Fixture], *, machine: Mapping[str, Any],
                   settings: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the benchmark measured, as a JSON-serialisable document."""
    tables = build_tables(results, fixtures)
    return {
        "machine": dict(machine),
        "settings": dict(settings),
        "approaches": [{"name": a.name, "label": a.label, "group": a.group} for a in APPROACHES.values()],
        "models": {
            arch: {"parameters": f.manifest["parameters"], "tensors": f.manifest["tensors"],
                   "bytes": {fmt: f.nbytes(fmt) for fmt in ("safetensors", "pth", "ckpt")}}
            for arch, f in fixtures.items()
        },
        "tables": tables,
        "targets": [vars(v) for v in judge(tables)],
        "runs": [{"job": r.job.key, **run} for r in results for run in r.runs],
    }


# --- markdown -----------------------------------------------------------------------------------

def _num(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _with_ratio(value: float | None, ratio: float | None, digits: int) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" + ("" if ratio is None else f" ({ratio:.2f}×)")


def _status(row: Mapping[str, Any]) -> str:
    if row["status"] == "ok":
        return "ok"
    message = (row["error"] or "").splitlines()[0] if row["error"] else ""
    message = message if len(message) <= 70 else message[:67] + "..."
    return f"**{row['status']}**: {message}".replace("|", "\\|")


TABLE_HEADER = (
    "| approach | whole process s (×floor) | after imports s (×floor) | ×hand-written | imports s | peak RSS MiB "
    "| above baseline MiB (×floor) | ×checkpoint | library code paged in MiB | private at end MiB | check |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
)


def _table_markdown(table: Mapping[str, Any]) -> str:
    floor = table["floor"]
    lines = [TABLE_HEADER]
    for row in table["rows"]:
        m, r = row["median"], row["ratio_to_floor"]
        lines.append(
            f"| {row['approach']} | {_with_ratio(m['wall_s'], r['wall_s'], 2)} "
            f"| {_with_ratio(m['after_imports_s'], r['after_imports_s'], 3)} "
            f"| {_num(row.get('ratio_to_hand_written'), 2)} | {_num(m['import_s'], 2)} "
            f"| {_num(m['peak_rss_mib'], 0)} | {_with_ratio(m['above_base_mib'], r['above_base_mib'], 0)} "
            f"| {_num(r['above_base_per_checkpoint'], 2)} | {_num(m['library_paged_mib'], 1)} "
            f"| {_num(m['anon_above_base_mib'], 0)} | {_status(row)} |\n"
        )
    per_ckpt = _ratio(floor["above_base_mib"], table["checkpoint_bytes"] / MIB)
    lines.append(
        f"| **floor** (read-bytes + meta-build) | {_num(floor['wall_s'], 2)} | {_num(floor['after_imports_s'], 3)} | "
        f"| {_num(floor['import_s'], 2)} | {_num(floor['peak_rss_mib'], 0)} | {_num(floor['above_base_mib'], 0)} "
        f"| {_num(per_ckpt, 2)} | {_num(floor['library_paged_mib'], 1)} | {_num(floor['anon_above_base_mib'], 0)} | |\n"
    )
    lines.extend(_notes_markdown(row) for row in table["rows"] if row.get("notes"))
    return "".join(lines)


def _notes_markdown(row: Mapping[str, Any]) -> str:
    notes = row["notes"]
    timings = ", ".join(f"{k} {v:.3f} s" for k, v in (notes.get("timings") or {}).items())
    path = notes.get("path")
    return f"\n`{row['approach']}` took the `{path}` path" + (f"; its own timings: {timings}" if timings else "") + "\n"


def _summary_markdown(tables: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "| model | format | checkpoint MiB | floor after imports s | weightport after imports s (×floor) "
        "| usual recipe ÷ weightport | weightport above baseline ÷ checkpoint | fastest other approach |\n",
        "|---|---|---:|---:|---:|---:|---:|---|\n",
    ]
    for t in tables:
        rows = {row["approach"]: row for row in t["rows"]}
        wp = rows.get("weightport")
        wp_after = wp["median"]["after_imports_s"] if wp else None
        naive = rows.get(usual_recipe(t["format"]))
        naive_after = naive["median"]["after_imports_s"] if naive else None
        others = [row for row in t["rows"] if row["group"] == "baseline" and row["median"]["after_imports_s"]]
        best = min(others, key=lambda row: row["median"]["after_imports_s"], default=None)
        best_text = "—" if best is None else f"{best['approach']} {best['median']['after_imports_s']:.3f} s"
        lines.append(
            f"| {t['arch']} | {t['format']} | {t['checkpoint_bytes'] / MIB:.0f} "
            f"| {_num(t['floor']['after_imports_s'], 3)} "
            f"| {_with_ratio(wp_after, wp['ratio_to_floor']['after_imports_s'] if wp else None, 3)} "
            f"| {_num(_ratio(naive_after, wp_after), 1)} "
            f"| {_num(wp['ratio_to_floor']['above_base_per_checkpoint'] if wp else None, 2)} | {best_text} |\n"
        )
    return "".join(lines)


def _machine_markdown(machine: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items() if v)
    return (
        f"- Machine: {machine['cpu']}, {machine['cores']} cores ({machine['usable_cores']} usable), "
        f"{machine['ram_gib']} GiB RAM, {machine['os']}, Python {machine['python']}\n"
        f"- Packages: {packages}\n"
        f"- Date: {machine['date']}; load average at start: {machine['load_average_at_start']}\n"
        f"- Runs: {settings.get('rounds_run', settings['repeat'])} per approach (median shown), alternating, "
        "each in a fresh process; "
        f"threads: {settings.get('threads') or 'default'}; files warm in the page cache except for the "
        "`-uncached` approaches (dropped with `posix_fadvise(DONTNEED)` before each run)\n"
        + ("- **Inline run** (every approach in one process, to check that they work): the numbers mean nothing\n"
           if settings.get("launcher") == "inline" else "")
    )


EXPLANATION = """\
How to read it:

- **whole process**: wall time from spawning `python -m weightport_bench.loading.child` to its exit,
  imports included. **after imports**: loading plus touching one byte of every page of every
  tensor (so a lazy, mmapped load pays for its reads here); **imports**: what the child imported
  before the clock for loading started (torch, timm and the approach's own library).
- **peak RSS**: the child's `VmHWM` (not `ru_maxrss`, which keeps the parent's peak across `exec`).
  **above baseline**: peak RSS minus the RSS right after imports, i.e. what the load itself cost,
  not counting **library code paged in**: the resident pages of shared objects (torch's kernels
  on their first call) and of the interpreter that grew after the baseline, read from
  `/proc/self/smaps` at the end. Those are read-only program text shared with every torch process,
  the same few MiB for every approach, and not memory the load holds; they are shown in their own
  column. **×checkpoint**: above baseline divided by the file's size.
  Pages of a mmapped file count in RSS but are shared and reclaimable: **private at end** is the
  anonymous (private) memory the child holds at the end above its baseline.
- **usual recipe**: `naive` for `.pth` and `.ckpt`, `safetensors` (`load_file` + `load_state_dict`)
  for `.safetensors`.
- **floor**: reading the file's bytes into memory plus building the model on the meta device,
  each measured in its own process; ratios are to it. Every approach ends by checking a checksum
  of every tensor (and its dtype and device) against the file's; a failure is shown, not hidden.
"""


def render_markdown(document: Mapping[str, Any]) -> str:
    """The results as markdown: the machine, a summary, then one table per model and format."""
    parts = ["# Loading speed and memory\n\n", _machine_markdown(document["machine"], document["settings"]), "\n",
             EXPLANATION, "\n## Summary\n\n", _summary_markdown(document["tables"]),
             "\n## Targets\n\n", targets_markdown(document["tables"])]
    for table in document["tables"]:
        model = document["models"][table["arch"]]
        parts.append(
            f"\n## {table['arch']} — {table['format']} ({table['checkpoint_bytes'] / MIB:.0f} MiB, "
            f"{model['parameters'] / 1e6:.1f} M parameters)\n\n"
        )
        parts.append(_table_markdown(table))
    failures = [(t, row) for t in document["tables"] for row in t["rows"] if row["status"] != "ok"]
    if failures:
        parts.append("\n## Failures\n\n")
        seen: set[tuple[str, str, str]] = set()
        for t, row in failures:
            key = (t["arch"], t["format"], row["approach"])
            if key in seen:
                continue
            seen.add(key)
            parts.append(f"- {t['arch']} / {t['format']} / {row['approach']} ({row['status']}): "
                         f"{(row['error'] or '').strip()}\n")
    parts.append("\nApproaches:\n\n")
    parts.extend(f"- `{a['name']}`: {a['label']}\n" for a in document["approaches"])
    return "".join(parts)


def write_results(document: Mapping[str, Any], out_dir: Path, name: str = "loading") -> tuple[Path, Path]:
    """Write ``<name>.md`` and ``<name>.json`` into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / f"{name}.md", out_dir / f"{name}.json"
    js.write_text(json.dumps(document, indent=1) + "\n")
    md.write_text(render_markdown(document))
    return md, js
