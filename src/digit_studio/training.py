"""Classifier training: AdamW, one-cycle or cosine schedule, batched augmentation, best-epoch selection
on a validation split, resumable, and reproducible from one seed."""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from digit_studio.augment import augment, reshaped_copies
from digit_studio.checkpoint import save_checkpoint
from digit_studio.config import ClassifierConfig, VAEConfig, to_dict
from digit_studio.data import Split, load_mnist, load_splits
from digit_studio.errors import CheckpointError, ConfigError
from digit_studio.evaluation import predict
from digit_studio.models.classifier import DigitCNN, count_parameters
from digit_studio.plots import plot_training_curves
from digit_studio.realdigits import real_splits
from digit_studio.styles import styled_copies
from digit_studio.runtime import resolve_device, seed_everything

# NHWC runs this network's convolutions and pooling about 1.5x faster on the CPU than NCHW.
CHANNELS_LAST = torch.channels_last


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    val_real_accuracy: float | None  # on the real handwriting kept back (RealDataConfig), when mixed in
    lr: float
    seconds: float


def make_optimizer(model: nn.Module, config: ClassifierConfig | VAEConfig) -> torch.optim.AdamW:
    # Weight decay on conv and linear weights only: decaying BN scales and biases only hurts.
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": config.training.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.training.lr)


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: ClassifierConfig | VAEConfig, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    t = config.training
    if t.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=t.lr, total_steps=total_steps, pct_start=0.2, div_factor=20.0,
            final_div_factor=200.0,
        )
    if t.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    raise ConfigError(f"training.schedule must be 'onecycle' or 'cosine', got '{t.schedule}'")


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
    real_val = None
    if config.real.repeat:
        real_train, real_val = real_splits(config.data, config.real)
        parts += [(real_train.images, real_train.labels)] * config.real.repeat
    images, labels = zip(*parts)
    return Split(torch.cat(images), torch.cat(labels)), val, real_val


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    train: Split,
    config: ClassifierConfig,
    generator: torch.Generator,
    device: torch.device,
    steps_left: int | None,
    description: str,
) -> tuple[float, float, list[float]]:
    """One pass over `train` in a seeded order. Returns mean loss, accuracy and the per-step losses."""
    model.train()
    t = config.training
    order = torch.randperm(len(train), generator=generator)
    batches = list(order.split(t.batch_size))
    if steps_left is not None:
        batches = batches[:steps_left]
    step_losses: list[float] = []
    correct = seen = 0
    bar = tqdm(batches, desc=description, leave=False, dynamic_ncols=True)
    for index in bar:
        images, labels = train.batch(index)
        images = augment(images, config.augment, generator).to(device, memory_format=CHANNELS_LAST)
        labels = labels.to(device)
        logits = model(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=t.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        step_losses.append(loss.item())
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
        bar.set_postfix(loss=f"{step_losses[-1]:.3f}", acc=f"{correct / seen:.4f}")
    return sum(step_losses) / max(len(step_losses), 1), correct / max(seen, 1), step_losses


def resume_path(config: ClassifierConfig) -> Path:
    return Path(config.output.checkpoint).with_suffix(".resume.pt")


def _save_resume(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _resumable(config: dict[str, Any]) -> dict[str, Any]:
    """The settings a resumed run must share with the original: all but the step limit."""
    return {**config, "training": {**config["training"], "max_steps": None}}


def _load_resume(path: str | Path) -> dict[str, Any]:
    try:
        # weights_only: the resume file holds tensors, numbers and strings; never unpickle code.
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"resume file not found: {path}") from None
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable resume file ({exc})") from None


def save_run(config: ClassifierConfig | VAEConfig, model: nn.Module, kind: str, metrics: dict[str, Any]) -> Path:
    """Write the checkpoint (the config and metrics in its metadata) and metrics.json; returns the results
    folder."""
    save_checkpoint(config.output.checkpoint, model, kind, {
        "model_config": to_dict(config.model),
        "train_config": to_dict(config),
        "metrics": {k: v for k, v in metrics.items() if k != "history"},
    })
    results = Path(config.output.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    (results / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return results


def train_classifier(
    config: ClassifierConfig, resume: str | Path | None = None, write_outputs: bool = True
) -> dict[str, Any]:
    """Train, keep the best-validation weights, score them on the test set and write checkpoint,
    metrics and curves. Returns the metrics dict."""
    generator = seed_everything(config.seed)
    device = resolve_device(config.device)
    train, val, real_val = training_data(config, generator)
    test = load_mnist(config.data, train=False)
    t = config.training

    model = DigitCNN(config.model).to(device, memory_format=CHANNELS_LAST)
    optimizer = make_optimizer(model, config)
    steps_per_epoch = math.ceil(len(train) / t.batch_size)
    scheduler = make_scheduler(optimizer, config, steps_per_epoch * t.epochs)

    history: list[EpochRecord] = []
    step_losses: list[float] = []
    best_state: dict[str, torch.Tensor] = copy.deepcopy(model.state_dict())
    best_val, best_epoch, start_epoch, train_seconds = -1.0, 0, 0, 0.0
    if resume is not None:
        state = _load_resume(resume)
        if _resumable(state["config"]) != _resumable(to_dict(config)):
            raise ConfigError(f"{resume} was written with another config; resume with the same settings")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history = [EpochRecord(**r) for r in state["history"]]
        step_losses, best_state = state["step_losses"], state["best_model"]
        best_val, best_epoch = state["best_val"], state["best_epoch"]
        start_epoch, train_seconds = state["epoch"], state["train_seconds"]

    steps_done = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, t.epochs):
        steps_left = t.max_steps - steps_done if t.max_steps else None
        if steps_left is not None and steps_left <= 0:
            break
        started = time.perf_counter()
        train_loss, train_acc, losses = train_epoch(
            model, optimizer, scheduler, train, config, generator, device, steps_left,
            f"epoch {epoch + 1}/{t.epochs}",
        )
        val_loss, val_acc = evaluate_split(model, val, t.eval_batch_size, device)
        real_acc = evaluate_split(model, real_val, t.eval_batch_size, device)[1] if real_val else None
        # The best epoch reads the most validation digits right, MNIST's and the real ones together.
        score = (val_acc * len(val) + (real_acc or 0.0) * len(real_val or [])) / (len(val) + len(real_val or []))
        seconds = time.perf_counter() - started
        train_seconds += seconds
        steps_done += len(losses)
        step_losses += losses
        record = EpochRecord(
            epoch + 1, train_loss, train_acc, val_loss, val_acc, real_acc, scheduler.get_last_lr()[0], seconds
        )
        history.append(record)
        if score > best_val:
            best_val, best_epoch = score, epoch + 1
            best_state = copy.deepcopy(model.state_dict())
        tqdm.write(
            f"epoch {epoch + 1:>2}: train loss {train_loss:.4f} acc {train_acc:.4f} | "
            f"val loss {val_loss:.4f} acc {val_acc:.4f}"
            + (f" real {real_acc:.4f}" if real_acc is not None else "") + f" | {seconds:.0f}s"
            + (" *best*" if best_epoch == epoch + 1 else "")
        )
        if write_outputs:
            _save_resume(resume_path(config), {
                "config": to_dict(config), "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                "history": [asdict(r) for r in history], "step_losses": step_losses,
                "best_model": best_state, "best_val": best_val, "best_epoch": best_epoch,
                "epoch": epoch + 1, "train_seconds": train_seconds,
            })

    model.load_state_dict(best_state)
    test_loss, test_acc = evaluate_split(model, test, t.eval_batch_size, device)
    best = history[best_epoch - 1] if history else None
    metrics: dict[str, Any] = {
        "val_accuracy": best.val_accuracy if best else None,
        "val_real_accuracy": best.val_real_accuracy if best else None,
        "best_epoch": best_epoch,
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "parameters": count_parameters(model),
        "train_seconds": round(train_seconds, 1),
        "device": str(device),
        "checkpoint": config.output.checkpoint,
        "torch_threads": torch.get_num_threads(),
        "history": [asdict(r) for r in history],
    }
    if write_outputs:
        results = save_run(config, model, "classifier", metrics)
        plot_training_curves(history, step_losses, results / "training_curves.png")
    metrics["step_losses"] = step_losses
    return metrics

