"""MNIST from the configured root: shapes, labels, the fixed validation split, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from digit_studio.config import DataConfig
from digit_studio.errors import DataError
from digit_studio.training.data import DATA_ENV, Split, data_root, load_splits


def test_test_set(mnist_test: Split) -> None:
    assert mnist_test.images.shape == (10_000, 28, 28) and mnist_test.images.dtype == torch.uint8
    assert sorted(mnist_test.labels.unique().tolist()) == list(range(10))
    images, labels = mnist_test.batch(slice(0, 32))
    assert images.shape == (32, 1, 28, 28) and images.dtype == torch.float32
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.mean() < 0.2  # light ink on dark
    assert labels.tolist()[:3] == [7, 2, 1]  # the well-known first test digits


def test_validation_split_is_fixed_and_disjoint(data_config: DataConfig) -> None:
    train, val = load_splits(data_config)
    assert (len(train), len(val)) == (55_000, 5_000)
    train2, val2 = load_splits(data_config)
    assert torch.equal(val.images, val2.images) and torch.equal(train.labels, train2.labels)
    other = load_splits(DataConfig(download=False, split_seed=1))[1]
    assert not torch.equal(val.labels, other.labels)
    # No validation image also appears in the training part (compare exact pixel content).
    train_keys = {bytes(img.numpy()) for img in train.images[:55_000]}
    assert not any(bytes(img.numpy()) in train_keys for img in val.images[:500])
    assert torch.bincount(val.labels, minlength=10).min() > 350  # every class present


def test_environment_variable_wins_over_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert data_root(DataConfig(root="elsewhere")) == tmp_path
    monkeypatch.delenv(DATA_ENV)
    assert data_root(DataConfig(root="elsewhere")) == Path("elsewhere")


def test_missing_data_names_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "empty"))
    with pytest.raises(DataError, match=DATA_ENV) as info:
        load_splits(DataConfig(download=False))
    assert str(tmp_path / "empty") in str(info.value)


def test_bad_validation_size(data_config: DataConfig) -> None:
    with pytest.raises(DataError, match="val_size"):
        load_splits(DataConfig(download=False, val_size=60_000))
