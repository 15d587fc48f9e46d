"""Recipes: one default per protocol, overridable field by field, from Python or the command line."""

from __future__ import annotations

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


def test_defaults_compare_the_efficientnet_weights_with_scratch() -> None:
    config = config_from_args(build_parser().parse_args([]))
    assert config.sources == ("efficientnet_lite0", "scratch")
    assert config.protocols == ("linear", "full") and config.arch == "tf_efficientnet_lite0"
