"""The report judges issue 5's targets from the measured medians."""

from __future__ import annotations

from weightport_bench.loading.targets import judge, targets_markdown

MIB = 1024 * 1024


def _row(name: str, after: float | None, above: float | None, status: str = "ok") -> dict:
    return {"approach": name, "status": status, "median": {"after_imports_s": after, "above_base_mib": above}}


def _table(wp_after: float, wp_above: float, *, timm_status: str = "ok") -> dict:
    return {
        "arch": "vit_large_patch16_224", "format": "safetensors", "checkpoint_bytes": 1000 * MIB,
        "floor": {"after_imports_s": 1.0},
        "rows": [_row("safetensors", 9.0, 2000), _row("timm", 8.0, 2000, timm_status), _row("hf-mixin", 8.5, 2100),
                 _row("weightport", wp_after, wp_above)],
    }


def test_a_load_near_the_floor_meets_every_target() -> None:
    verdicts = judge([_table(1.2, 1100)])

    assert {v.target for v in verdicts} == {
        "after imports within 1.5× of the floor (safetensors)",
        "at least 5× faster than the usual recipe (ViT-L/16)",
        "memory above baseline within 1.15× of the checkpoint's bytes",
        "faster and leaner than timm's and huggingface_hub's loaders",
    }
    assert all(v.met for v in verdicts)


def test_a_slow_fat_load_misses_them_and_the_table_says_so() -> None:
    verdicts = {v.target: v for v in judge([_table(7.5, 2300)])}
    near_floor = verdicts["after imports within 1.5× of the floor (safetensors)"]

    assert not near_floor.met
    assert "7.500 s = 7.50× the floor's 1.000 s" in near_floor.measured
    assert not verdicts["at least 5× faster than the usual recipe (ViT-L/16)"].met
    assert not verdicts["memory above baseline within 1.15× of the checkpoint's bytes"].met
    assert "| **no** |" in targets_markdown([_table(7.5, 2300)])


def test_a_loader_that_fails_counts_as_beaten() -> None:
    verdicts = [v for v in judge([_table(1.2, 1100, timm_status="error")]) if v.target.startswith("faster and")]

    assert [v.met for v in verdicts] == [True, True]
    assert "timm failed to load this file" in verdicts[0].measured
