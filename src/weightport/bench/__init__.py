"""Benchmarks that ship with weightport (``weightport bench ...``)."""
