"""Reader: the typed result, input coordinates, the sketchpad's value, MNIST-style crops, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from digit_studio.reading.crops import (
    BOX,
    MNIST_STROKE,
    NORM,
    SIZE,
    _morph_step,
    dilate,
    erode,
    mnist_crops,
    squeezed,
    stroke_width,
)
from digit_studio.reading.inputs import InputError
from digit_studio.reading.reader import EMPTY, UNCERTAIN_BELOW, NarrowLook, Reader, Reading
from digit_studio.training.data import Split
from digit_studio.training.synth import Style, draw_number, pick_digits, render_digit

CLASSIFIER_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "classifier.safetensors"


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader.from_checkpoint(CLASSIFIER_CHECKPOINT)


@pytest.fixture(scope="module")
def drawing(mnist_test: Split):
    rng = np.random.default_rng(3)
    return draw_number("4096", pick_digits(mnist_test, "4096", rng), rng, Style(canvas=(800, 400)))


def test_reading_is_typed_and_complete(reader: Reader, drawing) -> None:
    reading = reader.read(drawing.image)
    assert isinstance(reading, Reading) and reading.text == "4096" and reading.message is None
    for symbol, box in zip(reading.symbols, drawing.boxes):
        assert symbol.is_digit and symbol.line == 0
        assert symbol.top3[0] == (symbol.label, symbol.confidence)
        probabilities = [p for _, p in symbol.top3]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-6
        assert len({label for label, _ in symbol.top3}) == 3
        assert symbol.crop.shape == (SIZE, SIZE) and symbol.crop.dtype == np.float32
        assert 0 <= symbol.crop.min() and symbol.crop.max() <= 1 and symbol.crop.max() > 0.9
        assert np.abs(np.subtract(symbol.box, box)).max() <= 2  # the box drawn, in the input's pixels
        assert symbol.uncertain == (symbol.confidence < UNCERTAIN_BELOW or symbol.unlike)
    assert reading.uncertain == any(s.uncertain for s in reading.symbols)
    as_dict = reading.to_dict()
    assert as_dict["text"] == "4096" and [d["label"] for d in as_dict["digits"]] == list("4096")
    assert as_dict["digits"][0]["box"] == list(reading.symbols[0].box)


def test_the_sketchpad_value_and_a_large_copy_read_the_same(reader: Reader, drawing) -> None:
    assert reader.read(drawing.sketchpad_value()).text == "4096"
    large = reader.read(drawing.image.repeat(3, axis=0).repeat(3, axis=1))  # 2400×1200: shrunk to read
    assert large.text == "4096"
    for symbol, box in zip(large.symbols, drawing.boxes):
        assert np.abs(np.subtract(symbol.box, np.multiply(box, 3))).max() <= 6


def test_two_lines_and_line_indices(reader: Reader, mnist_test: Split) -> None:
    rng = np.random.default_rng(5)  # (seed 4 draws a 7 that reads as 21 as much as 7)
    drawn = draw_number("27\n315", pick_digits(mnist_test, "27315", rng), rng, Style(canvas=(800, 600)))
    reading = reader.read(drawn.image)
    assert reading.text == "27\n315"
    assert [s.line for s in reading.symbols] == [0, 0, 1, 1, 1]


@pytest.mark.parametrize(
    "image",
    [
        np.full((300, 400, 3), 255, np.uint8),  # empty canvas
        np.zeros((300, 400), np.uint8),  # all ink (or an empty dark canvas: no contrast either way)
        np.zeros((1, 1, 3), np.uint8),
        np.full((200, 200), np.nan),
        {"background": None, "layers": [], "composite": None},
    ],
    ids=["empty", "all-ink", "1x1", "nan", "empty-sketchpad"],
)
def test_nothing_to_read_says_draw_a_number(reader: Reader, image) -> None:
    if isinstance(image, np.ndarray) and np.isnan(image).all():
        with pytest.raises(InputError):
            reader.read(image)
        return
    reading = reader.read(image)
    assert (reading.text, reading.symbols, reading.message) == ("", (), EMPTY) and reading.uncertain


def test_huge_and_messy_inputs_get_an_answer(reader: Reader, drawing) -> None:
    largest = np.full((4096, 4096), 255, np.uint8)  # limits.MAX_PIXELS: read, shrunk
    largest[1000:3000, 48:4048] = drawing.image[..., 0].repeat(5, axis=0).repeat(5, axis=1)
    assert reader.read(largest).text == "4096"
    with pytest.raises(InputError, match="10000×10000 pixels, too large to read: send a PNG"):
        reader.read(np.full((10_000, 10_000), 255, np.uint8))
    rng = np.random.default_rng(0)
    specks = np.full((600, 800), 255, np.uint8)
    for y, x in zip(rng.integers(0, 590, 500), rng.integers(0, 790, 500)):
        specks[y : y + 8, x : x + 8] = 0
    messy = reader.read(specks)
    assert messy.text == "" and messy.message.startswith("Too messy")


def test_a_file_that_is_no_image_is_refused(reader: Reader, tmp_path: Path) -> None:
    (tmp_path / "drawing.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(InputError, match="drawing.png"):
        reader.read(tmp_path / "drawing.png")


def test_morphology_is_max_pooling(mnist_test: Split) -> None:
    """The fast 3×3 steps equal max_pool2d, which the shipped classifier's augmentation was trained with."""
    x, _ = mnist_test.batch(torch.arange(8))
    square = F.max_pool2d(x, 3, stride=1, padding=1)
    cross = torch.maximum(F.max_pool2d(x, (1, 3), 1, (0, 1)), F.max_pool2d(x, (3, 1), 1, (1, 0)))
    assert torch.equal(_morph_step(x, 0), square) and torch.equal(_morph_step(x, 1), cross)
    assert torch.equal(dilate(x, 2), torch.maximum(F.max_pool2d(square, (1, 3), 1, (0, 1)), F.max_pool2d(square, (3, 1), 1, (1, 0))))
    assert torch.equal(erode(x), -F.max_pool2d(-x, 3, stride=1, padding=1))


def test_mnist_stroke_width_matches_the_data(mnist_test: Split) -> None:
    x, _ = mnist_test.batch(torch.arange(500))
    up = F.interpolate(x, scale_factor=NORM / BOX, mode="bilinear", align_corners=False) > 0.5
    assert abs(float(stroke_width(up.float()).median()) - MNIST_STROKE) < 0.4


@pytest.mark.parametrize("brush", [4.0, 15.0, 30.0])
def test_crops_look_like_mnist_whatever_the_brush(mnist_test: Split, brush: float) -> None:
    """An MNIST digit drawn 150 px tall with a fine or thick brush comes back close to itself: fitted in
    20×20, centred by mass, strokes as wide as MNIST's."""
    index = torch.arange(12)
    originals, _ = mnist_test.batch(index)
    masks = [render_digit(mnist_test.images[i].numpy(), 150.0, brush) for i in index.tolist()]
    crops = mnist_crops(masks)
    assert crops.shape == (len(index), 1, SIZE, SIZE)
    ink = crops[:, 0] > 0.1
    rows, cols = ink.any(2), ink.any(1)
    assert int((rows.sum(1).max())) <= BOX + 1 and int(cols.sum(1).max()) <= BOX + 1
    mass = crops[:, 0].sum((1, 2))
    cy = (crops[:, 0].sum(2) * torch.arange(SIZE)).sum(1) / mass
    cx = (crops[:, 0].sum(1) * torch.arange(SIZE)).sum(1) / mass
    assert (cy - 13.5).abs().max() <= 1 and (cx - 13.5).abs().max() <= 1
    ratio = crops.sum((1, 2, 3)) / originals.sum((1, 2, 3))  # as much ink as MNIST: the stroke width
    assert 0.7 < float(ratio.median()) < 1.4
    similarity = F.cosine_similarity(crops.flatten(1), originals.flatten(1))
    assert float(similarity.median()) > 0.75


def test_a_chosen_wide_piece_is_also_read_squeezed(reader: Reader, mnist_test: Split) -> None:
    """The pieces the reader chose are read as `classify` reads them and, where a piece is about as wide as tall
    (NarrowLook.above), also squeezed (to NarrowLook.to), the two probabilities averaged; a narrower piece is
    read once, and the crop returned is always the piece's own."""
    look = NarrowLook()
    assert reader.narrow == look
    narrow = render_digit(mnist_test.images[2].numpy(), 150.0, 12.0)  # a 1, 53 px wide
    wide = np.repeat(render_digit(mnist_test.images[0].numpy(), 150.0, 12.0), 2, axis=1)  # a 7, twice as wide
    assert narrow.shape[1] < look.above * narrow.shape[0] and wide.shape[1] >= look.above * wide.shape[0]
    thin = squeezed(wide, look.to)
    assert thin.shape == (wide.shape[0], round(look.to * wide.shape[0])) and thin.any()
    crops, plain, _ = reader.classify([narrow, wide])
    returned, probs, _ = reader.read_pieces([narrow, wide])
    with torch.inference_mode():
        second = reader.model(mnist_crops([thin])).softmax(1)[0]
    assert torch.equal(returned, crops)
    assert torch.allclose(probs[0], plain[0], atol=1e-6)
    assert torch.allclose(probs[1], (plain[1] + second) / 2, atol=1e-6)
    assert not torch.allclose(probs[1], plain[1], atol=1e-3)


@pytest.mark.parametrize("seed", [2, 4, 6, 12])
def test_the_vae_splits_touching_digits_the_classifier_reads_as_one(reader: Reader, mnist_test: Split,
                                                                    seed: int) -> None:
    """Three MNIST test digits, two pairs drawn touching: the classifier alone reads a pair as one digit,
    confidently; the VAE's atypicality of the pair makes the reader split it."""
    rng = np.random.default_rng(seed)
    text = "".join(map(str, rng.integers(0, 10, 3)))
    drawing = draw_number(text, pick_digits(mnist_test, text, rng), rng, Style(touching=2))
    assert reader.vae is not None and reader.read(drawing.image).text == text
    assert len(Reader(reader.model).read(drawing.image).text) < len(text)
