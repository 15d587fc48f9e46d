"""Tensor adapters (reshape, input channels, position embeddings, class subsets)."""
