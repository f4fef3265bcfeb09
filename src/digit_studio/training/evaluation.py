"""Classifier evaluation: batched prediction, per-class metrics, confusion matrix, calibration."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from digit_studio import resources
from digit_studio.config import DataConfig
from digit_studio.training.data import Split, load_mnist
from digit_studio.training.plots import plot_confusion, plot_digit_grid, plot_reliability


@torch.inference_mode()
def predict(
    model: nn.Module, split: Split, batch_size: int, device: torch.device | str = "cpu",
    probabilities: bool = True,
) -> torch.Tensor:
    """Logits (or softmax probabilities) for every image of `split`, on the CPU."""
    model.eval()
    outputs = []
    for start in range(0, len(split), batch_size):
        images, _ = split.batch(slice(start, start + batch_size))
        logits = model(images.to(device)).float().cpu()
        outputs.append(logits.softmax(1) if probabilities else logits)
    return torch.cat(outputs)


@dataclass
class Calibration:
    ece: float
    bin_confidence: np.ndarray  # mean confidence per bin (NaN where empty)
    bin_accuracy: np.ndarray
    bin_count: np.ndarray
    edges: np.ndarray


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> Calibration:
    """Expected calibration error over equal-width confidence bins (Guo et al., 2017)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        conf = np.bincount(which, weights=confidence, minlength=bins) / count
        acc = np.bincount(which, weights=correct.astype(float), minlength=bins) / count
    ece = float(np.nansum(np.abs(acc - conf) * count) / len(confidence))
    return Calibration(ece, conf, acc, count, edges)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int = 10) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    return np.bincount(labels * classes + predictions, minlength=classes * classes).reshape(classes, classes)


def per_class_report(confusion: np.ndarray) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per class, plus their macro averages."""
    tp = np.diag(confusion).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num(tp / confusion.sum(0))
        recall = np.nan_to_num(tp / confusion.sum(1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    report = {
        str(c): {"precision": precision[c], "recall": recall[c], "f1": f1[c], "support": int(confusion[c].sum())}
        for c in range(len(confusion))
    }
    report["macro"] = {
        "precision": precision.mean(), "recall": recall.mean(), "f1": f1.mean(), "support": int(confusion.sum())
    }
    return {k: {m: float(v) if m != "support" else v for m, v in row.items()} for k, row in report.items()}


def report_markdown(report: dict[str, dict[str, float]], accuracy: float, ece: float) -> str:
    lines = [
        f"Accuracy: {accuracy:.4%} · expected calibration error: {ece:.4f}",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name, row in report.items():
        lines.append(
            f"| {name} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} | {row['support']} |"
        )
    return "\n".join(lines) + "\n"


def evaluate_checkpoint(
    checkpoint: str | Path, data: DataConfig, results_dir: str | Path, batch_size: int = 1000,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Score a classifier checkpoint on the full MNIST test set and write the report and pictures."""
    from digit_studio.models.classifier import load_classifier

    model, _ = load_classifier(checkpoint, device)
    test = load_mnist(data, train=False)
    probs = predict(model, test, batch_size, device)
    confidence, predicted = (t.numpy() for t in probs.max(1))
    labels = test.labels.numpy()
    correct = predicted == labels
    confusion = confusion_matrix(labels, predicted)
    report = per_class_report(confusion)
    calib = calibration(confidence, correct)
    accuracy = float(correct.mean())

    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = {
        "checkpoint": resources.shown(checkpoint), "test_images": len(labels), "accuracy": accuracy,
        "errors": int((~correct).sum()), "ece": calib.ece, "per_class": report,
    }
    (out / "evaluation.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "evaluation.md").write_text(report_markdown(report, accuracy, calib.ece))
    plot_confusion(confusion, out / "confusion_matrix.png", f"MNIST test confusion ({accuracy:.2%} correct)")
    plot_reliability(calib, out / "reliability.png")

    images = test.images.float().div(255).numpy()
    first = np.arange(40)
    plot_digit_grid(
        images[first], [f"{predicted[i]} (true {labels[i]})" for i in first],
        Path(results_dir).parent / "test_predictions.png", "Test digits: predicted (true)",
        colors=["black" if correct[i] else "red" for i in first],
    )
    mistakes = np.flatnonzero(~correct)
    worst = mistakes[np.argsort(-confidence[mistakes])][:40]
    plot_digit_grid(
        images[worst], [f"{predicted[i]} {confidence[i]:.0%} (true {labels[i]})" for i in worst],
        out / "confident_mistakes.png", "Most confident mistakes: predicted, confidence (true)",
        colors=["red"] * len(worst),
    )
    return metrics
