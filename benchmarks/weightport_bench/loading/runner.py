"""Runs every (model, format, approach) job in fresh processes, several times, and takes medians.

Repetitions alternate: each round runs every job once, starting at a different job each round,
so that a slow spell of a shared machine spreads over all approaches instead of hitting one.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import weightport
from weightport_bench.loading.approaches import APPROACHES
from weightport_bench.loading.fixtures import Fixture

logger = logging.getLogger("weightport.bench")

CHILD_MODULE = "weightport_bench.loading.child"
METRICS: tuple[str, ...] = (
    "wall_s", "import_s", "load_s", "touch_s", "after_imports_s", "verify_s",
    "peak_rss_mib", "rss_base_mib", "above_base_mib", "library_paged_mib", "anon_end_mib", "anon_above_base_mib",
)


@dataclass(frozen=True)
class Job:
    """One approach on one model in one format (``fmt`` None for approaches that read no file)."""

    arch: str
    fmt: str | None
    approach: str

    @property
    def key(self) -> str:
        """A readable identifier, ``arch/fmt/approach``."""
        return f"{self.arch}/{self.fmt or '-'}/{self.approach}"


@dataclass
class JobResult:
    """Every run of a job, and their medians."""

    job: Job
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok_runs(self) -> list[dict[str, Any]]:
        """The runs that loaded the right weights."""
        return [r for r in self.runs if r["status"] == "ok"]

    @property
    def status(self) -> str:
        """``ok`` when every run loaded the right weights, else the first failure's status."""
        failed = [r for r in self.runs if r["status"] != "ok"]
        return failed[0]["status"] if failed else ("ok" if self.runs else "not run")

    @property
    def error(self) -> str | None:
        """The first failure's message, if any run failed."""
        failed = [r for r in self.runs if r["status"] != "ok"]
        return failed[0].get("error") if failed else None

    @property
    def notes(self) -> dict[str, Any]:
        """The notes of the first run that loaded the right weights (empty when none has any)."""
        return next((r["notes"] for r in self.ok_runs if r.get("notes")), {})

    def median(self, metric: str) -> float | None:
        """The median of ``metric`` over the runs that loaded the right weights (None without any)."""
        values = [r[metric] for r in self.ok_runs if r.get(metric) is not None]
        return statistics.median(values) if values else None

    def medians(self) -> dict[str, float | None]:
        """:meth:`median` of every metric."""
        return {m: self.median(m) for m in METRICS}


def plan_jobs(archs: Iterable[str], formats: Iterable[str], approaches: Iterable[str]) -> list[Job]:
    """Every job to run: each approach for each model and each format it applies to.

    An approach that reads no file (``formats`` None, e.g. the meta build) runs once per model.
    """
    formats = list(formats)
    jobs: list[Job] = []
    chosen = [APPROACHES[name] for name in approaches]
    for arch in archs:
        for app in chosen:
            if app.formats is None:
                jobs.append(Job(arch, None, app.name))
            else:
                jobs.extend(Job(arch, fmt, app.name) for fmt in formats if fmt in app.formats)
    return jobs


def child_env(threads: int | None = None) -> dict[str, str]:
    """The environment of a child: the same weightport and benchmarks as this process, offline, quiet."""
    env = dict(os.environ)
    src = str(Path(weightport.__file__).resolve().parent.parent)
    bench = str(Path(__file__).resolve().parents[2])  # the directory holding weightport_bench
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, bench, env.get("PYTHONPATH")) if p)
    env["HF_HUB_OFFLINE"] = "1"
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    env["PYTHONWARNINGS"] = "ignore"
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    return env


@dataclass(frozen=True)
class Launch:
    """How runs are started: the child's environment, its time limit and its interpreter."""

    env: Mapping[str, str]
    timeout: float = 900.0
    python: str = sys.executable


def _spec(job: Job, fixture: Fixture) -> dict[str, Any]:
    return {"approach": job.approach, "root": str(fixture.root), "fmt": job.fmt}


def run_subprocess(job: Job, fixture: Fixture, launch: Launch) -> dict[str, Any]:
    """Run ``job`` once in a fresh ``python -m`` process and return its measurements.

    ``wall_s`` is the whole process, from spawn to exit; the rest the child measures itself.
    """
    with tempfile.TemporaryDirectory(prefix="wp-bench-") as tmp:
        out = Path(tmp) / "record.json"
        cmd = [launch.python, "-m", CHILD_MODULE, json.dumps(_spec(job, fixture)), str(out)]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=dict(launch.env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  timeout=launch.timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "error": f"did not finish within {launch.timeout:.0f} s"}
        wall = time.perf_counter() - t0
        if not out.is_file():
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            return {"status": "crash", "error": f"exit {proc.returncode}: {tail[0][:300]}", "wall_s": wall}
        record: dict[str, Any] = json.loads(out.read_text())
    record.update(wall_s=wall, returncode=proc.returncode)
    return record


def run_inline(job: Job, fixture: Fixture, launch: Launch) -> dict[str, Any]:
    """Run ``job`` in this process: only to check that every approach works (tests); the numbers
    mean nothing, since imports are shared and memory is this process's."""
    from weightport_bench.loading.child import run

    t0 = time.perf_counter()
    record = run(_spec(job, fixture), start=t0)
    record["wall_s"] = time.perf_counter() - t0
    return record


LAUNCHERS: dict[str, Callable[[Job, Fixture, Launch], dict[str, Any]]] = {
    "subprocess": run_subprocess,
    "inline": run_inline,
}


def _derive(record: dict[str, Any]) -> None:
    """Add the metrics computed from the child's own: time after imports, memory above the baseline."""
    if record.get("load_s") is not None:
        record["after_imports_s"] = record["load_s"] + record.get("touch_s", 0.0)
    if record.get("rss_base_mib") is not None:
        # Program code paged in after the baseline (torch's kernels on first use) is shared, read-only
        # and the same for every approach: it is shown, and not counted as the load's memory.
        base, end = record.get("library_base_mib"), record.get("library_end_mib")
        record["library_paged_mib"] = max(0.0, end - base) if base is not None and end is not None else 0.0
        record["above_base_mib"] = record["peak_rss_mib"] - record["rss_base_mib"] - record["library_paged_mib"]
    if record.get("anon_base_mib") is not None and record.get("anon_end_mib") is not None:
        record["anon_above_base_mib"] = record["anon_end_mib"] - record["anon_base_mib"]


def _rotated(jobs: list[Job], round_index: int) -> list[Job]:
    if not jobs:
        return jobs
    start = (round_index * max(1, len(jobs) // 3 + 1)) % len(jobs)
    return jobs[start:] + jobs[:start]


def run_jobs(jobs: list[Job], fixtures: Mapping[str, Fixture], *, repeat: int, launch: Launch | None = None,
             launcher: str = "subprocess", time_budget: float | None = None,
             progress: Callable[[int, int, Job, dict[str, Any]], None] | None = None) -> list[JobResult]:
    """Run every job ``repeat`` times, alternating, and return the results in ``jobs`` order.

    Args:
        launcher: ``subprocess`` (each run in a fresh process: the benchmark) or ``inline`` (in this
            process: a quick check that every approach works, with meaningless numbers).
        time_budget: Seconds; after the first round, a round starts only when it is expected (from
            the previous one) to end within the budget. Rounds are never cut, so every job keeps
            the same number of runs.
    """
    results = {job: JobResult(job) for job in jobs}
    launch = launch or Launch(child_env())
    start = LAUNCHERS[launcher]
    total, done = len(jobs) * repeat, 0
    t_start, last_round = time.perf_counter(), 0.0
    for round_index in range(repeat):
        elapsed = time.perf_counter() - t_start
        if round_index and time_budget is not None and elapsed + last_round > time_budget:
            logger.info("stopping after %d round(s): another would end past the %.0f s budget", round_index,
                        time_budget)
            break
        t_round = time.perf_counter()
        for job in _rotated(jobs, round_index):
            record = start(job, fixtures[job.arch], launch)
            _derive(record)
            record["round"] = round_index
            results[job].runs.append(record)
            done += 1
            if progress is not None:
                progress(done, total, job, record)
        last_round = time.perf_counter() - t_round
    return [results[job] for job in jobs]


