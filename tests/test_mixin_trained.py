"""The mixin keeps what was trained: init arguments captured, sources' own configs, trained heads warned about."""

from __future__ import annotations

import inspect
import json
import warnings

import lightning.pytorch as L
import pytest
import pytorch_lightning as PL
import torch
from torch import nn

from tests.conftest import save
from tests.helpers.models import TinyNet, randomize_bn
from weightport import PretrainedMixin
from weightport.errors import InvalidOptionError, SaveError, UsageError
from weightport.loading.options import NAMED_OPTIONS, LoadOptions
from weightport.warnings import TrainedWeightsReplacedWarning


class LitNet(PretrainedMixin, L.LightningModule):
    def __init__(self, num_classes: int = 10, width: int = 8):
        super().__init__()
        self.net = TinyNet(num_classes=num_classes, width=width)


class PLNet(PretrainedMixin, PL.LightningModule):
    def __init__(self, num_classes: int = 10, width: int = 8):
        super().__init__()
        self.net = TinyNet(num_classes=num_classes, width=width)


class PlainNet(PretrainedMixin, nn.Module):
    def __init__(self, num_classes: int = 10, width: int = 8):
        super().__init__()
        self.net = TinyNet(num_classes=num_classes, width=width)


CLASSES = [LitNet, PLNet, PlainNet]


def trained(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    randomize_bn(model)
    return model


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("cls", CLASSES)
def test_a_model_built_directly_saves_and_rebuilds_exactly(tmp_path, cls):
    model = trained(cls(5, width=4))  # positional and keyword arguments, no save_hyperparameters
    out = model.save_pretrained(tmp_path / "saved")
    assert json.loads((out / "config.json").read_text()) == {"num_classes": 5, "width": 4}
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainedWeightsReplacedWarning)
        again = cls.from_pretrained(out)
    assert again.net.fc.out_features == 5 and same_weights(model, again)
    report = again.weightport_report
    assert report.reinitialized == [] and report.missing == []
    assert report.init == {"num_classes": {"value": 5, "from": "config.json"},
                           "width": {"value": 4, "from": "config.json"}}
    assert "init: num_classes=5 (config.json), width=4 (config.json)" in str(report)


def test_save_pretrained_refuses_a_model_its_config_cannot_rebuild(tmp_path):
    model = LitNet(num_classes=10)
    model.net.fc = nn.Linear(16, 3)  # changed after construction: the config says 10 classes
    with pytest.raises(SaveError, match=r"net.fc.weight: \(3, 16\) saved, \(10, 16\) rebuilt") as info:
        model.save_pretrained(tmp_path / "saved")
    assert isinstance(info.value, ValueError) and "from_pretrained can rebuild it" in info.value.hint
    assert not (tmp_path / "saved").exists()


def test_varargs_fall_back_to_hparams_or_are_refused(tmp_path):
    class Star(PretrainedMixin, L.LightningModule):
        def __init__(self, *sizes: int, num_classes: int = 10):
            super().__init__()
            self.net = TinyNet(num_classes=num_classes)

    with pytest.raises(SaveError, match=r"\*sizes positional arguments"):
        Star(1, 2, num_classes=3).save_pretrained(tmp_path / "star")

    class StarHP(Star):
        def __init__(self, *sizes: int, num_classes: int = 10):
            super().__init__(*sizes, num_classes=num_classes)
            self.save_hyperparameters()

    model = StarHP(1, 2, num_classes=3)
    out = model.save_pretrained(tmp_path / "star-hp")
    assert json.loads((out / "config.json").read_text())["num_classes"] == 3


def fit_checkpoint(module: L.LightningModule, tmp_path) -> str:
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path)
    data = torch.utils.data.TensorDataset(torch.randn(4, 3, 8, 8), torch.randint(0, 4, (4,)))
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=4))
    path = tmp_path / "epoch=3.ckpt"
    trainer.save_checkpoint(path)
    return path


class Trainable(PretrainedMixin, L.LightningModule):
    def __init__(self, num_classes: int = 10, lr: float = 0.1):
        super().__init__()
        self.save_hyperparameters()
        self.net = TinyNet(num_classes=num_classes, width=32)  # the head is a small share of the model

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def test_a_trainer_checkpoint_gives_its_hyper_parameters_and_explicit_arguments_override(tmp_path):
    torch.manual_seed(0)
    source = Trainable(num_classes=4, lr=0.05)
    ckpt = fit_checkpoint(source, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainedWeightsReplacedWarning)
        model = Trainable.from_pretrained(ckpt)
    assert model.net.fc.out_features == 4 and model.hparams.lr == 0.05
    assert same_weights(model.net, source.net)
    assert model.weightport_report.reinitialized == []
    assert model.weightport_report.init == {"num_classes": {"value": 4, "from": "checkpoint hyper_parameters"},
                                            "lr": {"value": 0.05, "from": "checkpoint hyper_parameters"}}
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainedWeightsReplacedWarning)  # asked for: no warning
        other = Trainable.from_pretrained(ckpt, num_classes=3)
    assert other.net.fc.out_features == 3
    assert other.weightport_report.init["num_classes"] == {"value": 3, "from": "argument"}
    assert other.weightport_report.init["lr"]["from"] == "checkpoint hyper_parameters"
    assert {r.key for r in other.weightport_report.reinitialized} == {"net.fc.weight", "net.fc.bias"}


def test_a_trainer_checkpoint_is_read_once_for_its_hyper_parameters_and_its_weights(tmp_path, monkeypatch):
    from weightport.loading import source_io

    torch.manual_seed(0)
    source = Trainable(num_classes=4, lr=0.05)
    ckpt = fit_checkpoint(source, tmp_path)
    reads: list[object] = []
    real = source_io.read_checkpoint  # what every read of a source goes through
    monkeypatch.setattr(source_io, "read_checkpoint", lambda path, options: reads.append(path) or real(path, options))
    model = Trainable.from_pretrained(ckpt)
    assert len(reads) == 1 and model.net.fc.out_features == 4 and same_weights(model.net, source.net)
    timings = model.weightport_report.timings
    assert timings["init_config"] > 0 and timings["total"] >= timings["init_config"] + timings["read"]
    Trainable.from_pretrained(ckpt)  # each call reads for itself: nothing is kept between calls
    assert len(reads) == 2


class Keeper(PretrainedMixin, L.LightningModule):
    """An __init__ that changes the hyper-parameters it is given, in place."""

    def __init__(self, num_classes: int = 10, sizes: list | None = None):
        super().__init__()
        self.save_hyperparameters()
        if sizes is not None:
            sizes.append(99)
        self.net = TinyNet(num_classes=num_classes, width=8)


def test_an_init_that_changes_its_hyper_parameters_leaves_the_checkpoints_values_as_read(tmp_path):
    ckpt = tmp_path / "k.ckpt"
    state = {f"net.{k}": v for k, v in TinyNet(num_classes=3, width=8).state_dict().items()}
    torch.save({"state_dict": state, "epoch": 1, "global_step": 2, "pytorch-lightning_version": "2.6.0",
                "hyper_parameters": {"num_classes": 3, "sizes": [1, 2]}}, ckpt)
    model = Keeper.from_pretrained(ckpt)
    assert model.weightport_report.init["sizes"] == {"value": [1, 2, 99], "from": "checkpoint hyper_parameters"}
    meta = model.weightport_report.source.meta["checkpoint"]
    assert meta["hyper_parameters"]["sizes"] == [1, 2]  # what the file holds, not what __init__ made of it


class RunConfig:
    """A class the checkpoint's hyper-parameters hold; weightport keeps it as a placeholder."""

    def __init__(self, depth: int) -> None:
        self.depth = depth


class Configured(PretrainedMixin, L.LightningModule):
    def __init__(self, num_classes: int = 10, run: object = None):
        super().__init__()
        self.run = run
        self.net = TinyNet(num_classes=num_classes, width=8)


def test_a_placeholder_among_the_hyper_parameters_never_reaches_init(tmp_path):
    ckpt = tmp_path / "c.ckpt"
    state = {f"net.{k}": v for k, v in TinyNet(num_classes=3, width=8).state_dict().items()}
    torch.save({"state_dict": state, "epoch": 1, "global_step": 2, "pytorch-lightning_version": "2.6.0",
                "hyper_parameters": {"num_classes": 3, "run": RunConfig(4)}}, ckpt)
    model = Configured.from_pretrained(ckpt)
    assert model.run is None and model.net.fc.out_features == 3
    assert model.weightport_report.init["num_classes"]["from"] == "checkpoint hyper_parameters"
    assert any("not used: run" in note for note in model.weightport_report.notes)


def test_a_file_changed_between_two_reads_is_read_again(tmp_path):
    from weightport.formats import ReadOptions
    from weightport.loading.source_io import one_read_per_file, read_file

    path = tmp_path / "w.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with one_read_per_file():
        first = read_file(path, ReadOptions())
        assert read_file(path, ReadOptions()) is first
        assert read_file(path, ReadOptions(mmap=False)) is not first  # other read options: its own read
        torch.save({"w": torch.ones(2)}, path)
        again = read_file(path, ReadOptions())
        assert again is not first and torch.equal(again.obj["w"], torch.ones(2))
    assert read_file(path, ReadOptions()) is not again  # outside the block every read is its own


def test_re_initialising_a_trained_head_unasked_warns_and_the_seed_recipe_does_not(tmp_path):
    torch.manual_seed(0)
    ckpt = fit_checkpoint(Trainable(num_classes=4), tmp_path)
    with pytest.warns(TrainedWeightsReplacedWarning, match="trained net.fc.{weight,bias}|trained net.fc.{bias,weight}"):
        report = Trainable(num_classes=10).load_pretrained(ckpt)
    assert {r.key for r in report.reinitialized} == {"net.fc.weight", "net.fc.bias"}
    assert all(r.replaced for r in report.reinitialized)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainedWeightsReplacedWarning)
        Trainable(num_classes=10).load_pretrained(ckpt, reinit=["net.fc"])  # on purpose
        seed = save(TinyNet(num_classes=1000, width=32).state_dict(), tmp_path / "imagenet.safetensors")
        seeded = Trainable.from_pretrained(seed, num_classes=5)  # the seed recipe: quiet, and reported
    assert "head: 1000 classes in the checkpoint, 5 in the model" in str(seeded.weightport_report)


def test_options_are_one_definition_shared_by_both_methods():
    params = inspect.signature(LitNet.from_pretrained).parameters
    defaults = {f: getattr(LoadOptions(), f) for f in NAMED_OPTIONS}
    assert {n: params[n].default for n in NAMED_OPTIONS} == defaults
    assert list(params)[:3] == ["source", "num_classes", "width"] and "load_options" in params
    lp = inspect.signature(LitNet.load_pretrained).parameters
    assert {n: lp[n].default for n in NAMED_OPTIONS} == defaults and "load_options" in lp


def test_a_misspelt_option_is_named_as_such(tmp_path):
    path = save(TinyNet().state_dict(), tmp_path / "w.safetensors")
    with pytest.raises(InvalidOptionError, match="'stirct' is not a weightport option nor an argument of "
                                                 "LitNet.__init__; did you mean 'strict'"):
        LitNet.from_pretrained(path, stirct=False)
    with pytest.raises(InvalidOptionError, match="'match' is not a weightport option that from_pretrained takes "
                                                 "by name") as info:
        LitNet.from_pretrained(path, match="exact")
    hint = info.value.hint  # followed as written
    assert hint == "write load_options={'match': 'exact'}"
    followed = eval(f"dict({hint.removeprefix('write ')})")
    assert LitNet.from_pretrained(path, **followed).weightport_report.loaded
    with pytest.raises(InvalidOptionError, match="did you mean 'num_classes'"):
        LitNet.from_pretrained(path, num_clases=3)
    with pytest.raises(InvalidOptionError, match="did you mean 'strict'"):
        LitNet().load_pretrained(path, stirct=False)
    assert LitNet.from_pretrained(path, load_options={"match": "exact"}).weightport_report.loaded


class Lenient(PretrainedMixin, L.LightningModule):
    def __init__(self):
        super().__init__()
        self.strict_loading = False
        self.net = TinyNet()
        self.extra = nn.Linear(2, 2)


def test_strict_loading_decides_when_strict_is_not_given(tmp_path):
    path = save(TinyNet().state_dict(), tmp_path / "w.safetensors")
    model = Lenient.from_pretrained(path)
    assert model.weightport_report.missing == ["extra.weight", "extra.bias"]
    assert not model.weightport_report.strict
    assert Lenient().load_pretrained(path).missing == ["extra.weight", "extra.bias"]
    with pytest.raises(UsageError, match="strict=True conflicts with Lenient.strict_loading=False"):
        Lenient.from_pretrained(path, strict=True)
    with pytest.raises(UsageError, match="conflicts"):
        Lenient().load_pretrained(path, load_options={"strict": True})
    assert Lenient.from_pretrained(path, strict=False).weightport_report.missing == ["extra.weight", "extra.bias"]
