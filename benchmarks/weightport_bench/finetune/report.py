"""The benchmark's outputs: a terminal table, ``results.csv``, ``summary.csv``, ``results.json``,
``results.md`` and ``accuracy.png``.

``results.csv`` has one row per run; ``summary.csv`` one row per (source, protocol) cell with the mean,
the 95 % t-interval over seeds and the paired difference from scratch; ``results.json`` holds all of
it plus the recipes and the machine, so the table and the plot can be redrawn from it alone.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from weightport_bench.finetune.sources import SCRATCH
from weightport_bench.finetune.stats import LEVEL, paired, t_interval

#: CSV columns, in order (the JSON file holds every field, the recipe included).
CSV_COLUMNS: tuple[str, ...] = (
    "source", "protocol", "seed", "arch", "dataset", "num_classes", "train_images", "val_images", "epochs",
    "metric", "score", "top1", "top5", "train_loss", "val_loss", "val_seen", "wall_s", "cpu_s", "load_s", "train_s",
    "images_per_s", "images_per_s_per_device", "params_total", "params_trainable", "source_uri", "sha256",
    "revision", "coverage", "reinitialized", "accelerator", "strategy", "devices", "world_size", "threads",
    "deterministic", "weights_identical", "weights_ranks", "weights_fingerprint",
)  # fmt: skip

#: summary.csv columns, in order.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "source", "protocol", "arch", "metric", "n", "seeds", "mean", "std", "ci_low", "ci_high", "top5_mean",
    "val_loss_mean", "images_per_s_per_device", "wall_s_mean", "cpu_s_mean", "params_trainable", "coverage",
    "sha256", "baseline", "diff_mean", "diff_low", "diff_high", "verdict",
)  # fmt: skip

#: What each protocol means, for the plot's caption and the Markdown table.
PROTOCOL_TEXT: dict[str, str] = {
    "linear": "linear = linear probe: body frozen, only a new head trains",
    "full": "full = full fine-tune: everything trains",
    "lp-ft": "lp-ft = probe first, then everything trains",
}


#: How plots name a metric the model logs.
METRIC_TEXT: dict[str, str] = {"val_top1": "top-1 accuracy on the validation images", "val_acc": "validation accuracy"}


def _is_scratch(label: str) -> bool:
    return label.partition(":")[0] == SCRATCH


def _mean(values: list[Any]) -> float | None:
    got = [float(v) for v in values if v is not None]
    return sum(got) / len(got) if got else None


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (source, protocol), in first-seen order: the score's mean and t-interval over
    seeds, other means, and the paired difference from the scratch run of the same architecture
    (else the first scratch) over the seeds both have."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["source"], row["protocol"]), []).append(row)
    archs = {row["source"]: row.get("arch") for row in rows}
    scratch = [s for s in dict.fromkeys(row["source"] for row in rows) if _is_scratch(s)]
    out = []
    for (source, protocol), members in groups.items():
        first = members[0]
        interval = t_interval([float(m["score"]) for m in members if m.get("score") is not None])
        entry: dict[str, Any] = {
            "source": source, "protocol": protocol, "arch": first.get("arch"), "metric": first.get("metric"),
            "n": len(members), "seeds": [m["seed"] for m in members],
            "mean": None if interval is None else interval.mean,
            "std": None if interval is None else interval.std,
            "ci_low": None if interval is None else interval.low,
            "ci_high": None if interval is None else interval.high,
            "level": LEVEL,
            "top5_mean": _mean([m.get("top5") for m in members]),
            "val_loss_mean": _mean([m.get("val_loss") for m in members]),
            "images_per_s_per_device": _mean([m.get("images_per_s_per_device") for m in members]),
            "wall_s_mean": _mean([m.get("wall_s") for m in members]),
            "cpu_s_mean": _mean([m.get("cpu_s") for m in members]),
            "params_trainable": first.get("params_trainable"),
            "coverage": first.get("coverage"),
            "sha256": first.get("sha256"),
            "baseline": None, "diff_mean": None, "diff_low": None, "diff_high": None, "verdict": None,
        }  # fmt: skip
        if not _is_scratch(source) and scratch:
            same = [s for s in scratch if archs.get(s) == archs.get(source)]
            base = (same or scratch)[0]
            comparison = paired(
                {m["seed"]: float(m["score"]) for m in members if m.get("score") is not None},
                {m["seed"]: float(m["score"]) for m in groups.get((base, protocol), []) if m.get("score") is not None},
                names=(source, base, protocol),
            )
            if comparison is not None:
                d = comparison.difference
                entry.update(baseline=base, diff_mean=d.mean, diff_low=d.low, diff_high=d.high,
                             verdict=comparison.verdict)  # fmt: skip
        out.append(entry)
    return out


def _write_csv(records: Sequence[dict[str, Any]], columns: Sequence[str], path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for record in records:
            writer.writerow({k: (" ".join(map(str, v)) if isinstance(v, list) else v) for k, v in record.items()})
    return path


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """One row per run with :data:`CSV_COLUMNS`."""
    return _write_csv(rows, CSV_COLUMNS, path)


def write_json(rows: Sequence[dict[str, Any]], meta: dict[str, Any], path: Path) -> Path:
    """``{"meta", "recipes", "runs", "summary"}``: everything the table and the plot were made from."""
    recipes = {row["protocol"]: row["recipe"] for row in rows}
    payload = {"meta": meta, "recipes": recipes, "runs": list(rows), "summary": summarise(rows)}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def _percent(metric: str | None, summary: Sequence[dict[str, Any]]) -> bool:
    """Show the score in percent: every mean is a fraction (an interval may reach past 0 or 1)."""
    values = [s["mean"] for s in summary if s["mean"] is not None]
    return bool(metric) and all(0.0 <= v <= 1.0 for v in values)


def write_plot(rows: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Grouped bars: the score per protocol (groups) and source (bars), the mean over seeds, with the
    95 % t-interval as whiskers where there is more than one seed; the caption says what the
    protocols are and how many seeds each bar has."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    summary = summarise(rows)
    protocols = list(dict.fromkeys(s["protocol"] for s in summary))
    sources = list(dict.fromkeys(s["source"] for s in summary))
    by_key = {(s["source"], s["protocol"]): s for s in summary}
    metric = summary[0]["metric"] if summary else "score"
    scale = 100.0 if _percent(metric, summary) else 1.0
    width = 0.8 / max(1, len(sources))
    fig, ax = plt.subplots(figsize=(2.4 + 1.1 * len(protocols) * max(1, len(sources)) / 2, 3.8))
    for i, source in enumerate(sources):
        xs, means, lows, highs = [], [], [], []
        for j, protocol in enumerate(protocols):
            entry = by_key.get((source, protocol))
            if entry is None or entry["mean"] is None:
                continue
            xs.append(j + (i - (len(sources) - 1) / 2) * width)
            means.append(scale * entry["mean"])
            has_ci = entry["n"] > 1 and entry["ci_low"] is not None
            lows.append(scale * (entry["mean"] - entry["ci_low"]) if has_ci else 0.0)
            highs.append(scale * (entry["ci_high"] - entry["mean"]) if has_ci else 0.0)
        any_ci = any(lows) or any(highs)
        arch = next((s["arch"] for s in summary if s["source"] == source and s["arch"]), None)
        label = f"{source} ({arch})" if _is_scratch(source) and arch else source
        bars = ax.bar(xs, means, width, label=label, yerr=[lows, highs] if any_ci else None, capsize=3,
                      error_kw={"elinewidth": 1})  # fmt: skip
        # Inside the bars, so the whiskers stay readable.
        ax.bar_label(bars, fmt="%.1f" if scale == 100 else "%.3g", fontsize=6, label_type="center", color="white")
    ax.set_xticks(range(len(protocols)), protocols)
    ax.set_xlabel("protocol", fontsize=8)
    ax.set_ylabel(METRIC_TEXT.get(metric, metric) + (" (%)" if scale == 100 else ""), fontsize=8)
    if scale == 100:
        ax.set_ylim(0, 105)
    ax.tick_params(labelsize=7)
    ax.set_title(title or "fine-tune baselines", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="source",
              title_fontsize=7)  # fmt: skip
    seeds = sorted({s["n"] for s in summary})
    seed_text = "/".join(map(str, seeds))
    ci_text = f"; whiskers: {round(100 * LEVEL)} % t-interval over seeds" if max(seeds, default=1) > 1 else ""
    caption = (f"bars: mean over {seed_text} seed(s){ci_text}.\n"
               + "; ".join(PROTOCOL_TEXT.get(p, p) for p in protocols) + ".")  # fmt: skip
    # Below the axes, and the legend right of them: bbox_inches="tight" makes room for both.
    ax.text(0.0, -0.16, caption, transform=ax.transAxes, fontsize=6.5, ha="left", va="top")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _pct(value: float | None, scale: float) -> str:
    if value is None:
        return "–"
    return f"{scale * value:.1f}" if scale == 100 else f"{value:.4g}"


def cell_text(entry: dict[str, Any], scale: float) -> str:
    """``mean [low, high]`` (the t-interval only with more than one seed)."""
    text = _pct(entry["mean"], scale)
    if entry["n"] > 1 and entry["ci_low"] is not None:
        text += f" [{_pct(entry['ci_low'], scale)}, {_pct(entry['ci_high'], scale)}]"
    return text


def diff_text(entry: dict[str, Any], scale: float) -> str:
    """``+12.3 [8.1, 16.5] better`` against scratch, or ``–``."""
    if entry["diff_mean"] is None:
        return "–"
    sign = "+" if entry["diff_mean"] >= 0 else ""
    text = f"{sign}{_pct(entry['diff_mean'], scale)}"
    if entry["diff_low"] is not None:
        text += f" [{_pct(entry['diff_low'], scale)}, {_pct(entry['diff_high'], scale)}]"
    return f"{text} {entry['verdict']}"


TABLE_HEADER: tuple[str, ...] = (
    "source", "arch", "protocol", "seeds", "score", "vs scratch (paired)", "top-5 %", "val loss", "img/s/device",
    "trainable", "coverage", "sha256",
)  # fmt: skip


def table_rows(summary: Sequence[dict[str, Any]]) -> tuple[list[list[str]], str]:
    """The table's cells and the score column's title."""
    metric = summary[0]["metric"] if summary else "score"
    scale = 100.0 if _percent(metric, summary) else 1.0
    level = round(100 * LEVEL)
    out = []
    for e in summary:
        out.append([
            e["source"], str(e["arch"] or "–"), e["protocol"], str(e["n"]), cell_text(e, scale), diff_text(e, scale),
            "–" if e["top5_mean"] is None else f"{100 * e['top5_mean']:.1f}",
            "–" if e["val_loss_mean"] is None else f"{e['val_loss_mean']:.3f}",
            "–" if e["images_per_s_per_device"] is None else f"{e['images_per_s_per_device']:.0f}",
            "–" if e["params_trainable"] is None else f"{e['params_trainable']:,}",
            "–" if e["coverage"] is None else f"{100 * float(e['coverage']):.1f}%",
            (e["sha256"] or "–")[:12],
        ])  # fmt: skip
    title = f"{metric}{' %' if scale == 100 else ''}, mean [{level} % CI]"
    return out, title


def render_table(rows: Sequence[dict[str, Any]], title: str = "fine-tune baselines") -> Any:
    """A rich ``Table``: one line per source and protocol."""
    from rich.table import Table

    cells, score_title = table_rows(summarise(rows))
    table = Table(title=title)
    for name in TABLE_HEADER:
        left = name in ("source", "arch", "protocol", "sha256", "vs scratch (paired)")
        table.add_column(score_title if name == "score" else name, justify="left" if left else "right")
    for row in cells:
        table.add_row(*row)
    return table


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The same table in Markdown (for the README)."""
    cells, score_title = table_rows(summarise(rows))
    header = [score_title if h == "score" else h for h in TABLE_HEADER]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def write_all(rows: Sequence[dict[str, Any]], out_dir: Path, meta: dict[str, Any]) -> dict[str, Path]:
    """Write every output file into ``out_dir``; their paths by kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    title = meta.get("title") or "fine-tune baselines"
    (out_dir / "results.md").write_text(markdown_table(rows))
    return {
        "csv": write_csv(rows, out_dir / "results.csv"),
        "summary": _write_csv(summarise(rows), SUMMARY_COLUMNS, out_dir / "summary.csv"),
        "json": write_json(rows, meta, out_dir / "results.json"),
        "markdown": out_dir / "results.md",
        "png": write_plot(rows, out_dir / "accuracy.png", title=title),
    }


def redraw(run_dir: Path) -> dict[str, Path]:
    """Write the table, summary and plot of a run directory again from its ``results.json`` alone."""
    document = json.loads((run_dir / "results.json").read_text())
    return write_all(document["runs"], run_dir, document["meta"])


if __name__ == "__main__":  # python -m weightport_bench.finetune.report RUN_DIR
    import sys

    for kind, written in redraw(Path(sys.argv[1])).items():
        print(f"{kind}: {written}")
