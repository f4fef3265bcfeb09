"""Batched random distortions that turn MNIST scans into something like digits drawn with a mouse.

Everything is one affine warp plus one morphological step on the whole batch, so augmentation costs a
few percent of a training step on the CPU. Randomness comes from an explicit generator: with the same
seed, the same batches come out.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from digit_studio.config import AugmentConfig
from digit_studio.crops import dilate, erode


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def random_affine(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Rotate, shear, scale and translate each image of (B, 1, H, W) by its own random amounts."""
    b, _, h, _ = x.shape
    angle = torch.deg2rad(_uniform(b, -config.rotation_deg, config.rotation_deg, generator))
    shear = math.tan(math.radians(config.shear_deg)) * _uniform(b, -1.0, 1.0, generator)
    scale = _uniform(b, config.scale_min, config.scale_max, generator)
    shift = _uniform(2 * b, -1.0, 1.0, generator).view(b, 2) * (2 * config.translate_px / h)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Forward map: rotation · shear · scale. affine_grid wants output→input, i.e. the inverse.
    forward = torch.stack(
        [torch.stack([cos, cos * shear - sin], 1), torch.stack([sin, sin * shear + cos], 1)], 1
    ) * scale.view(b, 1, 1)
    inverse = torch.linalg.inv(forward)
    theta = torch.cat([inverse, -(inverse @ shift.unsqueeze(2))], dim=2).to(x)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_stroke_width(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Thicken some strokes (3×3 dilation) and thin others (erosion), blended by a random amount."""
    b = x.shape[0]
    u = torch.rand(b, generator=generator)
    amount = torch.rand(b, generator=generator).view(b, 1, 1, 1).to(x)
    thick, thin = dilate(x), erode(x)  # the reader's stroke-width code (crops.py)
    target = torch.where((u < config.thicken_prob).view(b, 1, 1, 1).to(x.device), thick, x)
    thinning = (u > 1 - config.thin_prob).view(b, 1, 1, 1).to(x.device)
    # Erosion can wipe out a thin MNIST stroke: blend it in at most half way.
    target = torch.where(thinning, x + 0.5 * (thin - x), target)
    return x + amount * (target - x)


def random_break(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Cut a band within 30° of horizontal through the middle rows of some digits, as when the pen is lifted
    mid-digit (synth.break_stroke draws the benchmark's broken digits the same way, at drawing scale)."""
    b, _, h, w = x.shape
    broken = (torch.rand(b, generator=generator) < config.break_prob).view(b, 1, 1, 1)
    angle = torch.deg2rad(_uniform(b, -30.0, 30.0, generator)).view(b, 1, 1, 1)
    centre = _uniform(b, 0.35 * h, 0.65 * h, generator).view(b, 1, 1, 1)
    width = _uniform(b, config.break_min_px, config.break_max_px, generator).view(b, 1, 1, 1)
    yy = torch.arange(h, dtype=x.dtype).view(1, 1, h, 1)
    xx = torch.arange(w, dtype=x.dtype).view(1, 1, 1, w)
    distance = (yy - centre) * torch.cos(angle) - (xx - w / 2) * torch.sin(angle)
    keep = (distance.abs() - width / 2 + 0.5).clamp(0, 1)  # anti-aliased band edges
    return torch.where(broken.to(x.device), x * keep.to(x), x)


def augment(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    x = random_stroke_width(random_affine(x, config, generator), config, generator)
    return random_break(x, config, generator).clamp_(0, 1)
