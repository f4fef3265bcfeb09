"""What the studio shows beside a drawn digit, from the VAE: variations sampled around the digit's
posterior, a walk in latent space between two digits, and an atypicality score for shapes that look like
no digit at all.

Digits go in and come out in the classifier's format: floats in [0, 1], ink light on dark, 28×28.
Everything is batched: one encoder pass and one decoder pass per call.
"""

from __future__ import annotations

import torch

from digit_studio.errors import DataError
from digit_studio.models.vae import ConvVAE, bernoulli_nll, gaussian_kl

# Posterior spread multiplier of the studio's variations; bench/vae_quality.py measures that they keep
# their digit's class at this temperature.
DEFAULT_TEMPERATURE = 1.0


def as_digit_batch(digits: torch.Tensor) -> torch.Tensor:
    """(28, 28), (B, 28, 28) or (B, 1, 28, 28) floats in [0, 1] → (B, 1, 28, 28); DataError otherwise."""
    if not isinstance(digits, torch.Tensor):
        raise DataError(f"digits must be a torch tensor, got {type(digits).__name__}")
    batch = digits[None, None] if digits.ndim == 2 else digits[:, None] if digits.ndim == 3 else digits
    if batch.ndim != 4 or tuple(batch.shape[1:]) != (1, 28, 28) or len(batch) == 0:
        raise DataError(
            f"digits must be 28x28 images shaped (B, 1, 28, 28) or (B, 28, 28), got {tuple(digits.shape)}"
        )
    if not batch.is_floating_point():
        raise DataError(f"digits must be floats in [0, 1], got {batch.dtype}; divide uint8 images by 255")
    if not torch.isfinite(batch).all() or batch.min() < 0 or batch.max() > 1:
        raise DataError(
            "digit pixels must be finite and in [0, 1] (ink light on dark, like the classifier's input)"
        )
    return batch


def _device(model: ConvVAE) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def reconstruct(model: ConvVAE, digits: torch.Tensor) -> torch.Tensor:
    """The decoded posterior mean of each digit: (B, 1, 28, 28) pixel probabilities."""
    x = as_digit_batch(digits).to(_device(model))
    return torch.sigmoid(model.decode(model.encode(x)[0])).cpu()


@torch.inference_mode()
def variations(
    model: ConvVAE, digits: torch.Tensor, k: int = 8, temperature: float = DEFAULT_TEMPERATURE,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """`k` variations of each digit: (B, k, 1, 28, 28) pixel probabilities.

    Latents are drawn from the digit's posterior N(mean, std²) with std scaled by `temperature`: 0 gives
    k copies of the reconstruction, 1 samples the posterior itself, larger values wander further. Pass a
    CPU `generator` for reproducible variations."""
    if k < 1:
        raise DataError(f"k (variations per digit) must be at least 1, got {k}")
    if not temperature >= 0:
        raise DataError(f"temperature must be 0 or more, got {temperature}")
    x = as_digit_batch(digits).to(_device(model))
    mean, logvar = model.encode(x)
    noise = torch.randn((len(x), k, mean.shape[1]), generator=generator).to(mean.device)
    z = mean[:, None] + temperature * (0.5 * logvar).exp()[:, None] * noise
    return torch.sigmoid(model.decode(z.flatten(0, 1))).view(len(x), k, 1, 28, 28).cpu()


@torch.inference_mode()
def interpolate(model: ConvVAE, start: torch.Tensor, end: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """Digits decoded along the straight line between two posterior means: (steps, 1, 28, 28), the first
    and last being the reconstructions of `start` and `end`."""
    if steps < 2:
        raise DataError(f"steps must be at least 2 (the two ends), got {steps}")
    x = torch.cat([as_digit_batch(start), as_digit_batch(end)])
    if len(x) != 2:
        raise DataError(f"interpolate takes one digit at each end, got {len(x)} images")
    mean, _ = model.encode(x.to(_device(model)))
    t = torch.linspace(0, 1, steps, device=mean.device)[:, None]
    return torch.sigmoid(model.decode(torch.lerp(mean[0], mean[1], t))).cpu()


@torch.inference_mode()
def atypicality(model: ConvVAE, digits: torch.Tensor) -> torch.Tensor:
    """How unlike a digit each image is: its negative ELBO in nats, (B,), with the posterior mean as the
    latent (deterministic) and grey levels as Bernoulli targets. With the shipped checkpoint MNIST test
    digits score 87 nats (median; 95% below 122), scribbles, letters and rotated digits 157-180, speckle
    noise about 970 (bench/vae_quality.py measures the separation)."""
    x = as_digit_batch(digits).to(_device(model))
    mean, logvar = model.encode(x)
    return (bernoulli_nll(model.decode(mean), x) + gaussian_kl(mean, logvar)).cpu()
