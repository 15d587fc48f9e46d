"""Adapters: one module per kind of source; each registers itself by scheme."""
