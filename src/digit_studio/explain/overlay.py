"""Pictures of explanations: heat maps over digits, over a whole drawing, and figure files.

Images follow MNIST's convention (ink intensity in [0, 1], 1 = ink; uint8 is read as /255) and are shown
as grey ink on white paper. A map's colour is blended in proportionally to its value, so unimportant
regions keep showing the paper and the strokes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digit_studio.data import Split
from digit_studio.errors import DigitStudioError
from digit_studio.evaluation import predict
from digit_studio.explain import Explanation, Method, explain
from digit_studio.plots import _save  # also selects matplotlib's Agg backend

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

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


def plot_explanations(
    images: torch.Tensor, explanations: Sequence[Explanation], titles: Sequence[str], path: str | Path,
    title: str = "", cmap: str = "jet",
) -> None:
    """One row per digit: the digit, then each explanation's overlay captioned with its faithfulness
    (deletion / insertion AUC, the random order's in brackets)."""
    rows, columns = len(images), len(explanations) + 1
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.55, rows * 1.75), squeeze=False)
    probabilities = explanations[0].probabilities
    for i in range(rows):
        axes[i, 0].imshow(1 - images[i, 0].cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_title(f"read {probabilities[i].argmax()} ({probabilities[i].max():.2f})", fontsize=8)
        for j, explanation in enumerate(explanations, start=1):
            axes[i, j].imshow(heat_overlay(images[i : i + 1], explanation.maps[i : i + 1], cmap)[0])
            axes[i, j].set_xlabel(faithfulness_caption(explanation, i), fontsize=6.5)
            if i == 0:
                axes[i, j].set_title(titles[j - 1], fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path)


def plot_drawing_explanation(
    drawing: np.ndarray, boxes: Sequence[Box], explanation: Explanation, path: str | Path, title: str = "",
    cmap: str = "jet",
) -> None:
    """The drawing with every digit's map on it, each box labelled with the reading and its faithfulness."""
    fig, ax = plt.subplots(figsize=(drawing.shape[1] / 40, drawing.shape[0] / 40 + 0.8))
    ax.imshow(drawing_overlay(drawing, boxes, explanation.maps, cmap))
    f = explanation.faithfulness
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=0.8, ec="0.4", ls="--"))
        label = f"{explanation.target[i]} ({explanation.probabilities[i].max():.2f})"
        if f is not None:
            label += f"\ndel {f.deletion_auc[i]:.2f} vs {f.random_deletion_auc[i]:.2f}"
        ax.text((x0 + x1) / 2, y1 + 2, label, ha="center", va="top", fontsize=7)
    ax.set_ylim(drawing.shape[0] + 24, -0.5)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    _save(fig, path)


def plot_misclassified_explanations(
    model: nn.Module, split: Split, path: str | Path, method: str | Method = "gradcam", limit: int = 12,
    batch_size: int = 1000, columns: int = 4, **options: object,
) -> int:
    """Misclassified digits of `split` (the first `limit`), each with the map for the class the model read
    and the map for the true class. Returns how many digits of the split are misclassified."""
    probabilities = predict(model, split, batch_size, next(model.parameters()).device)
    wrong = (probabilities.argmax(1) != split.labels).nonzero().flatten()
    shown = wrong[:limit]
    rows = max(1, -(-len(shown) // columns))
    fig, axes = plt.subplots(rows, 3 * columns, figsize=(3 * columns * 1.15, rows * 1.45), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    if len(shown):
        images, labels = split.batch(shown)
        read = explain(model, images, method, "predicted", faithfulness_steps=None, **options)
        truth = explain(model, images, method, labels, faithfulness_steps=None, **options)
        for k in range(len(shown)):
            row, col = divmod(k, columns)
            panels = (
                (1 - images[k, 0].numpy(),
                 f"true {labels[k]}, read {read.target[k]}\n(p={read.probabilities[k].max():.2f})"),
                (heat_overlay(images[k : k + 1], read.maps[k : k + 1])[0], f"why {read.target[k]}"),
                (heat_overlay(images[k : k + 1], truth.maps[k : k + 1])[0], f"why {labels[k]}?"),
            )
            for offset, (picture, caption) in enumerate(panels):
                ax = axes[row, 3 * col + offset]
                ax.imshow(picture, cmap="gray", vmin=0, vmax=1)
                ax.set_title(caption, fontsize=7, color="firebrick" if offset == 0 else "black")
    name = method if isinstance(method, str) else method.name
    fig.suptitle(
        f"{len(wrong)} misclassified of {len(split)}: {name} map for the class read and for the true class", fontsize=9
    )
    _save(fig, path)
    return len(wrong)
