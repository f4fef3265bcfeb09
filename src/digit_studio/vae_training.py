"""VAE training and evaluation: dynamically binarized MNIST, KL warm-up, best epoch chosen by validation
negative ELBO, sample grids along the way, and test-set figures in nats at the end.

Optimiser, schedule, seeding and device handling are the classifier's (digit_studio.training/runtime).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from digit_studio.config import VAEConfig
from digit_studio.data import Split, load_mnist, load_splits
from digit_studio.generation import reconstruct
from digit_studio.models.classifier import count_parameters
from digit_studio.models.vae import (
    ConvVAE, bernoulli_nll, gaussian_kl, importance_weighted_nll, negative_elbo,
)
from digit_studio.plots import plot_digit_grid
from digit_studio.runtime import resolve_device, seed_everything
from digit_studio.training import CHANNELS_LAST, make_optimizer, make_scheduler, save_run

BINARIZATION = (
    "stochastic: each pixel is 1 with probability equal to its grey level (torch.bernoulli), "
    "drawn once with a fixed seed"
)


@dataclass
class VAEEpochRecord:
    epoch: int
    train_loss: float  # reconstruction + beta_t * KL, what was minimised
    train_negative_elbo: float
    val_negative_elbo: float
    val_reconstruction: float
    val_kl: float
    kl_weight: float
    lr: float
    seconds: float


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


def train_epoch(
    model: ConvVAE,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    train: Split,
    config: VAEConfig,
    generator: torch.Generator,
    device: torch.device,
    first_step: int,
    steps_left: int | None,
    description: str,
) -> tuple[float, list[float]]:
    """One pass over freshly binarized `train` in a seeded order. Returns the mean negative ELBO and the
    per-step losses (reconstruction + β_t·KL, what was minimised)."""
    model.train()
    t = config.training
    steps_per_epoch = math.ceil(len(train) / t.batch_size)
    batches = list(torch.randperm(len(train), generator=generator).split(t.batch_size))
    if steps_left is not None:
        batches = batches[:steps_left]
    step_losses: list[float] = []
    elbo_sum = 0.0
    bar = tqdm(batches, desc=description, leave=False, dynamic_ncols=True)
    for i, index in enumerate(bar):
        images, _ = train.batch(index)
        x = binarize(images, generator).to(device, memory_format=CHANNELS_LAST)
        logits, mean, logvar = model(x)
        reconstruction = bernoulli_nll(logits, x).mean()
        kl = gaussian_kl(mean, logvar).mean()
        weight = kl_weight(first_step + i, config, steps_per_epoch)
        loss = reconstruction + weight * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        step_losses.append(loss.item())
        elbo_sum += reconstruction.item() + kl.item()
        bar.set_postfix(rec=f"{reconstruction.item():.1f}", kl=f"{kl.item():.1f}", beta=f"{weight:.2f}",
                        nelbo=f"{elbo_sum / (i + 1):.2f}")
    return elbo_sum / max(len(batches), 1), step_losses


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


def train_vae(config: VAEConfig, write_outputs: bool = True) -> dict[str, Any]:
    """Train, keep the best-validation weights, score them on the test set and write the checkpoint,
    metrics and pictures. Returns the metrics dict."""
    generator = seed_everything(config.seed)
    device = resolve_device(config.device)
    train, val = load_splits(config.data)
    t = config.training
    val_binary = fixed_binarization(val, config.evaluation.binarize_seed)
    val_images, val_labels = val.batch(slice(0, 20))
    samples_dir = Path(config.output.samples_dir)

    model = ConvVAE(config.model).to(device, memory_format=CHANNELS_LAST)
    optimizer = make_optimizer(model, config)
    steps_per_epoch = math.ceil(len(train) / t.batch_size)
    scheduler = make_scheduler(optimizer, config, steps_per_epoch * t.epochs)

    history: list[VAEEpochRecord] = []
    step_losses: list[float] = []
    best_state = copy.deepcopy(model.state_dict())
    best_val, best_epoch, steps_done, train_seconds = math.inf, 0, 0, 0.0
    for epoch in range(t.epochs):
        steps_left = t.max_steps - steps_done if t.max_steps else None
        if steps_left is not None and steps_left <= 0:
            break
        started = time.perf_counter()
        train_elbo, losses = train_epoch(
            model, optimizer, scheduler, train, config, generator, device, steps_done, steps_left,
            f"epoch {epoch + 1}/{t.epochs}",
        )
        steps_done += len(losses)
        step_losses += losses
        train_loss = sum(losses) / max(len(losses), 1)
        val_terms = evaluate_elbo(model, val_binary, t.eval_batch_size, device, seed=config.seed)
        if write_outputs and t.sample_every and (epoch + 1) % t.sample_every == 0:
            write_pictures(model, val_images, val_labels, samples_dir, f"epoch_{epoch + 1:03d}", device)
        seconds = time.perf_counter() - started
        train_seconds += seconds
        history.append(VAEEpochRecord(
            epoch + 1, train_loss, train_elbo, val_terms["negative_elbo"], val_terms["reconstruction"],
            val_terms["kl"], kl_weight(steps_done, config, steps_per_epoch), scheduler.get_last_lr()[0],
            seconds,
        ))
        is_best = val_terms["negative_elbo"] < best_val
        if is_best:
            best_val, best_epoch = val_terms["negative_elbo"], epoch + 1
            best_state = copy.deepcopy(model.state_dict())
        tqdm.write(
            f"epoch {epoch + 1:>2}: train loss {train_loss:.2f} -elbo {train_elbo:.2f} | val -elbo "
            f"{val_terms['negative_elbo']:.2f} (rec {val_terms['reconstruction']:.2f} + kl "
            f"{val_terms['kl']:.2f}) | {seconds:.0f}s" + (" *best*" if is_best else "")
        )

    model.load_state_dict(best_state)
    metrics: dict[str, Any] = {
        "val_negative_elbo": best_val,
        "best_epoch": best_epoch,
        **evaluate_test(model, config, device),
        "parameters": count_parameters(model),
        "train_seconds": round(train_seconds, 1),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "history": [asdict(r) for r in history],
        "checkpoint": config.output.checkpoint,
    }
    if write_outputs:
        results = save_run(config, model, "vae", metrics)
        write_pictures(model, val_images, val_labels, results, "final", device)
    metrics["step_losses"] = step_losses
    return metrics
