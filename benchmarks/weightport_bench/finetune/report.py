"""The benchmark's outputs: a terminal table (rich), ``results.csv``, ``results.json``, ``accuracy.png``."""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: CSV columns, in order (the JSON file holds every field, the recipe included).
CSV_COLUMNS: tuple[str, ...] = (
    "source", "protocol", "seed", "arch", "dataset", "num_classes", "train_images", "val_images", "epochs",
    "top1", "top5", "train_loss", "val_loss", "val_seen", "wall_s", "load_s", "train_s", "images_per_s",
    "params_total", "params_trainable", "source_uri", "sha256", "revision", "coverage", "reinitialized",
    "strategy", "devices", "world_size", "weights_identical", "weights_ranks", "weights_fingerprint",
)  # fmt: skip


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation of top-1/top-5 over seeds, per (source, protocol), in first-seen order."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["source"], row["protocol"]), []).append(row)
    out = []
    for (source, protocol), members in groups.items():
        entry: dict[str, Any] = {"source": source, "protocol": protocol, "seeds": [m["seed"] for m in members]}
        for metric in ("top1", "top5", "val_loss", "images_per_s", "wall_s"):
            values = [float(m[metric]) for m in members if m.get(metric) is not None]
            entry[f"{metric}_mean"] = statistics.fmean(values) if values else None
            entry[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0 if values else None
        out.append(entry)
    return out


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """One row per run with :data:`CSV_COLUMNS`."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_json(rows: Sequence[dict[str, Any]], meta: dict[str, Any], path: Path) -> Path:
    """``{"meta", "recipes", "runs", "summary"}``: everything the table and the plot were made from."""
    recipes = {row["protocol"]: row["recipe"] for row in rows}
    payload = {"meta": meta, "recipes": recipes, "runs": list(rows), "summary": summarise(rows)}
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def write_plot(rows: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Grouped bars: top-1 accuracy per protocol (groups) and source (bars), mean ± std over seeds."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    summary = summarise(rows)
    protocols = list(dict.fromkeys(s["protocol"] for s in summary))
    sources = list(dict.fromkeys(s["source"] for s in summary))
    by_key = {(s["source"], s["protocol"]): s for s in summary}
    width = 0.8 / max(1, len(sources))
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(protocols) * max(1, len(sources)) / 2, 3.6))
    for i, source in enumerate(sources):
        xs, means, stds = [], [], []
        for j, protocol in enumerate(protocols):
            entry = by_key.get((source, protocol))
            if entry is None or entry["top1_mean"] is None:
                continue
            xs.append(j + (i - (len(sources) - 1) / 2) * width)
            means.append(100 * entry["top1_mean"])
            stds.append(100 * entry["top1_std"])
        bars = ax.bar(xs, means, width, yerr=stds, capsize=3, label=source)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    ax.set_xticks(range(len(protocols)), protocols)
    ax.set_ylabel("top-1 accuracy (%), mean ± std over seeds", fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_title(title or "fine-tune baselines", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _pct(mean: float | None, std: float | None, seeds: int) -> str:
    if mean is None:
        return "–"
    return f"{100 * mean:.1f}" + (f" ± {100 * (std or 0):.1f}" if seeds > 1 else "")


def render_table(rows: Sequence[dict[str, Any]], title: str = "fine-tune baselines") -> Any:
    """A rich ``Table``: one line per source and protocol, accuracy as mean ± std over seeds."""
    from rich.table import Table

    table = Table(title=title)
    for name in (
        "source",
        "protocol",
        "seeds",
        "top-1 %",
        "top-5 %",
        "val loss",
        "img/s",
        "trainable",
        "coverage",
        "sha256",
    ):
        table.add_column(name, justify="left" if name in ("source", "protocol", "sha256") else "right")
    first = {(r["source"], r["protocol"]): r for r in reversed(rows)}
    for entry in summarise(rows):
        row = first[(entry["source"], entry["protocol"])]
        n = len(entry["seeds"])
        coverage = row.get("coverage")
        table.add_row(
            entry["source"],
            entry["protocol"],
            str(n),
            _pct(entry["top1_mean"], entry["top1_std"], n),
            _pct(entry["top5_mean"], entry["top5_std"], n),
            "–" if entry["val_loss_mean"] is None else f"{entry['val_loss_mean']:.3f}",
            "–" if entry["images_per_s_mean"] is None else f"{entry['images_per_s_mean']:.0f}",
            f"{row['params_trainable']:,}",
            "–" if coverage is None else f"{100 * float(coverage):.1f}%",
            (row.get("sha256") or "–")[:12],
        )
    return table


def write_all(rows: Sequence[dict[str, Any]], out_dir: Path, meta: dict[str, Any]) -> dict[str, Path]:
    """Write ``results.csv``, ``results.json`` and ``accuracy.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"{meta.get('arch', '')} on {meta.get('dataset', '')}".strip()
    return {
        "csv": write_csv(rows, out_dir / "results.csv"),
        "json": write_json(rows, meta, out_dir / "results.json"),
        "png": write_plot(rows, out_dir / "accuracy.png", title=title),
    }
