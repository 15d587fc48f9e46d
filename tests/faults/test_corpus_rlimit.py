"""The whole fault corpus once more, in a child process under an address-space limit (``RLIMIT_AS``).

Every case of ``tests/test_fault_suite.py`` and ``tests/faults/test_*.py`` must also pass when no
allocation past a bounded headroom can succeed: an input that makes weightport allocate what the
file declares (a 64 GiB tensor, a body held in memory) fails here with ``MemoryError`` even where
the in-process run has the memory to survive it. The child starts under an outer limit set before
``exec`` (``preexec_fn``), then ``tests/faults/rlimit_plugin.py`` lowers it to what the imports use
plus ``bounded_child.HEADROOM`` and proves it bites before any case runs.

Not run in the child: ``tests/faults/test_bounded.py``, because it already runs its cases in a child
of its own under a limit it sets and proves (a child cannot raise an inherited hard limit, and
lowering it twice proves nothing more); and this file (it would start itself again).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from tests.test_fault_suite import ROOT, SRC

#: The limit from ``exec`` on (interpreter start, imports, collection): far below the bombs' sizes.
OUTER_LIMIT = 16 << 30
NOT_IN_THE_CHILD = {"test_bounded.py", "test_corpus_rlimit.py"}


def _corpus() -> list[str]:
    faults = sorted(p for p in (ROOT / "tests" / "faults").glob("test_*.py") if p.name not in NOT_IN_THE_CHILD)
    return [str(ROOT / "tests" / "test_fault_suite.py"), *map(str, faults)]


def _limit_address_space() -> None:  # runs in the child, before exec
    resource.setrlimit(resource.RLIMIT_AS, (OUTER_LIMIT, resource.getrlimit(resource.RLIMIT_AS)[1]))


def test_the_whole_fault_corpus_passes_under_an_address_space_limit(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), str(ROOT), str(ROOT / "benchmarks")]),
        "WEIGHTPORT_RLIMIT_REPORT": str(report),
        # What the address space grows by after the imports must not depend on the machine's cores:
        # glibc reserves 64 MiB per malloc arena (up to 8 per core), torch starts a thread per core.
        "MALLOC_ARENA_MAX": "2",
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
               "-p", "tests.faults.rlimit_plugin", "--basetemp", str(tmp_path / "t"), *_corpus()]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT,
                          preexec_fn=_limit_address_space, timeout=900)  # a hang guard, not a measurement
    tail = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert report.exists(), tail
    got = json.loads(report.read_text())
    assert got["bites"], f"the limit {got['limit']} did not bite: {tail}"
    outcomes = got["outcomes"]
    bad = {test: outcome for test, outcome in outcomes.items() if outcome != "passed"}
    assert not bad and proc.returncode == 0, f"under RLIMIT_AS={got['limit']}: {bad}\n{tail}"
    assert len(outcomes) == got["collected"] > 200, tail
