"""Datasets for the fine-tune benchmark, as LightningDataModules.

- ``digits``: scikit-learn's bundled handwritten digits (8x8 grey, 1797 images, no download),
  upsampled to the model's input size and repeated to three channels.
- ``folder:/path`` (or a plain directory): any torchvision ``ImageFolder`` tree
  (``root/train/<class>/*.png`` and ``root/val/<class>/*.png``, or one tree split here).
- ``torchvision:CIFAR10`` (any torchvision dataset class taking ``train=`` and ``download=``):
  downloaded by torchvision on the user's machine when it can reach the internet.

Every module normalises with the weight source's mean/std, so a source is judged on the inputs it
was trained with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2

from weightport.errors import MissingDependencyError, SourceNotFoundError, UsageError

#: ImageNet statistics, used when neither the source nor the architecture states its own.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DataSpec:
    """What every data module needs besides the dataset itself.

    Attributes:
        image_size: Side of the square model input, in pixels.
        batch_size: Images per batch on each device.
        mean: Per-channel mean the source's weights were trained with.
        std: Per-channel std the source's weights were trained with.
        augmentation: A name from :data:`AUGMENTATIONS`, used on training images only.
        train_size: Training images to use (``None``: all).
        val_size: Validation images to use (``None``: all).
        num_workers: DataLoader worker processes.
        split_seed: Seed of the train/val split, fixed so every run sees the same images.
    """

    image_size: int = 64
    batch_size: int = 32
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    augmentation: str = "affine"
    train_size: int | None = None
    val_size: int | None = None
    num_workers: int = 0
    split_seed: int = 0


#: Training-time augmentations by name; each takes the image size and returns a tensor transform.
AUGMENTATIONS: dict[str, Callable[[int], Callable[[torch.Tensor], torch.Tensor]]] = {
    "none": lambda size: v2.Identity(),
    # Digits must not be flipped; small shifts and rotations are what handwriting varies by.
    "affine": lambda size: v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
    "flip-crop": lambda size: v2.Compose(
        [v2.RandomResizedCrop(size, scale=(0.6, 1.0), antialias=True), v2.RandomHorizontalFlip()]
    ),
}


def _augmentation(name: str, size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    if name not in AUGMENTATIONS:
        raise UsageError(f"unknown augmentation {name!r}", hint=f"choose from {sorted(AUGMENTATIONS)}")
    return AUGMENTATIONS[name](size)


def _three_channels(image: torch.Tensor) -> torch.Tensor:
    """Grey images become RGB by repetition (a module-level function so loaders can pickle it)."""
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image


class TransformedDataset(Dataset):
    """A dataset of ``(float image tensor in [0, 1], label)`` with a transform applied on access."""

    def __init__(self, base: Dataset, transform: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.base = base
        self.transform = transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.base[index]
        return self.transform(image), int(label)


class _SplitDataModule(L.LightningDataModule):
    """Shared DataLoader plumbing: subclasses provide ``_load() -> (train, val, num_classes)``."""

    def __init__(self, spec: DataSpec) -> None:
        super().__init__()
        self.spec = spec
        self.num_classes: int | None = None
        self.train_raw: Dataset | None = None
        self.val_raw: Dataset | None = None

    def _load(self) -> tuple[Dataset, Dataset, int]:
        raise NotImplementedError

    def _to_model_input(self) -> Callable[[torch.Tensor], torch.Tensor]:
        s = self.spec
        return v2.Compose(
            [
                v2.Resize((s.image_size, s.image_size), antialias=True),
                v2.Lambda(_three_channels),
                v2.Normalize(list(s.mean), list(s.std)),
            ]
        )

    def setup(self, stage: str | None = None) -> None:
        """Load the images once (idempotent: Lightning calls it again on every rank)."""
        if self.train_raw is not None:
            return
        train, val, self.num_classes = self._load()
        self.train_raw = self._limit(train, self.spec.train_size)
        self.val_raw = self._limit(val, self.spec.val_size)

    def normalise_with(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        """Use the weight source's statistics (known only once the model is built)."""
        self.spec = dataclasses.replace(self.spec, mean=tuple(mean), std=tuple(std))

    def _limit(self, dataset: Dataset, size: int | None) -> Dataset:
        n = len(dataset)  # type: ignore[arg-type]
        if size is None or size >= n:
            return dataset
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.spec.split_seed + 1))
        return Subset(dataset, order[:size].tolist())

    def _loader(self, dataset: Dataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise UsageError("the data module was used before setup()", hint="call setup('fit') first")
        # Transforms are built here, not in setup(), so they use the statistics set after setup.
        to_input = self._to_model_input()
        if train:
            to_input = v2.Compose([to_input, _augmentation(self.spec.augmentation, self.spec.image_size)])
        return DataLoader(
            TransformedDataset(dataset, to_input),
            batch_size=self.spec.batch_size,
            shuffle=train,
            num_workers=self.spec.num_workers,
            persistent_workers=self.spec.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_raw, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_raw, train=False)

    @property
    def train_images(self) -> int:
        """Number of training images (after ``setup``)."""
        return len(self.train_raw) if self.train_raw is not None else 0  # type: ignore[arg-type]

    @property
    def val_images(self) -> int:
        """Number of validation images (after ``setup``)."""
        return len(self.val_raw) if self.val_raw is not None else 0  # type: ignore[arg-type]


class DigitsDataModule(_SplitDataModule):
    """scikit-learn's bundled handwritten digits: 10 classes, 1797 images, split 80/20 here."""

    val_fraction = 0.2

    def _load(self) -> tuple[Dataset, Dataset, int]:
        try:
            from sklearn.datasets import load_digits
        except ImportError as exc:
            raise MissingDependencyError(
                "the digits dataset needs scikit-learn", hint="pip install scikit-learn"
            ) from exc
        digits = load_digits()
        # Pixel values are 0..16 with 16 = ink; keep ink bright on a dark background.
        images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        labels = torch.tensor(digits.target, dtype=torch.long)
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.spec.split_seed))
        n_val = int(len(labels) * self.val_fraction)
        val_idx, train_idx = order[:n_val], order[n_val:]
        train = torch.utils.data.TensorDataset(images[train_idx], labels[train_idx])
        val = torch.utils.data.TensorDataset(images[val_idx], labels[val_idx])
        return train, val, 10


class ImageFolderDataModule(_SplitDataModule):
    """A torchvision ``ImageFolder`` tree: ``root/{train,val}/<class>/…`` or one tree split 80/20."""

    def __init__(self, spec: DataSpec, root: str | Path) -> None:
        super().__init__(spec)
        self.root = Path(root).expanduser()

    def _load(self) -> tuple[Dataset, Dataset, int]:
        from torchvision.datasets import ImageFolder

        if not self.root.is_dir():
            raise SourceNotFoundError(
                f"image folder not found: {self.root}", hint="pass a directory laid out as root/<class>/<image>"
            )
        to_tensor = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
        if (self.root / "train").is_dir() and (self.root / "val").is_dir():
            train = ImageFolder(str(self.root / "train"), transform=to_tensor)
            val = ImageFolder(str(self.root / "val"), transform=to_tensor)
            return train, val, len(train.classes)
        full = ImageFolder(str(self.root), transform=to_tensor)
        order = torch.randperm(len(full), generator=torch.Generator().manual_seed(self.spec.split_seed))
        n_val = max(1, len(full) // 5)
        return Subset(full, order[n_val:].tolist()), Subset(full, order[:n_val].tolist()), len(full.classes)


class TorchvisionDataModule(_SplitDataModule):
    """A torchvision dataset by class name (``CIFAR10``, ``MNIST``, …), downloaded on first use."""

    def __init__(self, spec: DataSpec, name: str, root: str | Path = "~/.cache/weightport/datasets") -> None:
        super().__init__(spec)
        self.dataset_name = name
        self.root = Path(root).expanduser()

    def prepare_data(self) -> None:
        # Ranks started as separate processes may all get here: a file lock makes one download
        # and the others find the files in place.
        from filelock import FileLock

        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root / f".{self.dataset_name}.lock")):
            for train in (True, False):
                self._dataset(train, download=True)

    def _dataset(self, train: bool, download: bool) -> Any:
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.dataset_name, None)
        if cls is None:
            raise UsageError(
                f"torchvision has no dataset {self.dataset_name!r}", hint="use a class name from torchvision.datasets"
            )
        to_tensor = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
        return cls(str(self.root), train=train, download=download, transform=to_tensor)

    def _load(self) -> tuple[Dataset, Dataset, int]:
        train = self._dataset(True, download=False)
        classes = getattr(train, "classes", None)
        num_classes = len(classes) if classes else int(max(int(t) for t in train.targets)) + 1
        return train, self._dataset(False, download=False), num_classes


#: Dataset spec prefixes → data module factories (``spec, rest-of-string``).
DATASETS: dict[str, Callable[[DataSpec, str], _SplitDataModule]] = {
    "digits": lambda spec, rest: DigitsDataModule(spec),
    "folder": lambda spec, rest: ImageFolderDataModule(spec, rest),
    "torchvision": lambda spec, rest: TorchvisionDataModule(spec, rest),
}


def build_datamodule(dataset: str, spec: DataSpec) -> _SplitDataModule:
    """The data module a dataset string names: ``digits``, ``folder:/path``, a directory, ``torchvision:CIFAR10``.

    Raises:
        UsageError: A dataset string no entry of :data:`DATASETS` understands.
    """
    prefix, _, rest = dataset.partition(":")
    if prefix in DATASETS:
        return DATASETS[prefix](spec, rest)
    if Path(dataset).expanduser().is_dir():
        return ImageFolderDataModule(spec, dataset)
    raise UsageError(
        f"unknown dataset {dataset!r}",
        hint=f"use one of {sorted(DATASETS)} (as 'folder:/path', 'torchvision:CIFAR10') or a directory",
    )
