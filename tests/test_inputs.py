"""Every input form the reader accepts becomes the same ink mask; what is no image is refused clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digit_studio.reading.inputs import MAX_SIDE, InputError, ink_map

H, W = 120, 200


@pytest.fixture(scope="module")
def ink() -> np.ndarray:
    """A drawing's ink: two thick strokes and a ring, True where drawn."""
    yy, xx = np.mgrid[:H, :W]
    mask = (np.abs(xx - 40) < 6) & (yy > 20) & (yy < 100)
    mask |= (np.abs(yy - 60) < 5) & (xx > 70) & (xx < 110)
    mask |= np.abs(np.hypot(yy - 60, xx - 155) - 30) < 6
    return mask


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def paint(ink: np.ndarray, background, stroke) -> np.ndarray:
    return np.where(ink[..., None], np.array(stroke, np.uint8), np.array(background, np.uint8))


def assert_same(found, ink: np.ndarray) -> None:
    assert found.scale == 1 and found.size == (W, H)
    assert iou(found.mask, ink) > 0.98


@pytest.mark.parametrize(
    "make",
    [
        lambda ink: np.where(ink, 0, 255).astype(np.uint8),  # H×W uint8, black on white
        lambda ink: np.where(ink, 0.0, 1.0),  # H×W float in [0, 1]
        lambda ink: np.where(ink, 1.0, 0.0).astype(np.float32),  # MNIST-like: light ink on dark
        lambda ink: ink,  # bool
        lambda ink: np.where(ink, 10, 1000).astype(np.uint16),  # 16-bit levels
        lambda ink: paint(ink, (255, 255, 255), (0, 0, 0)),  # H×W×3
        lambda ink: paint(ink, (255, 255, 255, 255), (20, 20, 200, 255)),  # H×W×4 opaque, blue ink
        lambda ink: paint(ink, (0, 0, 0, 0), (0, 0, 0, 255)),  # RGBA layer, transparent background
        lambda ink: paint(ink, (0x33, 0x33, 0x33), (0, 0, 0)),  # dark mode composite: black on #333333
        lambda ink: paint(ink, (0x33, 0x33, 0x33), (255, 255, 255)),  # chalkboard: white on dark
    ],
    ids=["uint8", "float01", "light-on-dark", "bool", "uint16", "rgb", "rgba-opaque", "rgba-layer", "dark-mode", "chalk"],
)
def test_arrays(make, ink: np.ndarray) -> None:
    assert_same(ink_map(make(ink)), ink)


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA", "I;16", "F", "CMYK"])
def test_pil_modes(mode: str, ink: np.ndarray) -> None:
    image = Image.fromarray(np.where(ink, 0, 255).astype(np.uint8)).convert(mode)
    assert_same(ink_map(image), ink)


def test_files_by_str_and_path(tmp_path: Path, ink: np.ndarray) -> None:
    for name in ("drawing.png", "drawing.jpg", "drawing.webp"):
        Image.fromarray(np.where(ink, 0, 255).astype(np.uint8)).save(tmp_path / name)
        assert_same(ink_map(tmp_path / name), ink)
        assert_same(ink_map(str(tmp_path / name)), ink)


def sketchpad(ink: np.ndarray, background: tuple[int, ...], stroke: tuple[int, ...]) -> dict:
    layer = paint(ink, (0, 0, 0, 0), (*stroke, 255))
    canvas = np.full((H, W, 4), 255, np.uint8)
    canvas[..., :3] = background
    composite = np.where(ink[..., None], layer, canvas)
    return {"background": canvas, "layers": [layer], "composite": composite}


@pytest.mark.parametrize("background, stroke", [((255, 255, 255), (0, 0, 0)), ((0x33, 0x33, 0x33), (0, 0, 0))])
def test_sketchpad_value_uses_the_layers(background, stroke, ink: np.ndarray) -> None:
    value = sketchpad(ink, background, stroke)
    assert_same(ink_map(value), ink)
    # Dark mode with black strokes: the layers' alpha is what tells ink from background.
    value["composite"] = np.full((H, W, 4), (*background, 255), np.uint8)  # even a composite without ink
    assert_same(ink_map(value), ink)


def test_sketchpad_strokes_on_several_layers_and_pil_layers(ink: np.ndarray) -> None:
    top, bottom = ink.copy(), ink.copy()
    top[H // 2 :], bottom[: H // 2] = False, False
    layers = [Image.fromarray(paint(part, (0, 0, 0, 0), (0, 0, 0, 255)), "RGBA") for part in (top, bottom)]
    assert_same(ink_map({"background": None, "layers": layers, "composite": None}), ink)


def test_sketchpad_without_layers_reads_the_composite_or_background(ink: np.ndarray) -> None:
    drawn = np.where(ink, 0, 255).astype(np.uint8)
    assert_same(ink_map({"background": None, "layers": [], "composite": drawn}), ink)
    assert_same(ink_map({"background": drawn, "layers": None, "composite": None}), ink)


@pytest.mark.parametrize(
    "value",
    [
        {"background": None, "layers": [], "composite": None},
        {"background": None, "layers": None, "composite": None},
        {"background": np.full((H, W, 4), 255, np.uint8), "layers": [np.zeros((H, W, 4), np.uint8)], "composite": None},
        {},
        None,
        "",
        np.zeros((0, 0, 3), np.uint8),
    ],
    ids=["empty", "nones", "blank-layer", "no-keys", "none", "empty-path", "zero-size"],
)
def test_empty_values_have_no_ink(value) -> None:
    assert not ink_map(value).mask.any()


def test_photographed_page_in_uneven_light(ink: np.ndarray) -> None:
    """Grey paper lit from one corner (bright 230 to dim 110), pencil a third darker than the paper around it."""
    yy, xx = np.mgrid[:H, :W]
    paper = 110 + 120 * (1 - (xx / W + yy / H) / 2)
    rng = np.random.default_rng(0)
    photo = np.where(ink, 0.65 * paper, paper) + rng.normal(0, 4, (H, W))
    found = ink_map(np.clip(photo, 0, 255).astype(np.uint8)[..., None].repeat(3, axis=2))
    assert iou(found.mask, ink) > 0.9
    # A single global threshold cannot do this: the dim paper is darker than the bright pencil.
    assert (0.65 * paper[ink]).max() > paper[~ink].min()


def test_large_images_are_shrunk(ink: np.ndarray) -> None:
    big = np.where(ink, 0, 255).astype(np.uint8).repeat(12, axis=0).repeat(12, axis=1)  # 2400×1440
    found = ink_map(big)
    assert max(found.mask.shape) <= MAX_SIDE and found.scale == 3 and found.size == (12 * W, 12 * H)
    assert found.to_input((10, 20, 30, 40)) == (30, 60, 90, 120)
    shrunk = ink.repeat(4, axis=0).repeat(4, axis=1)  # 12 / 3
    assert iou(found.mask, shrunk) > 0.85


def test_nan_pixels_read_as_background(ink: np.ndarray) -> None:
    image = np.where(ink, 0.0, 1.0)
    image[:10] = np.nan
    assert iou(ink_map(image).mask, ink) > 0.98
    with pytest.raises(InputError, match="no finite values"):
        ink_map(np.full((H, W), np.nan))


@pytest.mark.parametrize(
    "value, message",
    [
        (np.zeros((4, 4, 5)), "H×W or H×W×C"),
        (np.zeros((2, 2, 2, 2)), "H×W or H×W×C"),
        (np.array([["a", "b"]]), "must hold numbers"),
        (42, "cannot read a int"),
        ({"layers": "x"}, "must be a list"),
        ({"strokes": []}, "unexpected sketchpad keys"),
    ],
)
def test_what_is_no_image_is_refused(value, message: str) -> None:
    with pytest.raises(InputError, match=message):
        ink_map(value)


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(InputError, match="not an image file"):
        ink_map(tmp_path / "notes.png")
    with pytest.raises(InputError, match="no such file"):
        ink_map(tmp_path / "missing.png")
    with pytest.raises(InputError, match="not a file"):
        ink_map(tmp_path)
