"""The benchmark's drawings: each symbol's own ink is known, and touching pairs touch without fusing."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from digit_studio.training.data import Split
from digit_studio.training.synth import Style, draw_number, pick_digits


def test_symbol_masks_paint_the_drawing(mnist_test: Split) -> None:
    rng = np.random.default_rng(0)
    drawing = draw_number("31-4.15", pick_digits(mnist_test, "31-4.15", rng), rng)
    ink = np.zeros(drawing.image.shape[:2], bool)
    for (x0, y0, x1, y1), mask in zip(drawing.boxes, drawing.masks):
        assert mask.shape == (y1 - y0, x1 - x0) and mask.any()
        ink[y0:y1, x0:x1] |= mask
    assert np.array_equal(ink, drawing.image[..., 0] < 128)


def test_touching_pairs_touch_but_boxes_overlap_only_slightly(mnist_test: Split) -> None:
    style = Style(touching=1)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        drawing = draw_number("52", pick_digits(mnist_test, "52", rng), rng, style)
        (a, b) = drawing.boxes
        narrower = min(a[2] - a[0], b[2] - b[0])
        assert a[2] - b[0] <= round(style.box_overlap * narrower)
        if ndimage.label(drawing.image[..., 0] < 128, structure=np.ones((3, 3)))[1] == 1:
            return  # found a pair drawn touching
    raise AssertionError("no pair of 20 was drawn touching")
