"""The benchmark end to end on a tiny configuration: the files it writes, for every protocol."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from tests.bench.conftest import tiny_args
from weightport_bench.finetune import compare, main, report
from weightport_bench.finetune.recipe import PROTOCOLS
from weightport_bench.finetune.report import CSV_COLUMNS, SUMMARY_COLUMNS


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One run of every protocol for a pretrained source and scratch (shared by the tests below)."""
    import timm
    import torch

    root = tmp_path_factory.mktemp("grid")
    torch.manual_seed(123)
    ckpt = root / "test_efficientnet.pth"
    torch.save(timm.create_model("test_efficientnet", num_classes=1000).state_dict(), ckpt)
    out = root / "out"
    argv = [str(ckpt), "scratch", "--protocols", "linear", "full", "lp-ft", "--seeds", "0", "1"]
    assert main(tiny_args(out, *argv, "--epochs", "2", "--probe-epochs", "1")) == 0
    return out, ckpt


def _csv(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_csv_has_one_row_per_source_protocol_and_seed(grid: tuple[Path, Path]) -> None:
    out, ckpt = grid
    rows = _csv(out)
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert {(r["source"], r["protocol"], r["seed"]) for r in rows} == {
        (s, p, seed) for s in (str(ckpt), "scratch") for p in PROTOCOLS for seed in ("0", "1")
    }
    for r in rows:
        assert 0.0 <= float(r["top1"]) <= 1.0 and 0.0 <= float(r["top5"]) <= 1.0
        assert float(r["top5"]) >= float(r["top1"])
        # Top-1 is the share of validation images classified right (micro-averaged), k / 32.
        assert float(r["top1"]) * 32 == pytest.approx(round(float(r["top1"]) * 32), abs=1e-4)
        assert float(r["train_loss"]) > 0 and float(r["val_loss"]) > 0
        assert float(r["images_per_s"]) > 0 and float(r["wall_s"]) > 0
        assert r["epochs"] == "2" and r["val_images"] == "32" and float(r["val_seen"]) == 32.0
        assert int(r["params_trainable"]) <= int(r["params_total"])


def test_linear_probe_trains_only_the_head(grid: tuple[Path, Path]) -> None:
    rows = _csv(grid[0])
    linear = {r["params_trainable"] for r in rows if r["protocol"] == "linear"}
    full = {r["params_trainable"] for r in rows if r["protocol"] == "full"}
    total = {r["params_total"] for r in rows}
    assert len(linear) == len(full) == len(total) == 1
    assert int(linear.pop()) < int(full.pop()) == int(total.pop())


def test_pretrained_rows_carry_the_sources_provenance(grid: tuple[Path, Path]) -> None:
    out, ckpt = grid
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    rows = _csv(out)
    head = int(next(r["params_trainable"] for r in rows if r["protocol"] == "linear"))
    for r in rows:
        if r["source"] == "scratch":
            assert r["sha256"] == "" and r["coverage"] == ""
        else:
            assert r["sha256"] == digest
            # Everything but the new head came from the file.
            assert float(r["coverage"]) == pytest.approx(1 - head / int(r["params_total"]), abs=1e-6)


def test_json_states_recipes_runs_and_intervals_over_seeds(grid: tuple[Path, Path]) -> None:
    out = grid[0]
    data = json.loads((out / "results.json").read_text())
    assert set(data["recipes"]) == set(PROTOCOLS)
    assert data["recipes"]["lp-ft"]["probe_epochs"] == 1 and data["recipes"]["linear"]["image_size"] == 32
    assert len(data["runs"]) == 12
    assert data["meta"]["arguments"]["seeds"] == [0, 1] and data["meta"]["arguments"]["recipe_epochs"] == 2
    assert data["meta"]["machine"]["torch_threads"] == 1 and data["meta"]["machine"]["cpu_capability"]
    assert all(r["threads"] == 1 and r["deterministic"] is True for r in data["runs"])
    for entry in data["summary"]:
        runs = [r for r in data["runs"] if (r["source"], r["protocol"]) == (entry["source"], entry["protocol"])]
        tops = [r["top1"] for r in runs]
        assert entry["seeds"] == [0, 1] and entry["n"] == 2 and entry["metric"] == "val_top1"
        assert entry["mean"] == pytest.approx(sum(tops) / 2)
        # Two seeds: Student's t with 1 degree of freedom (12.71), not the normal 1.96.
        half = 12.7062 * (abs(tops[0] - tops[1]) / 2**0.5) / 2**0.5
        assert entry["ci_high"] - entry["mean"] == pytest.approx(half, rel=1e-4, abs=1e-9)
        if entry["source"] == "scratch":
            assert entry["baseline"] is None and entry["verdict"] is None
        else:  # paired by seed with scratch under the same protocol
            base = {r["seed"]: r["top1"] for r in data["runs"] if (r["source"], r["protocol"]) ==
                    ("scratch", entry["protocol"])}  # fmt: skip
            diffs = [r["top1"] - base[r["seed"]] for r in runs]
            assert entry["baseline"] == "scratch" and entry["diff_mean"] == pytest.approx(sum(diffs) / 2)
            assert entry["verdict"] in ("better", "worse", "unclear")


def test_summary_csv_and_markdown_carry_the_table(grid: tuple[Path, Path]) -> None:
    out = grid[0]
    with (out / "summary.csv").open() as handle:
        summary = list(csv.DictReader(handle))
    assert list(summary[0]) == list(SUMMARY_COLUMNS) and len(summary) == 6
    markdown = (out / "results.md").read_text()
    assert "val_top1 %, mean [95 % CI]" in markdown and "vs scratch (paired)" in markdown
    assert markdown.count("\n") == 2 + 6


def test_a_second_run_into_the_same_directory_is_refused(grid: tuple[Path, Path],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = grid[0]
    before = (out / "results.json").read_bytes()
    assert main(tiny_args(out, "scratch", "--protocols", "linear")) == 2
    assert "already holds results" in capsys.readouterr().err
    assert (out / "results.json").read_bytes() == before


def test_compare_finds_every_number_that_differs(grid: tuple[Path, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = grid[0]
    data = json.loads((out / "results.json").read_text())
    for run in data["runs"]:
        run["wall_s"] += 1.0  # timings measure the machine: never compared
    (tmp_path / "same").mkdir()
    (tmp_path / "same" / "results.json").write_text(json.dumps(data))
    assert compare.main([str(out), str(tmp_path / "same")]) == 0
    assert "every number identical" in capsys.readouterr().out
    data["runs"][3]["val_loss"] += 1e-7
    (tmp_path / "other.json").write_text(json.dumps(data))
    assert compare.main([str(out), str(tmp_path / "other.json")]) == 1
    assert "val_loss" in capsys.readouterr().out


def test_plot_is_a_png(grid: tuple[Path, Path]) -> None:
    png = (grid[0] / "accuracy.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_same_seed_gives_the_same_numbers(tmp_path: Path, timm_checkpoint: Path) -> None:
    keys = ("top1", "top5", "train_loss", "val_loss")
    runs = []
    for name in ("a", "b"):
        assert main(tiny_args(tmp_path / name, str(timm_checkpoint), "--protocols", "full", "--seeds", "3")) == 0
        runs.append([{k: r[k] for k in keys} for r in _csv(tmp_path / name)])
    assert runs[0] == runs[1]
    assert main(tiny_args(tmp_path / "c", str(timm_checkpoint), "--protocols", "full", "--seeds", "4")) == 0
    assert [{k: r[k] for k in keys} for r in _csv(tmp_path / "c")] != runs[0]


def test_unknown_protocol_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(tiny_args(tmp_path, "scratch", "--protocols", "finetune-everything")) == 2
    err = capsys.readouterr().err
    assert "unknown protocol 'finetune-everything'" in err and "lp-ft" in err
    assert not (tmp_path / "results.csv").exists()


def test_results_json_alone_redraws_the_table_and_plot(grid: tuple[Path, Path], tmp_path: Path) -> None:
    out = grid[0]
    (tmp_path / "results.json").write_bytes((out / "results.json").read_bytes())
    report.redraw(tmp_path)
    for name in ("summary.csv", "results.md", "results.csv"):
        assert (tmp_path / name).read_text() == (out / name).read_text(), name
    assert (tmp_path / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
