"""FineTuner under each protocol: what trains, what stays frozen, what the loader fills."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from tests.bench.conftest import TINY_ARCH
from weightport.errors import UsageError
from weightport_bench.finetune.data import DataSpec, DigitsDataModule
from weightport_bench.finetune.model import FineTuner, build_body
from weightport_bench.finetune.recipe import recipe_for


def _fit(model: FineTuner, epochs: int) -> None:
    dm = DigitsDataModule(DataSpec(image_size=32, batch_size=16, train_size=32, val_size=16, augmentation="none"))
    trainer = L.Trainer(accelerator="cpu", max_epochs=epochs, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(model, datamodule=dm)


def _body(model: FineTuner) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.backbone.state_dict().items()}


def test_linear_probe_changes_the_head_and_nothing_in_the_body() -> None:
    torch.manual_seed(0)
    model = FineTuner(arch=TINY_ARCH, num_classes=10, recipe=recipe_for("linear", {"epochs": 1}))
    body, head = _body(model), model.head.weight.clone()
    _fit(model, 1)
    after = model.backbone.state_dict()
    # BatchNorm running statistics included: a frozen body stays in eval mode while the head trains.
    assert all(torch.equal(body[k], after[k]) for k in body)
    assert not torch.equal(head, model.head.weight)


@pytest.mark.parametrize("protocol", ["full", "lp-ft"])
def test_full_and_lp_ft_train_the_body(protocol: str) -> None:
    torch.manual_seed(0)
    model = FineTuner(arch=TINY_ARCH, num_classes=10, recipe=recipe_for(protocol, {"epochs": 2, "probe_epochs": 1}))
    body = _body(model)
    _fit(model, 2)
    after = model.backbone.state_dict()
    assert any(not torch.equal(body[k], after[k]) for k in body if k.endswith("weight"))


def test_lp_ft_body_is_frozen_only_in_the_probe_epochs() -> None:
    model = FineTuner(arch=TINY_ARCH, num_classes=10, recipe=recipe_for("lp-ft", {"epochs": 3, "probe_epochs": 2}))
    assert [model.body_frozen_at(e) for e in range(3)] == [True, True, False]
    assert model.parameter_counts()["params_trainable"] == model.parameter_counts()["params_total"]


def test_from_pretrained_fills_the_backbone_and_leaves_a_new_head(timm_checkpoint: Path) -> None:
    state = torch.load(timm_checkpoint, weights_only=True)
    model = FineTuner.from_pretrained(timm_checkpoint, arch=TINY_ARCH, num_classes=7, into="backbone")
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert model.head.out_features == 7
    report = model.weightport_report.to_dict()
    # The source's 1000-class classifier is recognised as the head; the new 7-class head is fresh.
    assert set(report["reinitialized"]) == {"head.weight", "head.bias"} and not report["missing"]
    assert "1000 classes" in report["reinitialized_reasons"]["head.weight"]


def test_torchvision_backbone_loses_its_classifier() -> None:
    body, features, stats = build_body("torchvision:mobilenet_v3_small")
    assert body.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, features)
    assert stats is None


def test_unknown_architecture_names_the_library() -> None:
    with pytest.raises(UsageError, match="timm has no architecture 'no_such_net'"):
        build_body("no_such_net")
    with pytest.raises(UsageError, match="unknown backbone library 'keras'"):
        build_body("keras:resnet50")
