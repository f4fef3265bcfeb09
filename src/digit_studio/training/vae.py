"""VAE training and evaluation: dynamically binarized MNIST, KL warm-up, best epoch chosen by validation
negative ELBO, sample grids along the way, and test-set figures in nats at the end.

The optimiser, schedule, best-epoch selection and resume files are the shared loop's (loop.py).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from digit_studio.config import VAEConfig
from digit_studio.generation import reconstruct
from digit_studio.models.classifier import count_parameters
from digit_studio.models.vae import (
    ConvVAE,
    bernoulli_nll,
    gaussian_kl,
    importance_weighted_nll,
    negative_elbo,
)
from digit_studio.runtime import resolve_device, seed_everything
from digit_studio.training.classifier import CHANNELS_LAST
from digit_studio.training.data import Split, load_mnist, load_splits
from digit_studio.training.loop import fit, save_run
from digit_studio.training.plots import plot_digit_grid

BINARIZATION = (
    "stochastic: each pixel is 1 with probability equal to its grey level (torch.bernoulli), "
    "drawn once with a fixed seed"
)


def binarize(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Binary digits drawn pixel by pixel with probability = grey level (dynamic binarization)."""
    return torch.bernoulli(images, generator=generator)


def fixed_binarization(split: Split, seed: int) -> torch.Tensor:
    """The whole split binarized once with `seed`: (N, 1, 28, 28) zeros and ones, reproducible."""
    images, _ = split.batch(slice(None))
    return binarize(images, torch.Generator().manual_seed(seed))


def evaluate_elbo(
    model: ConvVAE, binary: torch.Tensor, batch_size: int, device: torch.device, samples: int = 1,
    seed: int = 0,
) -> dict[str, float]:
    """Mean negative ELBO, reconstruction and KL terms (nats per digit) and the standard error of the
    mean, with posterior noise seeded so that the figure is reproducible."""
    model.eval()
    reconstruction, kl = [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for batch in binary.split(batch_size):
            rec, div = negative_elbo(model, batch.to(device, memory_format=CHANNELS_LAST), samples)
            reconstruction.append(rec.cpu())
            kl.append(div.cpu())
    rec, div = torch.cat(reconstruction), torch.cat(kl)
    total = rec + div
    return {
        "negative_elbo": total.mean().item(),
        "negative_elbo_sem": (total.std() / math.sqrt(len(total))).item(),
        "reconstruction": rec.mean().item(),
        "kl": div.mean().item(),
    }


def evaluate_iw_nll(
    model: ConvVAE, binary: torch.Tensor, samples: int, device: torch.device, seed: int = 0,
    chunk: int = 100, images_per_pass: int = 5000,
) -> torch.Tensor:
    """Importance-weighted -log p(x) per digit, batched so that one decoder pass sees ~`images_per_pass`
    images (digits × samples)."""
    model.eval()
    chunk = min(chunk, samples)
    digits_per_pass = max(1, images_per_pass // chunk)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.cat([
            importance_weighted_nll(model, batch.to(device), samples, chunk).cpu()
            for batch in binary.split(digits_per_pass)
        ])


def kl_weight(step: int, config: VAEConfig, steps_per_epoch: int) -> float:
    """β ramps linearly from 0 over the warm-up, so the decoder learns to use z before KL pulls on it."""
    warmup = config.training.kl_warmup_epochs * steps_per_epoch
    return config.training.beta * (min(1.0, step / warmup) if warmup > 0 else 1.0)


@dataclass
class VAETask:
    """Reconstruction + β_t·KL on freshly binarized training digits; the best epoch has the lowest
    validation negative ELBO. Every `sample_every` epochs, sample and reconstruction grids."""

    train: Split
    val_binary: torch.Tensor
    val_examples: tuple[torch.Tensor, torch.Tensor]  # 20 validation digits and labels for the grids
    config: VAEConfig
    device: torch.device
    write_outputs: bool = True

    @property
    def size(self) -> int:
        return len(self.train)

    def step(self, model: nn.Module, index: torch.Tensor, generator: torch.Generator,
             step: int) -> tuple[torch.Tensor, dict[str, float]]:
        images, _ = self.train.batch(index)
        x = binarize(images, generator).to(self.device, memory_format=CHANNELS_LAST)
        logits, mean, logvar = model(x)
        reconstruction = bernoulli_nll(logits, x).mean()
        kl = gaussian_kl(mean, logvar).mean()
        loss = reconstruction + kl_weight(step, self.config, self._steps_per_epoch) * kl
        return loss, {"negative_elbo": reconstruction.item() + kl.item()}

    @property
    def _steps_per_epoch(self) -> int:
        return math.ceil(len(self.train) / self.config.training.batch_size)

    def evaluate(self, model: nn.Module, epoch: int) -> tuple[float, dict[str, Any]]:
        t = self.config.training
        terms = evaluate_elbo(model, self.val_binary, t.eval_batch_size, self.device, seed=self.config.seed)
        if self.write_outputs and t.sample_every and epoch % t.sample_every == 0:
            write_pictures(model, *self.val_examples, Path(self.config.output.samples_dir), f"epoch_{epoch:03d}",
                           self.device)
        return -terms["negative_elbo"], {
            "val_negative_elbo": terms["negative_elbo"], "val_reconstruction": terms["reconstruction"],
            "val_kl": terms["kl"], "kl_weight": kl_weight(epoch * self._steps_per_epoch, self.config,
                                                          self._steps_per_epoch)}


@torch.inference_mode()
def write_pictures(
    model: ConvVAE, val_images: torch.Tensor, val_labels: torch.Tensor, directory: Path, tag: str,
    device: torch.device,
) -> None:
    """64 digits decoded from prior samples (fixed noise, so grids compare across epochs), and validation
    digits (rows of inputs) above their reconstructions (rows of decoded posterior means)."""
    model.eval()
    z = torch.randn(64, model.config.latent_dim, generator=torch.Generator().manual_seed(0))
    samples = torch.sigmoid(model.decode(z.to(device))).cpu()
    plot_digit_grid(samples[:, 0].numpy(), [""] * 64, directory / f"{tag}_samples.png",
                    f"VAE samples from the prior ({tag})", columns=8)
    inputs = val_images[:20]
    recon = reconstruct(model, inputs)
    rows = [t[i : i + 10] for i in (0, 10) for t in (inputs, recon)]  # inputs, their recons, ...
    captions = [c for i in (0, 10) for c in [str(int(v)) for v in val_labels[i : i + 10]] + ["recon"] * 10]
    plot_digit_grid(torch.cat(rows)[:, 0].numpy(), captions, directory / f"{tag}_reconstructions.png",
                    f"Validation digits and their reconstructions ({tag})", columns=10)


def evaluate_test(model: ConvVAE, config: VAEConfig, device: torch.device) -> dict[str, Any]:
    """Negative ELBO on the whole binarized test set and the importance-weighted NLL on its first
    `iw_digits` digits (with the negative ELBO on the same digits, for a like-for-like gap)."""
    e = config.evaluation
    binary = fixed_binarization(load_mnist(config.data, train=False), e.binarize_seed)
    started = time.perf_counter()
    batch = config.training.eval_batch_size
    full = evaluate_elbo(model, binary, batch, device, e.elbo_samples, e.binarize_seed)
    subset = binary[: e.iw_digits]
    subset_elbo = evaluate_elbo(model, subset, batch, device, e.elbo_samples, e.binarize_seed)
    iw = evaluate_iw_nll(model, subset, e.iw_samples, device, e.binarize_seed)
    return {
        "binarization": f"{BINARIZATION} (seed {e.binarize_seed})",
        "test_digits": len(binary),
        "elbo_samples": e.elbo_samples,
        "test_negative_elbo": full["negative_elbo"],
        "test_negative_elbo_sem": full["negative_elbo_sem"],
        "test_reconstruction": full["reconstruction"],
        "test_kl": full["kl"],
        "iw_subset": {
            "digits": len(subset),
            "which": f"the first {len(subset)} test digits",
            "iw_samples": e.iw_samples,
            "iw_nll": iw.mean().item(),
            "iw_nll_sem": (iw.std() / math.sqrt(len(iw))).item(),
            "negative_elbo": subset_elbo["negative_elbo"],
        },
        "eval_seconds": round(time.perf_counter() - started, 1),
    }


def train_vae(config: VAEConfig, resume: str | Path | None = None, write_outputs: bool = True) -> dict[str, Any]:
    """Train, keep the best-validation weights, score them on the test set and write the checkpoint,
    metrics and pictures. Returns the metrics dict."""
    generator = seed_everything(config.seed)
    device = resolve_device(config.device)
    train, val = load_splits(config.data)
    task = VAETask(train, fixed_binarization(val, config.evaluation.binarize_seed), val.batch(slice(0, 20)), config,
                   device, write_outputs)
    model = ConvVAE(config.model).to(device, memory_format=CHANNELS_LAST)
    run = fit(model, task, config, generator, resume, write_resume=write_outputs)
    metrics: dict[str, Any] = {
        "val_negative_elbo": run.best.get("val_negative_elbo"),
        "best_epoch": run.best_epoch,
        **evaluate_test(model, config, device),
        "parameters": count_parameters(model),
        "train_seconds": round(run.train_seconds, 1),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "history": run.history,
        "checkpoint": config.output.checkpoint,
    }
    if write_outputs:
        results = save_run(config, model, "vae", metrics)
        write_pictures(model, *task.val_examples, results, "final", device)
    metrics["step_losses"] = run.step_losses
    return metrics
