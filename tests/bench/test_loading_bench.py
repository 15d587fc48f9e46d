"""The loading benchmark runs every approach, verifies what each loaded, and reports ratios to the floor.

No timing is asserted: these tests check that the harness measures the right things and that a
broken approach shows up as broken instead of fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from weightport_bench.loading import main
from weightport_bench.loading.approaches import APPROACHES, FORMATS, Approach
from weightport_bench.loading.fixtures import ensure_fixture
from weightport_bench.loading.runner import Job, plan_jobs, run_jobs

ARCH = "test_vit"  # timm's tiny ViT: 0.4 M parameters, builds in milliseconds

VARIANTS = {"weightport-new-file", "hand-written-uncached", "weightport-uncached"}
PER_FORMAT = {
    "safetensors": {"safetensors", "hand-written", "timm", "hf-mixin", "weightport", "weightport-into-existing",
                    "read-bytes", "meta-build", *VARIANTS},
    "pth": {"naive", "mmap", "hand-written", "timm", "weightport", "weightport-into-existing", "read-bytes",
            "meta-build", *VARIANTS},
    "ckpt": {"naive", "mmap", "hand-written", "timm", "weightport", "weightport-into-existing", "read-bytes",
             "meta-build", *VARIANTS},
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench-work")
    ensure_fixture(ARCH, root)
    return root


def _run(workdir: Path, out: Path, *extra: str) -> tuple[int, dict, str]:
    code = main(["--models", ARCH, "--repeat", "1", "--workdir", str(workdir), "--out-dir", str(out), "-q", *extra])
    return code, json.loads((out / "loading.json").read_text()), (out / "loading.md").read_text()


def _rows(document: dict) -> dict[tuple[str, str], dict]:
    return {(t["format"], row["approach"]): row for t in document["tables"] for row in t["rows"]}


def test_every_approach_runs_verifies_and_gets_ratios(workdir: Path, tmp_path: Path) -> None:
    code, document, markdown = _run(workdir, tmp_path, "--inline")

    assert code == 0
    assert {t["format"] for t in document["tables"]} == set(FORMATS)
    assert set().union(*PER_FORMAT.values()) == set(APPROACHES)
    for table in document["tables"]:
        assert {row["approach"] for row in table["rows"]} == PER_FORMAT[table["format"]]
        assert table["floor"]["after_imports_s"] > 0
        assert table["checkpoint_bytes"] == (workdir / ARCH / f"weights.{table['format']}").stat().st_size
    rows = _rows(document)
    # timm's own loader knows no Lightning attribute prefix: a finding the table shows, not a crash.
    timm_ckpt = rows.pop(("ckpt", "timm"))
    assert timm_ckpt["status"] == "error" and "Missing key" in timm_ckpt["error"]
    for (fmt, name), row in rows.items():
        assert row["status"] == "ok", (fmt, name, row["error"])
        assert row["ratio_to_floor"]["after_imports_s"] > 0
        assert row["ratio_to_floor"]["above_base_per_checkpoint"] is not None
    # Ratios to the hand-written fast path, an uncached variant to the uncached hand-written one.
    assert rows[("safetensors", "weightport")]["hand_written_reference"] == "hand-written"
    assert rows[("safetensors", "weightport-new-file")]["hand_written_reference"] == "hand-written"
    assert rows[("pth", "weightport-uncached")]["hand_written_reference"] == "hand-written-uncached"
    assert rows[("safetensors", "weightport")]["ratio_to_hand_written"] > 0
    assert not list((workdir / ARCH).glob(".new-*"))  # the never-seen copies are removed after their run
    assert "Inline run" in markdown
    assert "**floor**" in markdown and "| weightport |" in markdown
    assert "ckpt / timm (error)" in markdown


def test_fresh_processes_measure_imports_and_memory(workdir: Path, tmp_path: Path) -> None:
    code, document, markdown = _run(workdir, tmp_path, "--formats", "ckpt",
                                    "--approaches", "weightport", "read-bytes", "meta-build")

    assert code == 0
    rows = _rows(document)
    assert set(rows) == {("ckpt", "weightport"), ("ckpt", "read-bytes"), ("ckpt", "meta-build")}
    # Every measurement is there, as a number; how large each is, is the benchmark's result, not a test's.
    for row in rows.values():
        assert row["status"] == "ok", row["error"]
        for name in ("wall_s", "import_s", "after_imports_s", "peak_rss_mib", "rss_base_mib", "above_base_mib",
                     "library_paged_mib"):
            assert isinstance(row["median"][name], (int, float)), name
    assert document["machine"]["cpu"] and document["machine"]["packages"]["torch"]
    assert "Inline run" not in markdown


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads Linux's /proc/self/smaps")
def test_library_pages_count_shared_objects_only() -> None:
    # A fresh interpreter: mapping a C extension it has not loaded grows the library pages, and a
    # 64 MiB anonymous buffer made resident does not.
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from weightport_bench.loading import memory\n"
        "a = memory.library_rss_mib()\n"
        "buf = bytearray(64 << 20)\n"
        "b = memory.library_rss_mib()\n"
        "import _decimal\n"
        "c = memory.library_rss_mib()\n"
        "print(a, b, c, memory.rss_mib())\n"
    )
    bench = Path(__file__).resolve().parents[2] / "benchmarks"
    out = subprocess.run([sys.executable, "-c", script, str(bench)], capture_output=True, text=True, check=True)
    before, with_buffer, with_extension, rss = map(float, out.stdout.split())
    assert abs(with_buffer - before) < 1.0
    assert with_extension > with_buffer
    assert 0 < with_extension < rss - 60


def test_library_pages_are_not_counted_as_the_loads_memory() -> None:
    from weightport_bench.loading.runner import _derive

    record = {"load_s": 1.0, "peak_rss_mib": 900.0, "rss_base_mib": 700.0, "library_base_mib": 250.0,
              "library_end_mib": 256.0}
    _derive(record)
    assert record["library_paged_mib"] == 6.0
    assert record["above_base_mib"] == 194.0
    unmeasured = {"load_s": 1.0, "peak_rss_mib": 900.0, "rss_base_mib": 700.0}  # no smaps: nothing subtracted
    _derive(unmeasured)
    assert unmeasured["above_base_mib"] == 200.0


def _forgets_to_load(task) -> object:
    import timm

    return timm.create_model(task.arch, pretrained=False)


def _crashes(task) -> object:
    raise RuntimeError("cannot read this")


@pytest.mark.parametrize(("load", "status", "message"), [
    (_forgets_to_load, "wrong", "differs from the checkpoint"),
    (_crashes, "error", "RuntimeError: cannot read this"),
])
def test_a_broken_approach_is_reported_not_fast(workdir: Path, monkeypatch: pytest.MonkeyPatch, load, status: str,
                                                message: str) -> None:
    broken = Approach("broken", "a loader with a bug", "baseline", frozenset({"pth"}), ("torch", "timm"), "model", load)
    monkeypatch.setitem(APPROACHES, "broken", broken)
    fixture = ensure_fixture(ARCH, workdir)

    [result] = run_jobs(plan_jobs([ARCH], ["pth"], ["broken"]), {ARCH: fixture}, repeat=1, launcher="inline")

    assert result.job == Job(ARCH, "pth", "broken")
    assert result.status == status
    assert message in (result.error or "")
    assert result.median("after_imports_s") is None


def test_fixture_is_written_once_and_reused(workdir: Path) -> None:
    manifest = workdir / ARCH / "expected.json"
    before = manifest.stat().st_mtime_ns

    fixture = ensure_fixture(ARCH, workdir)

    assert manifest.stat().st_mtime_ns == before
    assert fixture.nbytes("pth") == fixture.path("pth").stat().st_size
    assert (fixture.hub_dir / "config.json").is_file()


def test_time_budget_stops_before_a_round_that_would_overrun(workdir: Path) -> None:
    fixture = ensure_fixture(ARCH, workdir)
    jobs = plan_jobs([ARCH], ["pth", "ckpt"], ["read-bytes"])

    unlimited = run_jobs(jobs, {ARCH: fixture}, repeat=3, launcher="inline")
    budgeted = run_jobs(jobs, {ARCH: fixture}, repeat=3, launcher="inline", time_budget=0.0)

    assert [len(r.runs) for r in unlimited] == [3, 3]
    assert [len(r.runs) for r in budgeted] == [1, 1]  # the first round always runs, and is never cut
