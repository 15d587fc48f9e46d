"""Fitters, the tensor transforms of the adapt stage (reshape, input channels, position embeddings, class subsets)."""
