"""The report judges issue 18's targets (speed at the floor) from the measured medians."""

from __future__ import annotations

from weightport_bench.loading.targets import judge, targets_markdown

MIB = 1024 * 1024
WARM = "warm within 1.2× of the hand-written fast path"
NEW = "a never-seen file within 1.5× of the hand-written fast path"
LEAN = "peak RSS growth within 1.05× of the checkpoint's bytes"
OTHERS = "faster and leaner than timm's and huggingface_hub's loaders"


def _row(name: str, after: float | None, above: float | None, status: str = "ok") -> dict:
    return {"approach": name, "status": status, "median": {"after_imports_s": after, "above_base_mib": above}}


def _table(wp_after: float, wp_above: float, *, timm_status: str = "ok", new_file: float | None = None) -> dict:
    return {
        "arch": "vit_large_patch16_224", "format": "safetensors", "checkpoint_bytes": 1000 * MIB,
        "floor": {"after_imports_s": 1.0},
        "rows": [_row("hand-written", 1.0, 1000), _row("timm", 8.0, 2000, timm_status), _row("hf-mixin", 8.5, 2100),
                 _row("weightport", wp_after, wp_above),
                 _row("weightport-new-file", wp_after if new_file is None else new_file, wp_above)],
    }


def test_a_load_near_the_floor_meets_every_target() -> None:
    verdicts = judge([_table(1.1, 1040)])

    assert {v.target for v in verdicts} == {WARM, NEW, LEAN, OTHERS}
    assert all(v.met for v in verdicts)


def test_a_slow_fat_load_misses_them_and_the_table_says_so() -> None:
    verdicts = {v.target: v for v in judge([_table(7.5, 2300, new_file=1.4)])}

    assert not verdicts[WARM].met
    assert "7.500 s = 7.50× the hand-written 1.000 s" in verdicts[WARM].measured
    assert verdicts[NEW].met  # 1.4× is within the never-seen file's 1.5×
    assert not verdicts[LEAN].met
    assert "| **no** |" in targets_markdown([_table(7.5, 2300)])


def test_a_target_whose_approaches_were_not_run_is_not_judged() -> None:
    table = _table(1.1, 1040)
    table["rows"] = [r for r in table["rows"] if r["approach"] != "weightport-new-file"]
    assert NEW not in {v.target for v in judge([table])}


def test_a_loader_that_fails_counts_as_beaten() -> None:
    verdicts = [v for v in judge([_table(1.1, 1040, timm_status="error")]) if v.target.startswith("faster and")]

    assert [v.met for v in verdicts] == [True, True]
    assert "timm failed to load this file" in verdicts[0].measured
