"""Pictures of an analysis as uint8 RGB arrays, made with numpy and a matplotlib colormap (no figures): fast
enough to redraw after every stroke, and the same pictures the UI shows and the report saves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from digit_studio.explain.overlay import blend, drawing_overlay
from digit_studio.reading.two_readers import BOTH, CUTS, LINE
from digit_studio.studio.analysis import Analysis, DigitAnalysis, DigitExplanation

ZOOM = 4  # screen pixels per MNIST pixel in the galleries
LINE_ZOOM = 3  # screen pixels per line-image pixel: a line image is 32 px high
SPAN_PX = 2  # width of the outline of a symbol's frames, in screen pixels
DECIDED = {LINE: "line model decided", BOTH: "both agreed", CUTS: "cuts decided"}
GAP = 2  # MNIST pixels of paper between the digits of a strip
Picture = tuple[np.ndarray, str]  # (H, W, 3) uint8 RGB and its caption


@dataclass(frozen=True)
class Pictures:
    explanations: list[Picture]  # one per digit: its crop with the map over it
    overlay: np.ndarray | None  # every map placed back on the whole drawing
    variations: list[Picture]  # one strip per digit: the crop, then its variations
    line_views: list[Picture]  # one per digit the line model read: its map over the whole line image


def rgb(image: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] ((H, W) grey or (H, W, 3)) as uint8 RGB."""
    image = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image


def enlarge(image: np.ndarray, zoom: int = ZOOM) -> np.ndarray:
    """Nearest-neighbour upscaling: MNIST pixels stay crisp squares."""
    return image.repeat(zoom, axis=0).repeat(zoom, axis=1)


def strip(digits: Sequence[np.ndarray], zoom: int = ZOOM) -> np.ndarray:
    """(N, 28, 28) ink-light digits side by side as dark ink on white paper, uint8 RGB."""
    paper = np.ones((28, GAP), np.float32)
    row = [part for digit in digits for part in (1 - np.asarray(digit, np.float32), paper)][:-1]
    return enlarge(rgb(np.concatenate(row, axis=1)), zoom)


def faithfulness_text(faithfulness: dict[str, float]) -> str:
    """'del .21 (.45) · ins .80 (.52)': a map's deletion and insertion AUC, a random order's in brackets."""
    auc = {k: f"{v:.2f}".removeprefix("0") for k, v in faithfulness.items()}  # ".74": captions fit a thumbnail
    return (f"del {auc['deletion_auc']} ({auc['random_deletion_auc']}) · "
            f"ins {auc['insertion_auc']} ({auc['random_insertion_auc']})")


def explanation_caption(label: str, explanation: DigitExplanation, why_not: bool) -> str:
    head = f"why not {explanation.target}?" if why_not else f"why {label}"
    return f"{head} · {faithfulness_text(explanation.faithfulness)}"


def crop_region(digit: DigitAnalysis, scale: int) -> tuple[int, int, int, int]:
    """The working-resolution square that the digit's 28×28 crop covers: the crop's ink box is the
    symbol's box, so the crop's scale and offset follow from the two (up to stroke-width normalisation)."""
    x0, y0, x1, y1 = (v / scale for v in digit.symbol.box)
    ink = digit.symbol.crop > 0.05
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    size = max(x1 - x0, y1 - y0) / max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    left, top = x0 - cols[0] * size, y0 - rows[0] * size
    return round(left), round(top), round(left + 28 * size), round(top + 28 * size)


def drawing_with_maps(analysis: Analysis) -> np.ndarray | None:
    """Every digit's map placed back on the whole drawing (its crops reach past the drawing's edges, so
    the drawing is padded for the placement and cut back after)."""
    shown = [d for d in analysis.digits if d.explanation is not None]
    if not shown:
        return None
    regions = [crop_region(d, analysis.scale) for d in shown]
    h, w = analysis.ink.shape
    pad = max(0, *(-min(x0, y0) for x0, y0, _, _ in regions), *(max(x1 - w, y1 - h) for _, _, x1, y1 in regions))
    ink = np.pad(analysis.ink, pad)
    boxes = [(x0 + pad, y0 + pad, x1 + pad, y1 + pad) for x0, y0, x1, y1 in regions]
    overlay = drawing_overlay(ink, boxes, np.stack([d.explanation.map for d in shown]))
    return rgb(overlay[pad : pad + h, pad : pad + w])


def line_view_picture(analysis: Analysis, digit: DigitAnalysis) -> Picture:
    """The line image the line model read, dark ink on white, with the digit's map over it and the digit's
    frames outlined (frames × stride = line-image px)."""
    reading, view, symbol = analysis.reading.lines[digit.symbol.line], digit.line_view, digit.symbol
    image = enlarge(rgb(blend(reading.image.image.numpy(), view.map)), LINE_ZOOM)
    first, last = symbol.frames
    width = image.shape[1]
    x0 = min(round(first * reading.stride * LINE_ZOOM), width - SPAN_PX)
    x1 = max(min(round((last + 1) * reading.stride * LINE_ZOOM), width), x0 + SPAN_PX)
    for side in (image[:SPAN_PX, x0:x1], image[-SPAN_PX:, x0:x1], image[:, x0 : x0 + SPAN_PX],
                 image[:, x1 - SPAN_PX : x1]):
        side[:] = 0
    return image, f"{symbol.label} · {DECIDED[symbol.reader]} · {faithfulness_text(view.faithfulness)}"


def render(analysis: Analysis) -> Pictures:
    explanations = [
        (enlarge(rgb(blend(d.symbol.crop, d.explanation.map))),
         explanation_caption(d.symbol.label, d.explanation, analysis.why_not))
        for d in analysis.digits if d.explanation is not None
    ]
    varied = [
        (strip([d.symbol.crop, *d.variations]), f"{d.symbol.label}: as read, then {len(d.variations)} variations")
        for d in analysis.digits if len(d.variations)
    ]
    line_views = [line_view_picture(analysis, d) for d in analysis.digits if d.line_view is not None]
    return Pictures(explanations, drawing_with_maps(analysis), varied, line_views)
