"""One approach, one load, in a fresh process: ``python -m weightport_bench.loading.child SPEC OUT``.

``SPEC`` is a JSON object (approach, fixture root, format); the measurements are
written as JSON to the file ``OUT``. The phases are timed apart: importing what the approach needs,
loading, touching every page of the result (so a lazy load pays for its reads here), and
verifying the result against the checkpoint. A failure is recorded, never raised, so that the
benchmark can put it in its table.
"""

from __future__ import annotations

import time

_START = time.perf_counter()

import importlib  # noqa: E402  (the clock starts before anything else is imported)
import json  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from weightport.errors import VerificationError  # noqa: E402
from weightport_bench.loading import memory  # noqa: E402
from weightport_bench.loading.approaches import Loaded, get  # noqa: E402
from weightport_bench.loading.checks import CHECKS  # noqa: E402
from weightport_bench.loading.fixtures import load_fixture  # noqa: E402


def run(spec: dict[str, Any], start: float | None = None) -> dict[str, Any]:
    """Run the load ``spec`` describes and return its measurements (``status`` ok, wrong or error).

    Args:
        spec: ``approach``, ``root`` (the fixture's directory) and ``fmt``.
        start: When the clock of ``import_s`` started (default: when this process started importing).
    """
    start = _START if start is None else start
    record: dict[str, Any] = {"status": "error", "error": None}
    cleanup = None
    try:
        app = get(spec["approach"])
        fixture = load_fixture(Path(spec["root"]))
        task, expected, check = fixture.task(spec.get("fmt")), fixture.expected(spec.get("fmt")), CHECKS[app.check]
        if app.prepare is not None:  # before the clock: a new copy of the file, the page cache dropped
            task, cleanup = app.prepare(task)
        t_imports = time.perf_counter()
        for module in app.imports:
            importlib.import_module(module)
        t_imported = time.perf_counter()
        # import_s counts this module's own (standard-library) imports too; the approach's imports dominate.
        record.update(import_s=t_imported - start, approach_import_s=t_imported - t_imports,
                      rss_base_mib=memory.rss_mib(), anon_base_mib=memory.anon_mib(),
                      library_base_mib=memory.library_rss_mib())
        t_load = time.perf_counter()  # after the baseline readings, which are not the load's time
        result = app.load(task)
        t_loaded = time.perf_counter()
        if isinstance(result, Loaded):
            record["notes"] = result.notes
            result = result.result
        check.touch(result)
        t_touched = time.perf_counter()
        record.update(load_s=t_loaded - t_load, touch_s=t_touched - t_loaded)
        check.verify(result, expected)
        record.update(verify_s=time.perf_counter() - t_touched, status="ok")
    except VerificationError as exc:
        record.update(status="wrong", error=str(exc))
    except Exception as exc:  # any failure of the approach under test is a result, not a crash
        record.update(error=f"{type(exc).__name__}: {exc}".strip()[:500], traceback=traceback.format_exc()[-3000:])
    finally:
        if cleanup is not None:
            cleanup()
    record.update(peak_rss_mib=memory.peak_rss_mib(), rss_end_mib=memory.rss_mib(), anon_end_mib=memory.anon_mib(),
                  library_end_mib=memory.library_rss_mib())
    return record


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child process; always writes its record and exits 0 when it could."""
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(args[0])
    Path(args[1]).write_text(json.dumps(run(spec)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
