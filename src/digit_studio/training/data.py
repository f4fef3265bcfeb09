"""MNIST as in-memory tensors, from a configurable root, with a fixed-seed validation split.

The whole data set fits in 55 MB, so batches are sliced from tensors instead of going through a
DataLoader: on a 2-core machine, worker processes cost more than they save.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.datasets import MNIST

from digit_studio.config import DataConfig
from digit_studio.errors import DataError

DATA_ENV = "DIGIT_STUDIO_DATA"


def data_root(config: DataConfig) -> Path:
    """$DIGIT_STUDIO_DATA wins over the config's data.root."""
    return Path(os.environ.get(DATA_ENV) or config.root)


@dataclass
class Split:
    images: torch.Tensor  # (N, 28, 28) uint8, ink light on dark
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, index: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Images as (B, 1, 28, 28) floats in [0, 1] and their labels."""
        return self.images[index].unsqueeze(1).float().div_(255), self.labels[index]


def load_mnist(config: DataConfig, train: bool) -> Split:
    root = data_root(config)
    which = "training" if train else "test"
    try:
        dataset = MNIST(str(root), train=train, download=config.download)
    except Exception as exc:  # torchvision raises RuntimeError, URLError or OSError depending on the failure
        raise DataError(
            f"MNIST {which} data not found under {root / 'MNIST' / 'raw'}"
            + (f" and the download failed ({exc})" if config.download else " (download is off)")
            + f"; set {DATA_ENV} to a folder holding MNIST/raw/ or allow data.download on a networked machine"
        ) from None
    return Split(dataset.data, dataset.targets)


def load_splits(config: DataConfig) -> tuple[Split, Split]:
    """Training set cut into (train, validation) by a fixed seed; the test set is loaded separately."""
    full = load_mnist(config, train=True)
    if not 0 < config.val_size < len(full):
        raise DataError(f"data.val_size must be between 1 and {len(full) - 1}, got {config.val_size}")
    order = torch.randperm(len(full), generator=torch.Generator().manual_seed(config.split_seed))
    val, train = order[: config.val_size], order[config.val_size :]
    if config.train_limit:
        train = train[: config.train_limit]
    return Split(full.images[train], full.labels[train]), Split(full.images[val], full.labels[val])
