"""A convolutional variational autoencoder of MNIST digits with a Bernoulli decoder.

Input: (B, 1, 28, 28) floats in [0, 1], ink light on dark (the classifier's format). The encoder gives a
diagonal Gaussian posterior q(z|x); the decoder gives one Bernoulli logit per pixel, so that likelihoods
of binarized digits come out in nats. All likelihood terms below are per image (summed over pixels and
latent dimensions), never averaged, so they read directly as "nats per digit".
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

from digit_studio.checkpoint import load_weights, read_checkpoint
from digit_studio.config import VAEModelConfig, from_dict
from digit_studio.errors import ConfigError


class ConvVAE(nn.Module):
    """Encoder: two stride-2 4×4 convolutions (28→14→7), then linear layers to the posterior's mean and
    log-variance. Decoder: the mirror image with transposed convolutions, ending in per-pixel logits."""

    def __init__(self, config: VAEModelConfig) -> None:
        super().__init__()
        if len(config.channels) != 2 or min(config.channels) < 1:
            raise ConfigError(
                f"model.channels must be two positive widths (14×14 and 7×7 stages), got {config.channels}"
            )
        if config.latent_dim < 1:
            raise ConfigError(f"model.latent_dim must be at least 1, got {config.latent_dim}")
        self.config = config
        c1, c2 = config.channels
        features, hidden = c2 * 7 * 7, config.hidden
        fc_in = [nn.Linear(features, hidden), nn.SiLU()] if hidden else []
        fc_out = [nn.Linear(config.latent_dim, hidden), nn.SiLU()] if hidden else []
        head = config.head_channels
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.SiLU(),
            nn.Flatten(), *fc_in,
            nn.Linear(hidden or features, 2 * config.latent_dim),
        )
        self.decoder = nn.Sequential(
            *fc_out,
            nn.Linear(hidden or config.latent_dim, features), nn.SiLU(),
            nn.Unflatten(1, (c2, 7, 7)),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(c1, head or 1, 4, stride=2, padding=1),
            *([nn.SiLU(), nn.Conv2d(head, 1, 3, padding=1)] if head else []),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x), each (B, latent_dim)."""
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits (B, 1, 28, 28) of p(x|z)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits of one reparameterised posterior sample, with the posterior's mean and log-variance."""
        mean, logvar = self.encode(x)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        return self.decode(z), mean, logvar


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) per image in nats. For grey `x` it is the expectation over binarizations of x."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per image in nats, in closed form."""
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).sum(1)


@torch.inference_mode()
def negative_elbo(model: ConvVAE, x: torch.Tensor, samples: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Reconstruction term and KL term of the negative ELBO per image (their sum is the bound), the
    reconstruction term averaged over `samples` posterior samples."""
    mean, logvar = model.encode(x)
    std = (0.5 * logvar).exp()
    reconstruction = torch.zeros(len(x), device=x.device)
    for _ in range(samples):
        reconstruction += bernoulli_nll(model.decode(mean + torch.randn_like(std) * std), x)
    return reconstruction / samples, gaussian_kl(mean, logvar)


@torch.inference_mode()
def importance_weighted_nll(model: ConvVAE, x: torch.Tensor, samples: int, chunk: int = 100) -> torch.Tensor:
    """-log p(x) per image, estimated with `samples` importance samples from q(z|x) (Burda et al., 2016).

    The estimate is an upper bound in expectation that tightens as `samples` grows; `chunk` samples per
    digit are decoded in one batch."""
    mean, logvar = model.encode(x)
    posterior = Normal(mean.unsqueeze(1), (0.5 * logvar).exp().unsqueeze(1))
    prior = Normal(0.0, 1.0)
    log_weights = []
    for start in range(0, samples, chunk):
        z = posterior.sample((min(chunk, samples - start),)).squeeze(2).transpose(0, 1)  # (B, n, D)
        n = z.shape[1]
        logits = model.decode(z.flatten(0, 1))
        log_px = -bernoulli_nll(logits, x.repeat_interleave(n, dim=0)).view(len(x), n)
        log_weights.append(log_px + prior.log_prob(z).sum(-1) - posterior.log_prob(z).sum(-1))
    return math.log(samples) - torch.logsumexp(torch.cat(log_weights, dim=1), dim=1)


def load_vae(path: str | Path, device: str | torch.device = "cpu") -> tuple[ConvVAE, dict]:
    """Load a VAE checkpoint (safetensors, no pickle) in eval mode, with its metadata."""
    tensors, meta = read_checkpoint(path, kind="vae")
    model = ConvVAE(from_dict(VAEModelConfig, meta["model_config"], prefix="model."))
    load_weights(model, tensors, path)
    return model.to(device).eval(), meta
