"""Any image the reader may be given, turned into one normal form: a binary ink mask.

Accepted: the Gradio sketchpad's value (a dict of background, layers and composite, each possibly None),
numpy arrays (H×W, H×W×1..4; bool, integer or float, NaN allowed), PIL images of any mode, and file
paths. Ink is found on any background: the layers' alpha where the person drew on layers, the alpha
channel of a transparent image, a global threshold on a flat background (white paper, the sketchpad's
dark mode), and an adaptive one where the background varies (a photographed page in uneven light).
Very large images are shrunk first, so that time and memory stay bounded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps
from scipy import ndimage

from digit_studio import limits
from digit_studio.errors import InputError

MAX_SIDE = 1024  # longer side of the working image; larger inputs are shrunk by an integer factor
MIN_CONTRAST = 24  # grey levels between background and ink below which nothing counts as ink
FLAT = 0.6  # share of pixels within NEAR levels of the median that marks a flat (clean) background
NEAR = 12


@dataclass(frozen=True)
class InkMap:
    mask: np.ndarray  # (h, w) bool, ink True, at working resolution
    scale: int  # input pixels per working pixel (the same along both axes)
    size: tuple[int, int]  # (width, height) of the input

    def to_input(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A working-resolution box (x0, y0, x1, y1; end exclusive) in the input's pixels."""
        x0, y0, x1, y1 = (v * self.scale for v in box)
        w, h = self.size
        return min(x0, w), min(y0, h), min(x1, w), min(y1, h)


@dataclass(frozen=True)
class _Raster:
    colour: np.ndarray  # (h, w) grey or (h, w, 3) RGB, uint8
    alpha: np.ndarray | None  # (h, w) uint8, or None for an opaque image
    scale: int
    size: tuple[int, int]

    @cached_property
    def grey(self) -> np.ndarray:
        """(h, w) uint8, made only when asked for: the sketchpad's layers are read by their alpha alone."""
        return self.colour if self.colour.ndim == 2 else _luma(self.colour)


def ink_map(image: Any) -> InkMap:
    """The ink in `image` (see the module doc for what is accepted); InputError if it is no image."""
    if isinstance(image, Mapping):
        return _from_sketchpad(image)
    raster = _rasterise(image)
    if raster is None:
        return InkMap(np.zeros((1, 1), bool), 1, (1, 1))
    return _find_ink(raster)


def _from_sketchpad(value: Mapping) -> InkMap:
    """The sketchpad keeps strokes on transparent layers: their alpha is the drawing, whatever the
    background (white, or #333333 with black strokes in dark mode). Without strokes on layers, the
    composite (or background) is read as an image, e.g. an uploaded photograph."""
    unknown = set(value) - {"background", "layers", "composite"}
    if unknown:
        raise InputError(f"unexpected sketchpad keys {sorted(map(str, unknown))}; expected background, layers, composite")
    layers = value.get("layers") or []
    if not isinstance(layers, (list, tuple)):
        raise InputError(f"sketchpad 'layers' must be a list of images, got {type(layers).__name__}")
    limits.check_layers(len(layers))
    rasters = [r for r in map(_rasterise, layers) if r is not None and r.alpha is not None and r.alpha.any()]
    if rasters:
        if len({(r.size, r.scale) for r in rasters}) > 1:
            raise InputError("sketchpad layers differ in size; send layers of the canvas's size")
        alpha = np.maximum.reduce([r.alpha for r in rasters])
        return _threshold(alpha, 0, dark_ink=False, scale=rasters[0].scale, size=rasters[0].size)
    for key in ("composite", "background"):
        raster = _rasterise(value.get(key))
        if raster is not None:
            return _find_ink(raster)
    return InkMap(np.zeros((1, 1), bool), 1, (1, 1))


def _rasterise(image: Any) -> _Raster | None:
    """Grey (and alpha) uint8 planes at working resolution; None for an empty value."""
    if image is None:
        return None
    if isinstance(image, (str, os.PathLike)):
        if isinstance(image, str) and not image:
            return None
        return _from_pil(_open(Path(image)))
    if isinstance(image, Image.Image):
        return _from_pil(image)
    if isinstance(image, np.ndarray):
        return _from_array(image)
    raise InputError(
        f"cannot read a {type(image).__name__} as an image; give a file path, a numpy array, a PIL image "
        "or the sketchpad's value"
    )


def _open(path: Path) -> Image.Image:
    image = limits.open_image(path)
    try:
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced size, much faster
        image.load()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the image ({exc})") from None
    return ImageOps.exif_transpose(image)  # photographs are stored sideways more often than not


def _from_pil(image: Image.Image) -> _Raster | None:
    if image.width == 0 or image.height == 0:
        return None
    limits.check_size(image.width, image.height)
    size = image.size
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return _from_array(np.asarray(image), size)
    transparent = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    image = image.convert("LA" if transparent else "L")
    factor = _factor(image.size)
    if factor > 1:
        image = image.reduce(factor)
    planes = np.asarray(image)
    if transparent:
        return _Raster(planes[..., 0], planes[..., 1], factor, size)
    return _Raster(planes, None, factor, size)


def _factor(size: tuple[int, int]) -> int:
    return -(-max(size) // MAX_SIDE)


def _from_array(array: np.ndarray, size: tuple[int, int] | None = None) -> _Raster | None:
    if array.ndim == 3 and array.shape[2] in (1, 2, 3, 4):
        channels = array.shape[2]
    elif array.ndim == 2:
        array, channels = array[..., None], 1
    else:
        raise InputError(f"an image array must be H×W or H×W×C with C in 1..4, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        return None
    limits.check_size(array.shape[1], array.shape[0])
    if not (array.dtype == bool or np.issubdtype(array.dtype, np.number)) or np.iscomplexobj(array):
        raise InputError(f"an image array must hold numbers, got dtype {array.dtype}")
    size = size or (array.shape[1], array.shape[0])
    factor = _factor(size)
    if factor > 1:  # block means over factor×factor tiles, without a full-size float copy
        if min(array.shape[:2]) < factor:  # a thin strip: repeat its edge to fill one tile
            pad = [(0, max(factor - array.shape[0], 0)), (0, max(factor - array.shape[1], 0)), (0, 0)]
            array = np.pad(array, pad, mode="edge")
        h, w = array.shape[0] // factor * factor, array.shape[1] // factor * factor
        tiles = array[:h, :w].reshape(h // factor, factor, w // factor, factor, channels)
        array = tiles.mean(axis=(1, 3), dtype=np.float64 if array.dtype.kind == "f" else np.float32)
    planes = _to_uint8(array)
    colour = planes[..., 0] if channels <= 2 else planes[..., :3]
    alpha = planes[..., -1] if channels in (2, 4) else None
    return _Raster(colour, alpha, factor, size)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    """Bool and uint8 as they are; other numbers read as [0, 1] floats, 0–255 levels, or their own range."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    values = array.astype(np.float32)
    finite = np.isfinite(values)
    if not finite.all():
        if not finite.any():
            raise InputError("the image holds no finite values (all NaN or infinite)")
        values = np.where(finite, values, np.median(values[finite]))  # missing pixels read as background
    low, high = float(values.min()), float(values.max())
    if low >= 0 and high <= 1 and array.dtype.kind == "f":
        values = values * 255
    elif not (low >= 0 and high <= 255):
        values = (values - low) * (255 / max(high - low, 1e-12))
    return np.clip(values + 0.5, 0, 255).astype(np.uint8)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma in 8-bit fixed point (weights 77, 150, 29 of 256): twice as fast as floats."""
    luma = rgb[..., 0] * np.uint16(77)
    luma += rgb[..., 1] * np.uint16(150)
    luma += rgb[..., 2] * np.uint16(29)
    luma += np.uint16(128)
    return (luma >> 8).astype(np.uint8)


def _find_ink(raster: _Raster) -> InkMap:
    # A mostly transparent image (a layer, a drawing exported without background): ink is what is there.
    if raster.alpha is not None and np.median(raster.alpha) < 128:
        return _threshold(raster.alpha, 0, dark_ink=False, scale=raster.scale, size=raster.size)
    grey = raster.grey
    if raster.alpha is not None:  # mostly opaque: composite over white, so transparent holes read as paper
        alpha = raster.alpha.astype(np.uint16)
        grey = ((grey * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    hist = np.bincount(grey.ravel(), minlength=256)
    cumulative = np.cumsum(hist)
    median = int(np.searchsorted(cumulative, cumulative[-1] / 2))
    levels = np.arange(256)
    # Ink is the minority that differs most from the background, darker (paper) or lighter (chalkboard).
    dark_mass = (hist * np.clip(median - NEAR - levels, 0, None)).sum()
    light_mass = (hist * np.clip(levels - median - NEAR, 0, None)).sum()
    dark_ink = dark_mass >= light_mass
    flat = hist[max(median - NEAR, 0) : median + NEAR + 1].sum() >= FLAT * grey.size
    if flat:
        return _threshold(grey, median, dark_ink, raster.scale, raster.size)
    return _adaptive(grey, dark_ink, raster.scale, raster.size)


def _threshold(grey: np.ndarray, background: int, dark_ink: bool, scale: int, size: tuple[int, int]) -> InkMap:
    """Global threshold halfway between the background and the ink's robust extreme (the level beyond
    which 5% of the ink-side pixels lie)."""
    contrast = (background - grey.astype(np.int16)) if dark_ink else (grey.astype(np.int16) - background)
    ink_side = contrast[contrast > NEAR]
    if ink_side.size == 0:
        return InkMap(np.zeros(grey.shape, bool), scale, size)
    extreme = int(np.partition(ink_side, int(0.95 * (ink_side.size - 1)))[int(0.95 * (ink_side.size - 1))])
    if extreme < MIN_CONTRAST:
        return InkMap(np.zeros(grey.shape, bool), scale, size)
    return InkMap(contrast > extreme / 2, scale, size)


def _adaptive(grey: np.ndarray, dark_ink: bool, scale: int, size: tuple[int, int]) -> InkMap:
    """Uneven light: estimate the paper's brightness around each pixel (the local maximum over a window
    wider than any stroke, smoothed, on a 1/8-size image), divide it out, and threshold the relative
    contrast with Otsu's method."""
    shrink = max(1, min(grey.shape) // 96)
    h, w = grey.shape[0] // shrink * shrink, grey.shape[1] // shrink * shrink
    small = grey[:h, :w].reshape(h // shrink, shrink, w // shrink, shrink).mean(axis=(1, 3))
    window = max(3, min(small.shape) // 6)
    local = ndimage.maximum_filter(small, window) if dark_ink else ndimage.minimum_filter(small, window)
    local = ndimage.uniform_filter(local, window)
    zoom = (grey.shape[0] / local.shape[0], grey.shape[1] / local.shape[1])
    background = ndimage.zoom(local, zoom, order=1, grid_mode=True, mode="nearest")[: grey.shape[0], : grey.shape[1]]
    g = grey.astype(np.float32)
    if dark_ink:
        contrast = (background - g) / np.maximum(background, 1)
    else:
        contrast = (g - background) / np.maximum(255 - background, 1)
    levels = np.clip(contrast * 255, 0, 255).astype(np.uint8)
    threshold = max(_otsu(levels), MIN_CONTRAST * 2)  # relative contrast: at least ~20% darker than paper
    return InkMap(levels > threshold, scale, size)


def _otsu(levels: np.ndarray) -> int:
    """Otsu's threshold of a uint8 image: the level that maximises the between-class variance."""
    hist = np.bincount(levels.ravel(), minlength=256).astype(np.float64)
    weight = np.cumsum(hist)
    mean = np.cumsum(hist * np.arange(256))
    total_w, total_mean = weight[-1], mean[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mean * weight - mean * total_w) ** 2 / (weight * (total_w - weight))
    return int(np.nanargmax(np.nan_to_num(between, nan=-1)))
