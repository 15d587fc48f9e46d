"""Fine-tune baselines: which weight source to start from, and is fine-tuning worth it over a probe?

Every weight source (plus ``scratch``, random init) × protocol (``linear``, ``full``, ``lp-ft``) × seed
trains a :class:`~weightport_bench.finetune.model.FineTuner` built with ``from_pretrained`` (or the
user's own LightningModule and DataModule, :mod:`.user`) under one fixed recipe per protocol, and
reports the score's mean and 95 % t-interval over seeds, the paired difference from scratch
(:mod:`.stats`), losses, throughput per device, parameter counts and the source's provenance as a
table, CSV, JSON and a plot, in a run directory of their own (:mod:`.compare` checks two runs agree).
``main``/``build_parser`` are the command line that ``weightport bench finetune`` mounts and
``benchmarks/finetune.py`` calls.
"""

from weightport_bench.finetune.cli import build_parser, main

__all__ = ["build_parser", "main"]
