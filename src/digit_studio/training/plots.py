"""Pictures written to results/: training curves, digit grids, confusion matrix, reliability diagram."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # scripts and servers have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig: plt.Figure, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_training_curves(history: Sequence[Any], step_losses: Sequence[float], path: str | Path) -> None:
    """Step losses (with a moving average) and per-epoch train/validation accuracy."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    steps = np.arange(1, len(step_losses) + 1)
    ax_loss.plot(steps, step_losses, color="0.8", lw=0.6, label="step")
    window = max(1, len(step_losses) // 50)
    if len(step_losses) >= window:
        smooth = np.convolve(step_losses, np.ones(window) / window, mode="valid")
        ax_loss.plot(steps[window - 1 :], smooth, color="C0", label=f"mean of {window}")
    ax_loss.set(xlabel="step", ylabel="training loss", yscale="log", title="Loss")
    ax_loss.legend()
    epochs = [r["epoch"] for r in history]
    ax_acc.plot(epochs, [r["train_accuracy"] for r in history], "o-", label="train (augmented)")
    ax_acc.plot(epochs, [r["val_accuracy"] for r in history], "o-", label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    ax_acc.grid(alpha=0.3)
    ax_acc.legend()
    _save(fig, path)


def plot_digit_grid(
    images: np.ndarray, captions: Sequence[str], path: str | Path, title: str,
    colors: Sequence[str] | None = None, columns: int = 10,
) -> None:
    """(N, 28, 28) images in a grid, each with a caption (coloured, e.g. red for a mistake)."""
    rows = max(1, int(np.ceil(len(images) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.3), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(captions[i], fontsize=8, color=colors[i] if colors else "black")
    fig.suptitle(title)
    _save(fig, path)


def plot_confusion(confusion: np.ndarray, path: str | Path, title: str) -> None:
    """Counts on a log colour scale, so that the few mistakes stay visible beside the diagonal."""
    from matplotlib.colors import LogNorm

    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(confusion + 1, cmap="Blues", norm=LogNorm())
    for (r, c), n in np.ndenumerate(confusion):
        if n:
            ax.text(c, r, str(n), ha="center", va="center", fontsize=7,
                    color="white" if r == c else "black")
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(image, ax=ax, label="count + 1")
    _save(fig, path)


def plot_reliability(calibration: Any, path: str | Path) -> None:
    """Accuracy against confidence per bin, with the bins' sizes below."""
    fig, (ax, ax_count) = plt.subplots(
        2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    centres = (calibration.edges[:-1] + calibration.edges[1:]) / 2
    width = calibration.edges[1] - calibration.edges[0]
    filled = calibration.bin_count > 0
    ax.bar(centres[filled], calibration.bin_accuracy[filled], width=width * 0.9, label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set(ylabel="accuracy", title=f"Reliability (ECE {calibration.ece:.4f})")
    ax.legend(loc="upper left")
    ax_count.bar(centres, calibration.bin_count, width=width * 0.9, color="0.5")
    ax_count.set(xlabel="confidence", ylabel="digits", yscale="log")
    _save(fig, path)
