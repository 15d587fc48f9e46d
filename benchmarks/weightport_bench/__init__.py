"""weightport's benchmarks, a distribution of their own (``weightport-bench``, ``benchmarks/pyproject.toml``).

Each benchmark is mounted on the library's command line through the ``weightport.benchmarks`` entry
point group (``weightport bench load``, ``weightport bench finetune``); ``import weightport`` never
imports anything from here. Install from a checkout with ``pip install -e ./benchmarks``.
"""
