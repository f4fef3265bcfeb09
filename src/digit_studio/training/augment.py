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
from digit_studio.reading.crops import dilate, erode, mnist_crops

RESHAPE_SCALE = 3  # digits are reshaped as binary masks at this multiple of 28×28
ELASTIC_GRID = 4  # control points per side of the elastic warp's displacement field: a smooth wobble


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def random_affine(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Rotate, shear, scale (widen or narrow) and translate each image of (B, 1, H, W) by its own random
    amounts."""
    b, _, h, _ = x.shape
    angle = torch.deg2rad(_uniform(b, -config.rotation_deg, config.rotation_deg, generator))
    shear = math.tan(math.radians(config.shear_deg)) * _uniform(b, -1.0, 1.0, generator)
    scale = _uniform(b, config.scale_min, config.scale_max, generator)
    aspect = torch.exp(math.log(config.aspect_max) * _uniform(b, -1.0, 1.0, generator))
    shift = _uniform(2 * b, -1.0, 1.0, generator).view(b, 2) * (2 * config.translate_px / h)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero, one = torch.zeros(b), torch.ones(b)
    widen = torch.stack([torch.stack([aspect, zero], 1), torch.stack([zero, one], 1)], 1)
    # Forward map: rotation · shear · widening · scale. affine_grid wants output→input, i.e. the inverse.
    forward = torch.stack(
        [torch.stack([cos, cos * shear - sin], 1), torch.stack([sin, sin * shear + cos], 1)], 1
    ) @ widen * scale.view(b, 1, 1)
    inverse = torch.linalg.inv(forward)
    theta = torch.cat([inverse, -(inverse @ shift.unsqueeze(2))], dim=2).to(x)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_elastic(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Warp each image by a smooth random displacement field of up to `elastic_px` pixels: a coarse grid of
    random offsets, interpolated bicubically."""
    if config.elastic_px <= 0:
        return x
    b, _, h, w = x.shape
    coarse = _uniform(b * 2 * ELASTIC_GRID**2, -1.0, 1.0, generator).view(b, 2, ELASTIC_GRID, ELASTIC_GRID)
    amount = _uniform(b, 0.0, config.elastic_px, generator).view(b, 1, 1, 1)
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True) * amount
    base = F.affine_grid(torch.eye(2, 3).expand(b, 2, 3), [b, 1, h, w], align_corners=False)
    offsets = field.permute(0, 2, 3, 1) * torch.tensor([2.0 / w, 2.0 / h])  # pixels → grid units
    return F.grid_sample(x, (base + offsets).to(x), mode="bilinear", padding_mode="zeros", align_corners=False)


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


def pen_lift(shape: tuple[int, int], centre: torch.Tensor, angle: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """(B, 1, h, w) weights that cut one band per image, `width` px wide through the line at height `centre`
    (the image's middle column) tilted by `angle` (radians): 0 inside the band, 1 outside, anti-aliased
    (0.5 on its edge). Training augmentation (`random_break`) and the benchmark's broken digits
    (synth.break_stroke) lift the pen with it."""
    h, w = shape
    centre, angle, width = (v.view(-1, 1, 1, 1) for v in (centre, angle, width))
    yy = torch.arange(h, dtype=centre.dtype).view(1, 1, h, 1)
    xx = torch.arange(w, dtype=centre.dtype).view(1, 1, 1, w)
    distance = (yy - centre) * torch.cos(angle) - (xx - w / 2) * torch.sin(angle)
    return (distance.abs() - width / 2 + 0.5).clamp(0, 1)


def random_break(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Cut a band within 30° of horizontal through the middle rows of some digits, as when the pen is lifted
    mid-digit."""
    b, _, h, w = x.shape
    broken = (torch.rand(b, generator=generator) < config.break_prob).view(b, 1, 1, 1)
    angle = torch.deg2rad(_uniform(b, -30.0, 30.0, generator))
    centre = _uniform(b, 0.35 * h, 0.65 * h, generator)
    width = _uniform(b, config.break_min_px, config.break_max_px, generator)
    keep = pen_lift((h, w), centre, angle, width).to(x)
    return torch.where(broken.to(x.device), x * keep, x)


def augment(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """A warp, a stroke width and a pen lift, each image its own."""
    x = random_elastic(random_affine(x, config, generator), config, generator)
    x = random_stroke_width(x, config, generator)
    return random_break(x, config, generator).clamp_(0, 1)


def binary_masks(images: torch.Tensor) -> torch.Tensor:
    """Digits (uint8 (N, 28, 28), ink light) as binary masks at RESHAPE_SCALE× size, as a pen would have drawn
    them at that size: how copies of MNIST digits are redrawn before the reader's cropping."""
    size = 28 * RESHAPE_SCALE
    return F.interpolate(images.unsqueeze(1).float() / 255, size=(size, size), mode="bilinear",
                         align_corners=False)[:, 0] > 0.5


def reshaped_copies(images: torch.Tensor, labels: torch.Tensor, count: int,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` random digits (uint8 (N, 28, 28), ink light) redrawn with another shape, the way the reader
    sees any mark: binarised at RESHAPE_SCALE× size, their box stretched to a square (as forms and scans
    often normalise digits) or to a random aspect between half and twice as wide, then cropped by
    crops.mnist_crops, which brings back MNIST's stroke width. With their labels."""
    index = torch.randperm(len(images), generator=generator)[:count]
    big = binary_masks(images[index])
    square = torch.rand(len(index), generator=generator) < 0.5
    aspect = torch.exp(math.log(2.0) * _uniform(len(index), -1.0, 1.0, generator))
    masks = []
    for mask, to_square, wider in zip(big, square, aspect):
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        if len(rows) == 0:
            masks.append(mask.numpy())
            continue
        shape = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].float()[None, None]
        h, w = shape.shape[-2:]
        width = h if to_square else max(1, round(float(w * wider)))
        masks.append((F.interpolate(shape, size=(h, width), mode="bilinear", align_corners=False)[0, 0] > 0.5).numpy())
    crops = mnist_crops(masks)[:, 0] if masks else torch.zeros(0, 28, 28)
    return (crops * 255).round().to(torch.uint8), labels[index]
