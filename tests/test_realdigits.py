"""Real handwriting from the data root: both file formats parse, and a missing file says where to put it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from digit_studio.config import DataConfig, RealDataConfig
from digit_studio.errors import DataError
from digit_studio.training.data import DATA_ENV
from digit_studio.training.realdigits import MEASURE_FILES, TRAIN_FILE, load_realdigits, real_splits


@pytest.mark.parametrize("name, count, side", [(TRAIN_FILE, 1934, 32), (MEASURE_FILES["optdigits_windep"], 1797, 32),
                                               (MEASURE_FILES["semeion"], 1593, 16)])
def test_each_file_parses_into_bitmaps_and_labels(data_config: DataConfig, name: str, count: int, side: int) -> None:
    digits = load_realdigits(name, data_config)
    assert digits.bitmaps.shape == (count, side, side) and digits.bitmaps.dtype == bool
    assert sorted(set(digits.labels.tolist())) == list(range(10))
    assert 0.05 < digits.bitmaps.mean() < 0.6  # ink is the minority, but there is plenty of it


def test_a_missing_file_names_the_folder_and_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(DataError, match=f"realdigits.*{DATA_ENV}"):
        load_realdigits(TRAIN_FILE, DataConfig(download=False))


@pytest.mark.slow  # crops all 1,934 training digits (4 s); the parsing tests above cover the module fast
def test_training_digits_are_cropped_like_the_reader_crops(data_config: DataConfig) -> None:
    train, val = real_splits(data_config, RealDataConfig(repeat=1, val_size=100))
    assert len(train) == 1834 and len(val) == 100
    assert train.images.dtype == torch.uint8 and train.images.shape[1:] == (28, 28)
    ink = train.images > 127
    index = torch.arange(28)
    for axis in (1, 2):  # as in MNIST: the ink fits a 20×20 box, its centre of mass in the middle
        present = ink.any(3 - axis)
        extent = torch.where(present, index, -1).max(1).values - torch.where(present, index, 99).min(1).values + 1
        assert int(extent.max()) <= 20
        profile = train.images.float().sum(3 - axis)
        centre = (profile * index).sum(1) / profile.sum(1)
        assert float((centre - 13.5).abs().max()) <= 1.0
