"""Loading speed and memory: weightport against the usual ways, each in a fresh process.

    python benchmarks/loading.py --models resnet50 --repeat 1      # quick look
    python benchmarks/loading.py                                    # the full set (minutes)

Same as ``weightport bench load``; the code is in :mod:`weightport_bench.loading`.
Results go to ``benchmarks/results/loading.md`` and ``loading.json``.
"""

from __future__ import annotations

from weightport_bench.loading import main

if __name__ == "__main__":
    raise SystemExit(main())
