"""The one training loop every model uses: AdamW, a one-cycle or cosine schedule, a seeded order of the
training examples each epoch, a step limit for smoke runs, best-epoch selection on validation, tqdm
progress and resume files. What differs between models (the batch, its loss, what validation measures)
is a `Task`."""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from digit_studio.checkpoint import save_checkpoint
from digit_studio.config import to_dict
from digit_studio.errors import CheckpointError, ConfigError


class Task(Protocol):
    size: int  # training examples; the loop shuffles range(size) each epoch

    def step(self, model: nn.Module, index: torch.Tensor, generator: torch.Generator,
             step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of one batch (the training examples `index`; `step` optimiser steps came before it) and
        figures for the progress bar, which the loop averages over the epoch weighted by batch size."""
        ...

    def evaluate(self, model: nn.Module, epoch: int) -> tuple[float, dict[str, Any]]:
        """After epoch `epoch` (from 1): a score (higher is better; it picks the best epoch) and the fields
        of the epoch's record."""
        ...


@dataclass
class Fit:
    history: list[dict[str, Any]] = field(default_factory=list)  # one record per epoch
    step_losses: list[float] = field(default_factory=list)
    best_epoch: int = 0
    train_seconds: float = 0.0

    @property
    def best(self) -> dict[str, Any]:
        return self.history[self.best_epoch - 1] if self.best_epoch else {}


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    # Weight decay on conv and linear weights only: decaying norm scales and biases only hurts.
    groups = [
        {"params": [p for p in model.parameters() if p.ndim > 1], "weight_decay": weight_decay},
        {"params": [p for p in model.parameters() if p.ndim <= 1], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr)


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: str, lr: float,
                   total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    if schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=total_steps, pct_start=0.2, div_factor=20.0, final_div_factor=200.0)
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    raise ConfigError(f"training.schedule must be 'onecycle' or 'cosine', got '{schedule}'")


def resume_path(config: Any) -> Path:
    return Path(config.output.checkpoint).with_suffix(".resume.pt")


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


def _save_resume(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # a crash never leaves half a file


def _figures(figures: dict[str, float]) -> str:
    return " ".join(f"{name} {value:.4g}" for name, value in figures.items())


def train_epoch(model: nn.Module, task: Task, optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler, generator: torch.Generator, batch_size: int,
                steps: int | None = None, description: str = "training",
                steps_done: int = 0) -> tuple[list[float], dict[str, float]]:
    """One pass over the task's examples in a seeded order (or its first `steps` batches). Returns the step
    losses and the step figures averaged over the pass (`train_` + name)."""
    model.train()
    batches = list(torch.randperm(task.size, generator=generator).split(batch_size))[:steps]
    losses: list[float] = []
    sums: dict[str, float] = {}
    bar = tqdm(batches, desc=description, leave=False, dynamic_ncols=True)
    for index in bar:
        loss, figures = task.step(model, index, generator, steps_done + len(losses))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        for name, value in figures.items():
            sums[name] = sums.get(name, 0.0) + value * len(index)
        bar.set_postfix(loss=f"{losses[-1]:.3f}", **{k: f"{v:.4g}" for k, v in figures.items()})
    seen = max(sum(len(index) for index in batches), 1)
    return losses, {f"train_{name}": value / seen for name, value in sums.items()}


def fit(model: nn.Module, task: Task, config: Any, generator: torch.Generator, resume: str | Path | None = None,
        write_resume: bool = True) -> Fit:
    """Train `model` on `task` with `config.training` (epochs, batch_size, lr, weight_decay, schedule,
    max_steps) and return the run; the model ends holding its best epoch's weights. With `write_resume`,
    each epoch leaves a resume file beside `config.output.checkpoint`; `resume` continues from one."""
    t = config.training
    optimizer = make_optimizer(model, t.lr, t.weight_decay)
    steps_per_epoch = math.ceil(task.size / t.batch_size)
    scheduler = make_scheduler(optimizer, t.schedule, t.lr, steps_per_epoch * t.epochs)
    run, best_score, start_epoch = Fit(), -math.inf, 0
    best_state = copy.deepcopy(model.state_dict())
    if resume is not None:
        state = _load_resume(resume)
        if _resumable(state["config"]) != _resumable(to_dict(config)):
            raise ConfigError(f"{resume} was written with another config; resume with the same settings")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        run = Fit(state["history"], state["step_losses"], state["best_epoch"], state["train_seconds"])
        best_state, best_score, start_epoch = state["best_model"], state["best_score"], state["epoch"]

    steps_done = start_epoch * steps_per_epoch
    for epoch in range(start_epoch + 1, t.epochs + 1):
        steps_left = t.max_steps - steps_done if t.max_steps else None
        if steps_left is not None and steps_left <= 0:
            break
        started = time.perf_counter()
        losses, train_figures = train_epoch(model, task, optimizer, scheduler, generator, t.batch_size,
                                            steps_left, f"epoch {epoch}/{t.epochs}", steps_done)
        steps_done += len(losses)
        score, fields = task.evaluate(model, epoch)
        seconds = time.perf_counter() - started
        run.train_seconds += seconds
        run.step_losses += losses
        run.history.append({"epoch": epoch, "train_loss": sum(losses) / len(losses), **train_figures, **fields,
                            "lr": scheduler.get_last_lr()[0], "seconds": seconds})
        if score > best_score:
            best_score, run.best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
        tqdm.write(f"epoch {epoch:>2}: train loss {run.history[-1]['train_loss']:.4f} {_figures(train_figures)} | "
                   f"{_figures({k: v for k, v in fields.items() if isinstance(v, float)})} | {seconds:.0f}s"
                   + (" *best*" if run.best_epoch == epoch else ""))
        if write_resume:
            _save_resume(resume_path(config), {
                "config": to_dict(config), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(), "history": run.history, "step_losses": run.step_losses,
                "best_model": best_state, "best_score": best_score, "best_epoch": run.best_epoch,
                "epoch": epoch, "train_seconds": run.train_seconds,
            })
    model.load_state_dict(best_state)
    return run


def save_run(config: Any, model: nn.Module, kind: str, metrics: dict[str, Any]) -> Path:
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
