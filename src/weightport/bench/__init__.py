"""Benchmarks shipped with weightport, mounted by the CLI as ``weightport bench ...``.

Nothing here is imported by ``import weightport``; each benchmark imports what it needs.
"""
