"""MNIST-style crops: any binary symbol mask in, the classifier's 28×28 input out.

MNIST was made by fitting each binary NIST digit into a 20×20 box (keeping its aspect ratio, with
anti-aliasing) and centring it by centre of mass in 28×28. A sketchpad brush is usually much thicker
relative to the digit than MNIST's pen (and a fine pen thinner), so before that the stroke width is
brought to MNIST's at three times MNIST's resolution. The grey-level dilation and erosion used for that
are the ones training augmentation uses to thicken and thin MNIST strokes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

SIZE, BOX = 28, 20  # MNIST: 28×28 image, digit fitted in a 20×20 box
NORM = 3 * BOX  # longer side at which the stroke width is normalised
PAD = 6  # room for thickening around the fitted symbol
# Median stroke width of MNIST training digits at that scale (`stroke_width` of 3× bilinear upsamples
# binarised at 0.5); a test checks it against the data.
MNIST_STROKE = 5.9
THIN_ABOVE = 1.2  # strokes wider than this many MNIST widths are thinned (the classifier was trained
# on thickened MNIST too, so moderately thick strokes are read best as they are)
MAX_STEPS = 12  # bound on morphology steps (each changes the width by 2 px)
MAX_LOSS = 0.45  # an erosion step removing more of the ink than this would break strokes: stop


def _max3(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Maximum over each pixel and its two neighbours along `dim` (-1 or -2), edges padded with -inf:
    exactly F.max_pool2d with kernel 3, stride 1, padding 1 along that axis, but ~25× faster on the CPU
    (max_pool2d has no fast path for stride 1)."""
    n = x.shape[dim]
    padded = F.pad(x, (1, 1) if dim == -1 else (0, 0, 1, 1), value=float("-inf"))
    return torch.maximum(torch.maximum(padded.narrow(dim, 0, n), padded.narrow(dim, 1, n)), padded.narrow(dim, 2, n))


def _morph_step(x: torch.Tensor, step: int) -> torch.Tensor:
    """One 3×3 grey-level dilation; even steps use a square, odd steps a cross, so repeated steps grow an
    octagon, closer to a round brush than a square (which would thin diagonal strokes √2 times faster)."""
    across = _max3(x, -1)
    return _max3(across, -2) if step % 2 == 0 else torch.maximum(across, _max3(x, -2))


def dilate(x: torch.Tensor, steps: int | torch.Tensor = 1) -> torch.Tensor:
    """Grey-level dilation of (B, 1, H, W); `steps` per image (a (B,) tensor) or for all. One step widens a
    stroke by one pixel on each side."""
    steps = torch.as_tensor(steps).expand(x.shape[0]).view(-1, 1, 1, 1)
    for step in range(int(steps.max()) if steps.numel() else 0):
        x = torch.where(steps > step, _morph_step(x, step), x)
    return x


def erode(x: torch.Tensor, steps: int | torch.Tensor = 1) -> torch.Tensor:
    """Grey-level erosion, the dual of `dilate`: one step thins a stroke by one pixel on each side."""
    return -dilate(-x, steps)


def stroke_width(x: torch.Tensor) -> torch.Tensor:
    """Mean stroke width in pixels of each binary image of (B, 1, H, W): for a stroke of length L and width
    w, area ≈ L·w while one erosion step removes ≈ 2L pixels, so w ≈ 2·area / removed."""
    area = x.sum((1, 2, 3))
    removed = area - erode(x).sum((1, 2, 3))
    return 2 * area / removed.clamp(min=1)


def _fit(mask: torch.Tensor, side: int) -> torch.Tensor:
    """Resize a (1, 1, h, w) float mask so that its longer side is `side`, keeping the aspect ratio."""
    h, w = mask.shape[-2:]
    scale = side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    mode = "area" if scale < 1 else "bilinear"
    return F.interpolate(mask, size=size, mode=mode, **({} if mode == "area" else {"align_corners": False}))


def _normalise_strokes(masks: Sequence[np.ndarray]) -> torch.Tensor:
    """Fit every mask into NORM×NORM on a padded canvas and thin or thicken it to MNIST's stroke width.

    Thick strokes are eroded one step at a time while the estimated width is still above MNIST's
    (junctions make a single estimate overshoot), and never by a step that would remove most of the
    ink: that would cut a thinner stroke of the same symbol.
    """
    canvas = torch.zeros(len(masks), 1, NORM + 2 * PAD, NORM + 2 * PAD)
    for i, mask in enumerate(masks):
        # A low threshold keeps strokes thinner than the downscaling factor; the width is fixed next.
        fitted = _fit(torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None], NORM) > 0.3
        h, w = fitted.shape[-2:]
        top, left = PAD + (NORM - h) // 2, PAD + (NORM - w) // 2
        canvas[i, :, top : top + h, left : left + w] = fitted[0]
    area = canvas.sum((1, 2, 3))
    width = stroke_width(canvas)
    thicken = ((MNIST_STROKE - width) / 2).round().clamp(0, PAD).long()
    for step in range(MAX_STEPS):
        thinner = -_morph_step(-canvas, step)
        thinner_area = thinner.sum((1, 2, 3))
        go = (width > THIN_ABOVE * MNIST_STROKE) & (thinner_area >= (1 - MAX_LOSS) * area)
        if not go.any():
            break
        canvas = torch.where(go.view(-1, 1, 1, 1), thinner, canvas)
        area = torch.where(go, thinner_area, area)
        width = torch.where(go, stroke_width(canvas), width)
    return dilate(canvas, thicken)


def _centre(digit: torch.Tensor) -> torch.Tensor:
    """Place a (h, w) grey digit (h, w ≤ BOX) in SIZE×SIZE with its centre of mass at the centre."""
    h, w = digit.shape
    total = digit.sum().clamp(min=1e-6)
    cy = (digit.sum(1) * torch.arange(h)).sum() / total
    cx = (digit.sum(0) * torch.arange(w)).sum() / total
    top = min(max(round(SIZE / 2 - 0.5 - float(cy)), 0), SIZE - h)
    left = min(max(round(SIZE / 2 - 0.5 - float(cx)), 0), SIZE - w)
    out = torch.zeros(SIZE, SIZE)
    out[top : top + h, left : left + w] = digit
    return out


def mnist_crops(masks: Sequence[np.ndarray]) -> torch.Tensor:
    """Binary symbol masks (any sizes, ink True) → (N, 1, 28, 28) floats in [0, 1], ink light on dark,
    the way MNIST digits look: 20×20 box, centre of mass centred, MNIST's stroke width."""
    if not masks:
        return torch.zeros(0, 1, SIZE, SIZE)
    normalised = _normalise_strokes(masks)
    crops = torch.zeros(len(masks), 1, SIZE, SIZE)
    for i, image in enumerate(normalised[:, 0]):
        rows, cols = image.any(1).nonzero().flatten(), image.any(0).nonzero().flatten()
        if len(rows) == 0:
            continue
        shape = image[int(rows[0]) : int(rows[-1]) + 1, int(cols[0]) : int(cols[-1]) + 1]
        crops[i, 0] = _centre(_fit(shape[None, None], BOX)[0, 0].clamp(0, 1))
    return crops


def squeezed(mask: np.ndarray, aspect: float) -> np.ndarray:
    """A binary mask squeezed to `aspect` times as wide as it is tall (area-averaged, binarised at half)."""
    h = mask.shape[0]
    narrow = F.interpolate(torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None],
                           size=(h, max(1, round(aspect * h))), mode="area")
    return (narrow[0, 0] > 0.5).numpy()
