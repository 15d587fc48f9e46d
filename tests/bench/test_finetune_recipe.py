"""Recipes: one default per protocol, overridable field by field, from Python or the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from weightport.errors import UsageError
from weightport_bench.finetune.cli import build_parser, config_from_args
from weightport_bench.finetune.recipe import PROTOCOLS, recipe_for


def test_each_protocol_has_its_own_default() -> None:
    assert set(PROTOCOLS) == {"linear", "full", "lp-ft"}
    assert recipe_for("linear").frozen_epochs() is None
    assert recipe_for("full").frozen_epochs() == 0
    lp_ft = recipe_for("lp-ft")
    assert 0 < lp_ft.frozen_epochs() == lp_ft.probe_epochs < lp_ft.epochs


def test_overrides_replace_only_what_is_named() -> None:
    base, changed = recipe_for("full"), recipe_for("full", {"epochs": 9, "lr": None})
    assert changed.epochs == 9 and changed.lr == base.lr and changed.optimizer == base.optimizer


def test_unknown_field_or_protocol_is_refused_with_the_choices() -> None:
    with pytest.raises(UsageError, match="unknown recipe field") as err:
        recipe_for("full", {"epoch": 1})
    assert "epochs" in str(err.value)
    with pytest.raises(UsageError, match="lp-ft"):
        recipe_for("probe")


def test_command_line_flags_override_every_protocol() -> None:
    args = build_parser().parse_args(["a.pt", "scratch", "--protocols", "linear", "lp-ft", "--epochs", "5",
                                      "--image-size", "48", "--seeds", "1", "2", "--train-size", "0"])  # fmt: skip
    config = config_from_args(args)
    assert config.sources == ("a.pt", "scratch") and config.seeds == (1, 2) and config.train_size is None
    assert [config.recipe(p).epochs for p in config.protocols] == [5, 5]
    assert [config.recipe(p).image_size for p in config.protocols] == [48, 48]
    assert config.recipe("lp-ft").lr == recipe_for("lp-ft").lr


def test_defaults_compare_three_real_sources_and_scratch_over_three_seeds() -> None:
    config = config_from_args(build_parser().parse_args([]))
    assert config.sources == ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "scratch")
    assert config.protocols == ("linear", "full") and len(config.seeds) >= 3
    # Each set of weights goes into the architecture it fits; scratch is --arch.
    assert [(s.label, s.arch) for s in config.specs()] == [
        ("efficientnet_lite0", "tf_efficientnet_lite0"), ("efficientnet_lite1", "tf_efficientnet_lite1"),
        ("efficientnet_lite2", "tf_efficientnet_lite2"), ("scratch", "tf_efficientnet_lite0"),
    ]
    # Results go to a new run directory, never over the committed reference.
    assert config.out_dir.parent == Path("benchmarks/results/finetune") and config.out_dir.name != "reference"


def test_any_source_string_with_its_architecture() -> None:
    args = build_parser().parse_args(["--source", "hf:org/repo@v1/model.safetensors", "--source", "./my.ckpt",
                                      "--source", "scratch:resnet18", "--source-arch", "./my.ckpt=resnet18",
                                      "--arch", "timm:resnet10t"])  # fmt: skip
    specs = config_from_args(args).specs()
    assert [(s.label, s.source, s.arch) for s in specs] == [
        ("hf:org/repo@v1/model.safetensors", "hf:org/repo@v1/model.safetensors", "timm:resnet10t"),
        ("./my.ckpt", "./my.ckpt", "resnet18"),
        ("scratch:resnet18", None, "resnet18"),
    ]


def test_a_source_given_twice_or_a_bad_source_arch_is_refused() -> None:
    with pytest.raises(UsageError, match="given twice"):
        config_from_args(build_parser().parse_args(["a.pt", "--source", "a.pt"])).specs()
    with pytest.raises(UsageError, match="SOURCE=ARCH"):
        config_from_args(build_parser().parse_args(["--source-arch", "resnet18"]))


def test_recipe_body_is_the_freezing_and_overridable() -> None:
    args = build_parser().parse_args(["--body", "encoder", "--protocols", "linear"])
    assert config_from_args(args).recipe("linear").body == "encoder"
    assert recipe_for("linear").body == "backbone"
