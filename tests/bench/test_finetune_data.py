"""Data modules: digits upsampled to the model's input, ImageFolder trees, dataset strings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from weightport.errors import SourceNotFoundError, UsageError
from weightport_bench.finetune.data import DataSpec, DigitsDataModule, ImageFolderDataModule, build_datamodule


def test_digits_become_normalised_rgb_images_of_the_model_size() -> None:
    dm = DigitsDataModule(DataSpec(image_size=40, batch_size=8, augmentation="none"))
    dm.setup("fit")
    dm.normalise_with((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    images, _ = next(iter(dm.val_dataloader()))
    assert images.shape == (8, 3, 40, 40) and dm.num_classes == 10
    assert torch.equal(images[:, 0], images[:, 1])  # grey repeated to three channels
    assert images.min() == pytest.approx(-2.0, abs=0.05)  # background 0 -> (0 - 0.5) / 0.25
    assert dm.train_images + dm.val_images == 1797 and dm.val_images == 359


def test_digits_split_and_subsets_do_not_depend_on_the_run_seed() -> None:
    def first_labels() -> list[int]:
        dm = DigitsDataModule(DataSpec(image_size=8, batch_size=16, train_size=50, val_size=20))
        dm.setup()
        return next(iter(dm.val_dataloader()))[1].tolist()

    torch.manual_seed(1)
    a = first_labels()
    torch.manual_seed(2)
    assert first_labels() == a


def test_image_folder_tree_is_split_and_resized(tmp_path: Path) -> None:
    from PIL import Image

    for cls, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(5):
            Image.new("RGB", (20, 12), colour).save(tmp_path / cls / f"{i}.png")
    dm = build_datamodule(str(tmp_path), DataSpec(image_size=16, batch_size=4, augmentation="none"))
    assert isinstance(dm, ImageFolderDataModule)
    dm.setup()
    images, _ = next(iter(dm.train_dataloader()))
    assert dm.num_classes == 2 and images.shape[1:] == (3, 16, 16)
    assert dm.train_images == 8 and dm.val_images == 2


def test_bad_dataset_strings_say_what_exists(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown dataset 'imagenet'"):
        build_datamodule("imagenet", DataSpec())
    with pytest.raises(SourceNotFoundError, match="image folder not found"):
        build_datamodule(f"folder:{tmp_path / 'missing'}", DataSpec()).setup()
