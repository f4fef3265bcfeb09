"""Explanation maps as pictures: heat maps over digits and over a whole drawing (arrays; the figure files
that show them are drawn by training/explanation_figures.py).

Images follow MNIST's convention (ink intensity in [0, 1], 1 = ink; uint8 is read as /255) and are shown
as grey ink on white paper. A map's colour is blended in proportionally to its value, so unimportant
regions keep showing the paper and the strokes.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F

from digit_studio.errors import DigitStudioError
from digit_studio.explain.base import Explanation

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) in drawing pixels, x1 and y1 exclusive


def _array(values: torch.Tensor | np.ndarray) -> np.ndarray:
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    return array / 255.0 if array.dtype == np.uint8 else array.astype(np.float64)


INK_SHADE = 0.6  # strokes drawn mid-grey rather than black, so that the colour on them stays visible


def blend(ink: np.ndarray, heat: np.ndarray, cmap: str = "jet", alpha: float = 0.7) -> np.ndarray:
    """RGB (..., 3) floats in [0, 1]: ink drawn grey on white, `heat` (same shape, in [0, 1]) coloured."""
    paper = np.repeat((1.0 - INK_SHADE * np.clip(ink, 0, 1))[..., None], 3, axis=-1)
    weight = alpha * np.clip(heat, 0, 1)[..., None]
    return paper * (1 - weight) + matplotlib.colormaps[cmap](heat)[..., :3] * weight


def heat_overlay(
    images: torch.Tensor | np.ndarray, maps: torch.Tensor | np.ndarray, cmap: str = "jet", alpha: float = 0.7
) -> np.ndarray:
    """(B, 28, 28, 3) RGB overlays of maps (B, 28, 28) on their digits ((B, 1, 28, 28) or (B, 28, 28))."""
    ink, heat = _array(images), _array(maps)
    ink = ink[:, 0] if ink.ndim == 4 else ink
    if ink.shape != heat.shape:
        raise DigitStudioError(f"images {ink.shape} and maps {heat.shape} must have the same (B, H, W) shape")
    return blend(ink, heat, cmap, alpha)


def drawing_overlay(
    drawing: torch.Tensor | np.ndarray, boxes: Sequence[Box], maps: torch.Tensor | np.ndarray,
    cmap: str = "jet", alpha: float = 0.7,
) -> np.ndarray:
    """(H, W, 3) RGB overlay of every digit's map placed back on the whole drawing (H, W).

    Each box is the drawing region that the digit's 28×28 crop was resampled from; its map is resized
    to the box. Where boxes overlap, the larger value wins."""
    ink, heat_maps = _array(drawing), _array(maps)
    if ink.ndim != 2:
        raise DigitStudioError(f"drawing must be an (H, W) array, got shape {ink.shape}")
    if len(boxes) != len(heat_maps):
        raise DigitStudioError(f"{len(boxes)} boxes for {len(heat_maps)} maps; give one box per digit")
    height, width = ink.shape
    heat = np.zeros_like(ink)
    for box, digit_map in zip(boxes, heat_maps):
        x0, y0, x1, y1 = (int(v) for v in box)
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise DigitStudioError(f"box {tuple(box)} is empty or outside the {width}×{height} drawing")
        resized = F.interpolate(
            torch.from_numpy(digit_map)[None, None], size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False
        )[0, 0].numpy()
        heat[y0:y1, x0:x1] = np.maximum(heat[y0:y1, x0:x1], resized)
    return blend(ink, heat, cmap, alpha)


def faithfulness_caption(explanation: Explanation, index: int) -> str:
    """'del .12 (rand .45) · ins .80 (.50)' for one digit, or '' without scores."""
    f = explanation.faithfulness
    if f is None:
        return ""
    return (
        f"del {f.deletion_auc[index]:.2f} ({f.random_deletion_auc[index]:.2f})\n"
        f"ins {f.insertion_auc[index]:.2f} ({f.random_insertion_auc[index]:.2f})"
    )
