"""Write the README's loading-speed table from ``benchmarks/results/loading.json``.

    python benchmarks/readme_table.py            # after `python benchmarks/loading.py`; `make bench-load` runs both

The table goes between ``<!-- bench-load:start -->`` and ``<!-- bench-load:end -->`` in README.md;
everything else in the README is left as it is. Times are medians after imports (loading plus
touching every page); ratios are to the hand-written fast path on the same kind of file.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- bench-load:start -->", "<!-- bench-load:end -->"
MIB = 1024 * 1024
NAMES = {"resnet50": "ResNet-50", "vit_base_patch16_224": "ViT-B/16", "convnext_base": "ConvNeXt-B",
         "vit_large_patch16_224": "ViT-L/16"}
FORMATS = {"safetensors": "safetensors", "pth": "`.pth`", "ckpt": "Lightning `.ckpt`"}
COLUMNS: tuple[tuple[str, str], ...] = (
    ("hand-written", "hand-written fast path"),
    ("weightport", "**weightport** warm"),
    ("weightport-new-file", "weightport, never-seen file"),
    ("hand-written-uncached", "hand-written, page cache dropped"),
    ("weightport-uncached", "weightport, page cache dropped"),
    ("timm", "timm `create_model(file)`"),
    ("hf-mixin", "hf `PyTorchModelHubMixin`"),
)


def _cell(row: dict[str, Any] | None, *, ratio: bool) -> str:
    if row is None:
        return "—"
    if row["status"] != "ok":
        return f"fails ({row['status']})"
    value = row["median"]["after_imports_s"]
    text = f"{value:.3f} s"
    if ratio and row.get("ratio_to_hand_written") is not None and not row["approach"].startswith("hand-written"):
        text += f" ({row['ratio_to_hand_written']:.2f}×)"
    return text


def table(document: dict[str, Any]) -> str:
    """The markdown table (with a line on the machine and the run)."""
    labels = [label for _, label in COLUMNS] + ["weightport peak memory growth ÷ file"]
    header = "| model (file) | " + " | ".join(labels) + " |"
    lines = [header, "|---|" + "---:|" * (len(COLUMNS) + 1)]
    for t in document["tables"]:
        rows = {row["approach"]: row for row in t["rows"]}
        cells = [_cell(rows.get(name), ratio=True) for name, _ in COLUMNS]
        wp = rows.get("weightport")
        growth = wp["ratio_to_floor"]["above_base_per_checkpoint"] if wp and wp["status"] == "ok" else None
        lines.append(f"| {NAMES.get(t['arch'], t['arch'])} ({FORMATS.get(t['format'], t['format'])}, "
                     f"{t['checkpoint_bytes'] / MIB:.0f} MiB) | " + " | ".join(cells)
                     + f" | {'—' if growth is None else f'{growth:.2f}×'} |")
    machine, settings = document["machine"], document["settings"]
    lines.append("")
    lines.append(f"({machine['cpu']}, {machine['cores']} cores; load average at start "
                 f"{', '.join(f'{x:.2f}' for x in machine['load_average_at_start'])}; {machine['date']}; "
                 f"{settings.get('rounds_run', settings['repeat'])} interleaved rounds of fresh processes, medians; "
                 "time after imports: the load plus touching every page of the weights; peak memory growth: "
                 "peak RSS above the RSS after imports, less the shared-library code the load paged in. Full table: "
                 "[benchmarks/results/loading.md](benchmarks/results/loading.md).)")
    return "\n".join(lines) + "\n"


def write_readme(readme: Path, text: str) -> None:
    """Put ``text`` between the markers of ``readme``.

    Raises:
        SystemExit: The README has no markers.
    """
    content = readme.read_text()
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(content):
        raise SystemExit(f"{readme} has no {START} … {END} section")
    readme.write_text(pattern.sub(lambda _: f"{START}\n{text}{END}", content, count=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "loading.json")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()
    write_readme(args.readme, table(json.loads(args.results.read_text())))
    print(f"wrote the loading table into {args.readme}")


if __name__ == "__main__":
    main()
