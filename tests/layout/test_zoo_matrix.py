"""The torchvision ↔ timm matrix in the suite: no architecture both implement loads silently wrong.

Each direction builds the source with random weights (moved off their init, random batch-norm
statistics), saves it, loads it with a plain ``load_weights(target, path)`` and compares eval-mode
outputs (``benchmarks/zoo_matrix.py`` does the work; its ``--all`` run writes the table in
``docs/layouts.md``). The smallest architecture of each family runs here; every direction must be
EXACT, or REFUSED with a message that says what differs and what to pass.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo_matrix.py"
_spec = importlib.util.spec_from_file_location("zoo_matrix", _PATH)
assert _spec is not None and _spec.loader is not None
zoo = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("zoo_matrix", zoo)
_spec.loader.exec_module(zoo)

#: Families whose smallest member takes 20 s to 3 min per direction on the shared 2-core machine
#: (measured: VGG-11 100-170 s, ViT-B/32 55-70 s, Wide-ResNet-50 40 s, Swin-T 30 s): they run
#: with WEIGHTPORT_ZOO_SLOW=1 (and in `python benchmarks/zoo_matrix.py`), the others always (~4 min).
SLOW = {"vgg", "vgg_bn", "wide_resnet", "swin", "swin_v2", "vit", "maxvit", "convnext", "inception_v3"}
_RUN_SLOW = os.environ.get("WEIGHTPORT_ZOO_SLOW") == "1"

CASES = [
    pytest.param(pair, direction, id=f"{pair.name}:{direction}",
                 marks=[pytest.mark.slow, pytest.mark.skipif(not _RUN_SLOW, reason="set WEIGHTPORT_ZOO_SLOW=1")]
                 if pair.family in SLOW else [])
    for pair in zoo.select(tier="default")
    for direction in zoo.DIRECTIONS
]


@pytest.mark.parametrize("pair,direction", CASES)
def test_no_direction_loads_silently_wrong(pair, direction, tmp_path):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        outcome = zoo.run_direction(pair, direction, tmp_path)
    finally:
        torch.set_num_threads(threads)
    assert outcome.outcome in ("EXACT", "REFUSED"), f"{outcome.outcome}: {outcome.detail}"
    if outcome.outcome == "REFUSED":
        assert " — hint: " in outcome.detail, f"a refusal must say what to do: {outcome.detail}"
    # a hint that names how to build the target, followed as written, never loads wrong
    assert not outcome.hint_followed.startswith(("WRONG", "CRASH")), outcome.hint_followed


def test_every_family_is_in_the_default_run():
    families = {p.family for p in zoo.PAIRS}
    assert {p.family for p in zoo.select(tier="default")} == families
    assert len(zoo.PAIRS) >= 69  # every architecture torchvision and timm both implement
