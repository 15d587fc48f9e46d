"""Fuzz the sniffer, the safetensors header parser and the reader: only WeightportError may escape."""

from __future__ import annotations

import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .fuzz_harness import EXTENSIONS, check, mutated, seeds


def test_every_seed_reads() -> None:
    outcomes = [check(seed, ext) for seed, ext in zip(seeds()[:5], [".safetensors", ".pt", ".pth", ".ckpt", ".npz"])]
    assert outcomes == ["ok"] * 5


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=mutated(), extension=st.sampled_from(EXTENSIONS))
def test_mutated_files_raise_only_typed_errors(data: bytes, extension: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(data, extension)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=256), extension=st.sampled_from(EXTENSIONS))
def test_random_bytes_raise_only_typed_errors(data: bytes, extension: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(data, extension)
