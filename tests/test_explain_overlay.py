"""Pictures of explanations: heat overlays on digits and on a whole drawing, figure files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digit_studio.errors import DigitStudioError
from digit_studio.explain import explain
from digit_studio.explain.overlay import INK_SHADE, drawing_overlay, heat_overlay
from digit_studio.training.data import Split
from digit_studio.training.evaluation import predict
from digit_studio.training.explanation_figures import (
    plot_drawing_explanation,
    plot_explanations,
    plot_misclassified_explanations,
)


def test_heat_overlay_colours_only_where_the_map_is_hot(mnist_test):
    images, _ = mnist_test.batch(slice(0, 3))
    maps = torch.zeros(3, 28, 28)
    maps[:, 10:14, 10:14] = 1.0
    rgb = heat_overlay(images, maps)
    assert rgb.shape == (3, 28, 28, 3) and rgb.min() >= 0 and rgb.max() <= 1
    paper = 1 - INK_SHADE * images[:, 0].numpy()
    cold = maps.numpy() == 0
    assert np.allclose(rgb[cold], np.repeat(paper[cold][:, None], 3, axis=1))
    hot = rgb[~cold]
    assert (hot.max(1) - hot.min(1)).min() > 0.2  # coloured, not grey


def test_drawing_overlay_places_each_map_at_its_box():
    drawing = np.zeros((40, 100))
    drawing[10:30, 10:30] = drawing[5:35, 60:90] = 0.8
    boxes = [(10, 10, 30, 30), (60, 5, 90, 35)]
    maps = np.zeros((2, 28, 28))
    maps[0, :7, :7] = 1.0  # top-left corner of the first digit
    maps[1, 21:, 21:] = 1.0  # bottom-right corner of the second
    rgb = drawing_overlay(drawing, boxes, maps)
    assert rgb.shape == (40, 100, 3)
    coloured = (rgb.max(-1) - rgb.min(-1)) > 0.05
    ys, xs = coloured.nonzero()
    first, second = xs < 50, xs >= 50
    assert xs[first].min() >= 10 and xs[first].max() < 20 and ys[first].min() >= 10 and ys[first].max() < 20
    assert xs[second].min() >= 75 and xs[second].max() < 90 and ys[second].min() >= 20 and ys[second].max() < 35
    uint8 = drawing_overlay((drawing * 255).astype(np.uint8), boxes, maps)
    assert np.allclose(uint8, rgb, atol=1e-2)


@pytest.mark.parametrize(
    "drawing, boxes, message",
    [
        (np.zeros((3, 40, 40)), [(0, 0, 10, 10)], "(H, W)"),
        (np.zeros((40, 40)), [(0, 0, 10, 10), (10, 0, 20, 10)], "one box per digit"),
        (np.zeros((40, 40)), [(30, 0, 50, 10)], "outside"),
        (np.zeros((40, 40)), [(10, 10, 10, 20)], "empty"),
    ],
)
def test_drawing_overlay_rejects_bad_boxes(drawing, boxes, message):
    with pytest.raises(DigitStudioError, match=message.replace("(", r"\(").replace(")", r"\)")):
        drawing_overlay(drawing, boxes, np.zeros((1, 28, 28)))


def test_figures_are_written(classifier, mnist_test, tmp_path):
    images, _ = mnist_test.batch(slice(0, 4))
    results = [explain(classifier, images, "gradcam"), explain(classifier, images, "gradcam", contrast="runner_up")]
    plot_explanations(images, results, ["gradcam", "why not runner-up"], tmp_path / "gallery.png")
    drawing = np.zeros((40, 130))
    boxes = [(2 + 32 * i, 6, 30 + 32 * i, 34) for i in range(4)]
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        drawing[y0:y1, x0:x1] = images[i, 0].numpy()
    plot_drawing_explanation(drawing, boxes, results[0], tmp_path / "drawing.png")
    assert (tmp_path / "gallery.png").stat().st_size > 10_000 and (tmp_path / "drawing.png").stat().st_size > 5_000


def test_misclassified_explanations(classifier, mnist_test, tmp_path):
    split = Split(mnist_test.images[:3000], mnist_test.labels[:3000])
    wrong = int((predict(classifier, split, 1000).argmax(1) != split.labels).sum())
    assert wrong > 0  # the shipped model makes a few mistakes on these digits
    assert plot_misclassified_explanations(classifier, split, tmp_path / "mistakes.png", limit=4) == wrong
    assert (tmp_path / "mistakes.png").stat().st_size > 10_000
