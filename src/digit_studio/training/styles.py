"""Ways people write digits that MNIST rarely shows, drawn onto MNIST digits.

A slashed zero, a European 1 (a flag, sometimes a base), a crossed 7, an open-top 4, a 9 with a straight
stem, a 2 with a loop, a 6 and a 9 with a curl: each is a few pen strokes added to (or a band erased from)
a digit of that class, placed by the digit's own ink (its box, its top and bottom, the stem's position).
Everything works on a batch of 28×28 images (ink light on dark) at once. Training augmentation draws these
onto MNIST training digits; the benchmark's "styles" category draws them onto MNIST test digits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from digit_studio.reading.crops import stroke_width

FAR = -1e4  # where unused segment ends lie: no pixel is near them


@dataclass(frozen=True)
class _Ink:
    """Where each image's ink is: box (inclusive rows and columns), its top and bottom points' columns."""

    ink: torch.Tensor  # (B, H, W) bool
    x0: torch.Tensor
    x1: torch.Tensor
    y0: torch.Tensor
    y1: torch.Tensor
    top_x: torch.Tensor
    bottom_x: torch.Tensor

    @property
    def height(self) -> torch.Tensor:
        return (self.y1 - self.y0 + 1).float()

    def row(self, y: torch.Tensor) -> torch.Tensor:
        """(B, W) ink of row y[b] of each image (clamped into the image)."""
        y = y.round().long().clamp(0, self.ink.shape[1] - 1)
        return self.ink[torch.arange(len(y)), y]


def _first(flags: torch.Tensor) -> torch.Tensor:
    return flags.int().argmax(1)


def _last(flags: torch.Tensor) -> torch.Tensor:
    return flags.shape[1] - 1 - flags.flip(1).int().argmax(1)


def _mean_x(row: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    xs = torch.arange(row.shape[1], dtype=torch.float32)
    count = row.sum(1)
    return torch.where(count > 0, (row * xs).sum(1) / count.clamp(min=1), fallback)


def _geometry(x: torch.Tensor) -> _Ink:
    ink = x[:, 0] > 0.5
    rows, cols = ink.any(2), ink.any(1)
    y0, y1, x0, x1 = _first(rows), _last(rows), _first(cols), _last(cols)
    centre = (x0 + x1).float() / 2
    top = _mean_x(ink[torch.arange(len(x)), y0], centre)
    bottom = _mean_x(ink[torch.arange(len(x)), y1], centre)
    return _Ink(ink, x0.float(), x1.float(), y0.float(), y1.float(), top, bottom)


def _u(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def _arc(cx: torch.Tensor, cy: torch.Tensor, rx: torch.Tensor, ry: torch.Tensor, start: float, stop: float,
         pieces: int) -> torch.Tensor:
    """(B, pieces, 2, 2) segments along an elliptical arc (radii rx, ry) from angle `start` to `stop`
    (radians, counter-clockwise as seen on screen: y grows downwards)."""
    angles = torch.linspace(start, stop, pieces + 1)
    xs = cx[:, None] + rx[:, None] * torch.cos(angles)
    ys = cy[:, None] - ry[:, None] * torch.sin(angles)
    points = torch.stack([xs, ys], -1)
    return torch.stack([points[:, :-1], points[:, 1:]], 2)


def _segment(ax, ay, bx, by) -> torch.Tensor:
    """(B, 1, 2, 2): one segment per image."""
    return torch.stack([torch.stack([ax, ay], -1), torch.stack([bx, by], -1)], 1)[:, None]


# Each style: (geometry, generator) → (segments (B, K, 2, 2) of (x, y) ends to draw, keep (B, H, W) or None).
Style = Callable[[_Ink, torch.Generator], tuple[torch.Tensor, torch.Tensor | None]]


def slashed_zero(g: _Ink, gen: torch.Generator) -> tuple[torch.Tensor, None]:
    n = len(g.x0)
    ext = [_u(n, -1.0, 2.0, gen) for _ in range(4)]
    forward = torch.rand(n, generator=gen) < 0.75  # "/" more often than "\"
    top_x = torch.where(forward, g.x1 + ext[0], g.x0 - ext[0])
    bottom_x = torch.where(forward, g.x0 - ext[2], g.x1 + ext[2])
    return _segment(top_x, g.y0 - ext[1], bottom_x, g.y1 + ext[3]), None


def european_one(g: _Ink, gen: torch.Generator) -> tuple[torch.Tensor, None]:
    """A long up-stroke (the flag) into the top; most also stand on a base, whole or a foot to one side."""
    n = len(g.x0)
    length, angle = g.height * _u(n, 0.25, 0.6, gen), torch.deg2rad(_u(n, 15.0, 60.0, gen))
    flag = _segment(g.top_x, g.y0, g.top_x - length * torch.cos(angle), g.y0 + length * torch.sin(angle))
    kind = torch.rand(n, generator=gen)  # < 0.4 a whole base, < 0.55 a foot to the left, < 0.7 to the right
    left = torch.where(kind < 0.55, g.height * _u(n, 0.15, 0.3, gen), torch.zeros(n))
    right = torch.where((kind < 0.4) | ((kind >= 0.55) & (kind < 0.7)), g.height * _u(n, 0.15, 0.3, gen), torch.zeros(n))
    base_y = torch.where(kind < 0.7, g.y1 + _u(n, -0.5, 1.0, gen), torch.full_like(g.y1, FAR))
    base = _segment(g.bottom_x - left, base_y, g.bottom_x + right, base_y)
    return torch.cat([flag, base], 1), None


def crossed_seven(g: _Ink, gen: torch.Generator) -> tuple[torch.Tensor, None]:
    n = len(g.x0)
    y = g.y0 + g.height * _u(n, 0.4, 0.6, gen)
    stem = _mean_x(g.row(y), (g.x0 + g.x1) / 2)
    left, right, tilt = g.height * _u(n, 0.12, 0.25, gen), g.height * _u(n, 0.12, 0.25, gen), _u(n, -1.0, 1.0, gen)
    return _segment(stem - left, y + tilt, stem + right, y - tilt), None


def open_four(g: _Ink, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Erase the top of the left arm, left of the stem's top: the two strokes no longer meet."""
    n, (h, w) = len(g.x0), g.ink.shape[1:]
    below = g.y0 + g.height * _u(n, 0.1, 0.25, gen)
    stem = torch.where(g.row(g.y0).any(1), _last(g.row(g.y0)).float(), g.x1)
    yy, xx = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    erase = (yy < below.view(n, 1, 1)) & (xx < (stem - 1.5).view(n, 1, 1))
    return torch.full((n, 1, 2, 2), FAR), ~erase


def straight_nine(g: _Ink, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the loop, replace what hangs below it with a straight stem from the loop's right side."""
    n, (h, _) = len(g.x0), g.ink.shape[1:]
    cut = g.y0 + g.height * _u(n, 0.45, 0.6, gen)
    row = g.row(cut)
    right = torch.where(row.any(1), _last(row).float(), g.x1) - 0.5
    keep = torch.arange(h).view(1, h, 1) <= cut.view(n, 1, 1)
    stem = _segment(right, cut - 1, right + _u(n, -3.0, 1.0, gen), g.y1)
    return stem, keep.expand(n, h, g.ink.shape[2])


def looped_two(g: _Ink, gen: torch.Generator) -> tuple[torch.Tensor, None]:
    """A small loop where the diagonal meets the base (the ink pixel furthest down and left)."""
    n, (h, w) = len(g.x0), g.ink.shape[1:]
    yy, xx = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    corner = torch.where(g.ink, yy - xx, torch.full_like(yy - xx, -10**6)).flatten(1).argmax(1)
    cy, cx = (corner // w).float(), (corner % w).float()
    r = _u(n, 1.5, 3.0, gen)
    return _arc(cx + 0.7 * r, cy - 0.7 * r, r, r, -0.75 * math.pi, 1.25 * math.pi, 8), None


def curly_six(g: _Ink, gen: torch.Generator) -> tuple[torch.Tensor, None]:
    """The top stroke curls over to the right."""
    r = _u(len(g.x0), 2.0, 4.0, gen)
    ry = torch.minimum(r, g.y0.clamp(min=1.0))  # stay on the canvas
    return _arc(g.top_x + r, g.y0 + 0.5, r, ry, math.pi, 0.2, 6), None


def curly_nine(g: _Ink, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The stem's lower part becomes a hook that runs down and curls back up to the left, under the loop
    (a 9 written like a g)."""
    n, (h, _) = len(g.x0), g.ink.shape[1:]
    start = g.y0 + g.height * _u(n, 0.55, 0.7, gen)
    row = g.row(start)
    stem = torch.where(row.any(1), _mean_x(row, g.x1), g.x1)
    keep = torch.arange(h).view(1, h, 1) <= start.view(n, 1, 1)
    rx = g.height * _u(n, 0.15, 0.3, gen)
    ry = (g.y1 - start).clamp(min=2.0)
    hook = _arc(stem - rx, start, rx, ry, 0.0, -math.pi * _u(1, 1.0, 1.2, gen).item(), 8)
    return hook, keep.expand(n, h, g.ink.shape[2])


STYLES: dict[str, tuple[int, Style]] = {
    "slashed_zero": (0, slashed_zero),
    "european_one": (1, european_one),
    "looped_two": (2, looped_two),
    "open_four": (4, open_four),
    "curly_six": (6, curly_six),
    "crossed_seven": (7, crossed_seven),
    "straight_nine": (9, straight_nine),
    "curly_nine": (9, curly_nine),
}
STYLED_CLASSES = sorted({label for label, _ in STYLES.values()})


def _draw(segments: torch.Tensor, width: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(B, H, W) anti-aliased pen strokes `width` px wide along (B, K, 2, 2) segments."""
    h, w = shape
    p = torch.stack(torch.meshgrid(torch.arange(w, dtype=torch.float32), torch.arange(h, dtype=torch.float32),
                                   indexing="xy"), -1).view(1, 1, h, w, 2)
    a, b = segments[:, :, None, None, 0], segments[:, :, None, None, 1]
    ab = b - a
    t = (((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp(min=1e-6)).clamp(0, 1)
    distance = (p - (a + t[..., None] * ab)).norm(dim=-1).amin(1)
    return (width.view(-1, 1, 1) / 2 + 0.5 - distance).clamp(0, 1)


def stylise(x: torch.Tensor, labels: torch.Tensor, chosen: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Draw one style of its class onto each chosen image of (B, 1, H, W) whose class has one (the others
    come back unchanged); the style is picked at random among its class's styles."""
    out = x.clone()
    pick = torch.rand(len(x), generator=generator)
    for label in STYLED_CLASSES:
        names = [name for name, (cls, _) in STYLES.items() if cls == label]
        for k, name in enumerate(names):
            share = (pick >= k / len(names)) & (pick < (k + 1) / len(names))
            index = torch.nonzero(chosen & (labels == label) & share & (x.flatten(1).amax(1) > 0.5)).flatten()
            if len(index) == 0:
                continue
            images = x[index]
            segments, keep = STYLES[name][1](_geometry(images), generator)
            width = stroke_width((images > 0.5).float()).clamp(1.5, 3.5)
            ink = images[:, 0] if keep is None else images[:, 0] * keep
            out[index, 0] = torch.maximum(ink, _draw(segments, width, tuple(x.shape[-2:])))
    return out


def styled_copies(images: torch.Tensor, labels: torch.Tensor, count: int,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` digits (uint8 (N, 28, 28), ink light) of the classes with styles, picked at random, each
    drawn in one of its class's styles; with their labels."""
    candidates = torch.nonzero(torch.isin(labels, torch.tensor(STYLED_CLASSES))).flatten()
    index = candidates[torch.randperm(len(candidates), generator=generator)[:count]]
    styled = []
    for batch in index.split(1024):
        x = images[batch].unsqueeze(1).float() / 255
        styled.append(stylise(x, labels[batch], torch.ones(len(batch), dtype=torch.bool), generator))
    out = torch.cat(styled) if styled else torch.zeros(0, 1, *images.shape[1:])
    return (out[:, 0] * 255).round().to(torch.uint8), labels[index]
