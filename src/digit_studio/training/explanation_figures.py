"""Figure files of explanations (results/ and the README): digits with each method's map and its
faithfulness, a whole drawing with every digit's map, and misclassified test digits explained."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from digit_studio.explain import DEFAULT_LAYER, METHODS, Method, explain
from digit_studio.explain.base import Explanation
from digit_studio.explain.overlay import Box, drawing_overlay, faithfulness_caption, heat_overlay
from digit_studio.training.data import Split
from digit_studio.training.evaluation import predict
from digit_studio.training.plots import _save, plt


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


def compose_drawing(digits: torch.Tensor, size: int = 52, gap: int = 6) -> tuple[np.ndarray, list[Box]]:
    """A drawing of the digits side by side, each enlarged to size×size and shifted a little up or down,
    as a person writes a number; returns the drawing and each digit's box."""
    height, width = size + 16, len(digits) * (size + gap) + gap
    drawing = np.zeros((height, width))
    boxes: list[Box] = []
    for i, digit in enumerate(digits):
        x0, y0 = gap + i * (size + gap), 8 + (-5, 3, -2, 6, 0, -4)[i % 6]
        enlarged = F.interpolate(digit[None], size=(size, size), mode="bilinear", align_corners=False)[0, 0].numpy()
        drawing[y0 : y0 + size, x0 : x0 + size] = np.maximum(drawing[y0 : y0 + size, x0 : x0 + size], enlarged)
        boxes.append((x0, y0, x0 + size, y0 + size))
    return drawing.clip(0, 1), boxes


def write_explanation_figures(model: nn.Module, images: torch.Tensor, folder: Path) -> list[Path]:
    """The README's explanation pictures from test digits `images` (at least 16): explanations.png (8 digits
    × every method, and Grad-CAM of why not the runner-up) and explanations_drawing.png (6 digits as a
    drawing with their Grad-CAM maps)."""
    shown = images[:8]
    gallery = [explain(model, shown, name) for name in METHODS]
    gallery.append(explain(model, shown, "gradcam", contrast="runner_up"))
    paths = [folder / "explanations.png", folder / "explanations_drawing.png"]
    plot_explanations(shown, gallery, [*METHODS, "gradcam: why\nnot runner-up"], paths[0],
                      "Maps for the class read; del/ins AUC (random order's in brackets): low del, high ins = faithful")
    digits = images[10:16]
    drawing, boxes = compose_drawing(digits)
    plot_drawing_explanation(drawing, boxes, explain(model, digits, "gradcam"), paths[1],
                             f"Grad-CAM ({DEFAULT_LAYER}) of each digit, placed back on the drawing")
    return paths
