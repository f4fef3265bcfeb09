"""Classifier training: cross-entropy on MNIST, digits redrawn in other styles and real handwriting, with
batched augmentation, through the shared loop (loop.py); reproducible from one seed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from digit_studio.config import ClassifierConfig
from digit_studio.models.classifier import DigitCNN, count_parameters
from digit_studio.runtime import resolve_device, seed_everything
from digit_studio.training.augment import augment, reshaped_copies
from digit_studio.training.data import Split, load_mnist, load_splits
from digit_studio.training.evaluation import predict
from digit_studio.training.loop import fit, save_run
from digit_studio.training.plots import plot_training_curves
from digit_studio.training.realdigits import real_splits
from digit_studio.training.styles import styled_copies
from digit_studio.training.touching import touching_copies

# NHWC runs this network's convolutions and pooling about 1.5x faster on the CPU than NCHW.
CHANNELS_LAST = torch.channels_last


def evaluate_split(
    model: nn.Module, split: Split, batch_size: int, device: torch.device
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` on `split`."""
    logits = predict(model, split, batch_size, device, probabilities=False)
    loss = F.cross_entropy(logits, split.labels).item()
    accuracy = (logits.argmax(1) == split.labels).float().mean().item()
    return loss, accuracy


def training_data(config: ClassifierConfig, generator: torch.Generator) -> tuple[Split, Split, Split | None]:
    """(train, MNIST validation, real-handwriting validation or None): MNIST's training digits, copies of
    some in styles MNIST lacks (styles.py), and the trainable real handwriting, `real.repeat` times."""
    train, val = load_splits(config.data)
    parts = [(train.images, train.labels)]
    if config.augment.styled:
        parts.append(styled_copies(train.images, train.labels, config.augment.styled, generator))
    if config.augment.reshaped:
        pool = [torch.cat(column) for column in zip(*parts)]  # MNIST's digits and the styled copies
        parts.append(reshaped_copies(*pool, config.augment.reshaped, generator))
    if config.augment.touching:
        parts.append(touching_copies(train.images, train.labels, config.augment.touching, generator))
    real_val = None
    if config.real.repeat:
        real_train, real_val = real_splits(config.data, config.real)
        parts += [(real_train.images, real_train.labels)] * config.real.repeat
    images, labels = zip(*parts)
    return Split(torch.cat(images), torch.cat(labels)), val, real_val


@dataclass
class ClassifierTask:
    """Cross-entropy on augmented training digits; the best epoch reads the most validation digits right,
    MNIST's and the real ones together."""

    train: Split
    config: ClassifierConfig
    device: torch.device
    val: Split | None = None
    real_val: Split | None = None

    @property
    def size(self) -> int:
        return len(self.train)

    def step(self, model: nn.Module, index: torch.Tensor, generator: torch.Generator,
             step: int) -> tuple[torch.Tensor, dict[str, float]]:
        images, labels = self.train.batch(index)
        images = augment(images, self.config.augment, generator).to(self.device, memory_format=CHANNELS_LAST)
        labels = labels.to(self.device)
        logits = model(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.config.training.label_smoothing)
        return loss, {"accuracy": (logits.argmax(1) == labels).float().mean().item()}

    def evaluate(self, model: nn.Module, epoch: int) -> tuple[float, dict[str, Any]]:
        assert self.val is not None, "a task without validation digits trains but cannot be evaluated"
        batch = self.config.training.eval_batch_size
        val_loss, val_accuracy = evaluate_split(model, self.val, batch, self.device)
        real = evaluate_split(model, self.real_val, batch, self.device)[1] if self.real_val else None
        counted = len(self.val) + len(self.real_val or [])
        score = (val_accuracy * len(self.val) + (real or 0.0) * len(self.real_val or [])) / counted
        return score, {"val_loss": val_loss, "val_accuracy": val_accuracy, "val_real_accuracy": real}


def train_classifier(
    config: ClassifierConfig, resume: str | Path | None = None, write_outputs: bool = True
) -> dict[str, Any]:
    """Train, keep the best-validation weights, score them on the test set and write checkpoint,
    metrics and curves. Returns the metrics dict."""
    generator = seed_everything(config.seed)
    device = resolve_device(config.device)
    train, val, real_val = training_data(config, generator)
    test = load_mnist(config.data, train=False)
    model = DigitCNN(config.model).to(device, memory_format=CHANNELS_LAST)
    run = fit(model, ClassifierTask(train, config, device, val, real_val), config, generator, resume,
              write_resume=write_outputs)
    test_loss, test_acc = evaluate_split(model, test, config.training.eval_batch_size, device)
    metrics: dict[str, Any] = {
        "val_accuracy": run.best.get("val_accuracy"),
        "val_real_accuracy": run.best.get("val_real_accuracy"),
        "best_epoch": run.best_epoch,
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "parameters": count_parameters(model),
        "train_seconds": round(run.train_seconds, 1),
        "device": str(device),
        "checkpoint": config.output.checkpoint,
        "torch_threads": torch.get_num_threads(),
        "history": run.history,
    }
    if write_outputs:
        results = save_run(config, model, "classifier", metrics)
        plot_training_curves(run.history, run.step_losses, results / "training_curves.png")
    metrics["step_losses"] = run.step_losses
    return metrics
