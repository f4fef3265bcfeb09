"""Real handwriting that is not MNIST, from the data root's `realdigits/` folder (see its README).

    digits = load_realdigits("optdigits-orig.tra", DataConfig())   # bitmaps (N, 32, 32) bool, labels (N,)

`optdigits-orig.tra` (30 writers) may be trained on; `optdigits-orig.windep` (13 other writers) and
`semeion.data` (about 80 writers) are for measuring only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from digit_studio.config import DataConfig, RealDataConfig
from digit_studio.errors import DataError
from digit_studio.reading.crops import mnist_crops
from digit_studio.training.data import DATA_ENV, Split, data_root

FOLDER = "realdigits"
TRAIN_FILE = "optdigits-orig.tra"
MEASURE_FILES = {"optdigits_windep": "optdigits-orig.windep", "semeion": "semeion.data"}
OPTDIGITS_HEADER = 21  # text lines before the first bitmap
OPTDIGITS_SIDE = 32
SEMEION_SIDE = 16


@dataclass(frozen=True)
class RealDigits:
    bitmaps: np.ndarray  # (N, side, side) bool, ink True
    labels: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)


def realdigits_path(name: str, config: DataConfig) -> Path:
    return data_root(config) / FOLDER / name


def load_realdigits(name: str, config: DataConfig) -> RealDigits:
    """One of the files above, parsed by its own format; DataError if it is missing or malformed."""
    path = realdigits_path(name, config)
    if not path.is_file():
        raise DataError(
            f"{name} not found under {path.parent}; set {DATA_ENV} to a folder holding {FOLDER}/ "
            "(the UCI optdigits and Semeion files, see shared/data/realdigits/README.md)"
        )
    try:
        text = path.read_text()
        return _semeion(text) if name.startswith("semeion") else _optdigits(text)
    except (ValueError, IndexError) as exc:
        raise DataError(f"{path} is not in the expected format ({exc})") from None


def _optdigits(text: str) -> RealDigits:
    """32 lines of 32 '0'/'1' characters, then a line holding the label, per digit."""
    lines = text.splitlines()[OPTDIGITS_HEADER:]
    block = OPTDIGITS_SIDE + 1
    count = len(lines) // block
    rows = np.array([[c == "1" for c in line.strip()] for k in range(count) for line in lines[k * block : k * block + 32]])
    labels = np.array([int(lines[k * block + 32]) for k in range(count)], np.int64)
    return RealDigits(rows.reshape(count, OPTDIGITS_SIDE, OPTDIGITS_SIDE), labels)


def _semeion(text: str) -> RealDigits:
    """One digit a line: 256 pixel values (16×16, 1 = ink), then the one-hot label."""
    values = np.array([line.split() for line in text.splitlines() if line.strip()], np.float32)
    side = SEMEION_SIDE
    return RealDigits(values[:, : side * side].reshape(-1, side, side) > 0.5, values[:, side * side :].argmax(1))


def real_splits(data: DataConfig, real: RealDataConfig) -> tuple[Split, Split]:
    """The trainable real handwriting as MNIST-style 28×28 digits, cropped exactly as the reader crops a
    symbol, cut into (train, validation): the last `val_size` digits are kept back. The file's digits come
    in no writer order, so its validation digits share writers with training; the writer-independent
    figures are the benchmark's, on the measuring files."""
    digits = load_realdigits(real.file, data)
    if not 0 < real.val_size < len(digits):
        raise DataError(f"real.val_size must be between 1 and {len(digits) - 1}, got {real.val_size}")
    images = (mnist_crops(list(digits.bitmaps))[:, 0] * 255).round().to(torch.uint8)
    labels = torch.from_numpy(digits.labels)
    cut = len(digits) - real.val_size
    return Split(images[:cut], labels[:cut]), Split(images[cut:], labels[cut:])
