"""``weightport bench load``: how fast, and with how much memory, each usual way loads a checkpoint.

Each approach (see :mod:`.approaches`) runs in its own fresh process, several times, alternating;
the runner collects whole-process wall time, time after imports and memory, and the report puts
them side by side with the floors (reading the file's bytes; building the model on meta).

This package imports only the standard library until a benchmark runs.
"""

from __future__ import annotations

from weightport_bench.loading.command import build_parser, main

__all__ = ["build_parser", "main"]
