"""Draw the studio's example numbers from MNIST test digits, in the sketchpad's style, and save them here.

    DIGIT_STUDIO_DATA=... python examples/make_examples.py

Each number is drawn with a fixed seed; drawings that the shipped reader does not read exactly are redrawn
with other test digits, so that every example shows the studio working as intended. The PNGs are committed:
the app needs no MNIST at run time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from digit_studio.cli import run_script
from digit_studio.config import DataConfig
from digit_studio.errors import DataError
from digit_studio.reading.reader import Reader
from digit_studio.training.synth import Style, draw_number, pick_digits
from digit_studio.training.data import load_mnist

HERE = Path(__file__).resolve().parent
NUMBERS = ("1984", "305", "27.5", "86420", "314159")
STYLE = Style(canvas=(800, 400), digit_height=(150.0, 190.0), brush=(0.09, 0.11), gap=(0.3, 0.5))
TRIES = 20


def main() -> None:
    test = load_mnist(DataConfig(download=False), train=False)
    reader = Reader.from_checkpoint()
    for number in NUMBERS:
        rng = np.random.default_rng(0)
        for _ in range(TRIES):
            drawing = draw_number(number, pick_digits(test, number, rng), rng, STYLE)
            reading = reader.read(drawing.image)
            if reading.text == number and not reading.uncertain:
                break
        else:
            raise DataError(f"no drawing of {number} in {TRIES} tries was read right; change the style or seed")
        path = HERE / f"{number.replace('.', '_')}.png"
        Image.fromarray(drawing.image).save(path, optimize=True)
        print(f"{path.name}: read {reading.text!r}")


if __name__ == "__main__":
    run_script(main)
