"""Digits as the reader sees them when they were cut out of touching ink.

Where two digits touch, the reader's pieces come from a cut (segmentation's, or the re-cut at the line model's
alignment) that rarely follows the true boundary: a piece keeps a bit of its neighbour's stroke and loses a
bit of its own. A classifier trained on whole digits reads such crops wrongly with confidence (a 9 with the
foot of the 8 beside it read as a 4). These copies teach it what they look like: each digit drawn touching
a random neighbour on a random side, the pair cut near (not at) the line that parts them best, leaning,
mostly on the neighbour's side, and the digit's side cropped as the reader crops a piece.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from digit_studio.reading.crops import mnist_crops
from digit_studio.training.augment import binary_masks
from digit_studio.training.synth import contact_shift, tight

OVERLAP = 0.08  # a pair overlaps after first contact by up to this share of the height (the benchmark's)
BASELINE = 0.1  # the neighbour sits up to this share of the height higher or lower
SLANT = 0.3  # the cut leans up to this much (x per y) either way
MISS = (-0.02, 0.12)  # where the cut lands off the best boundary, as a share of the height (positive: into the
# neighbour). Mostly outward: a digit that loses a bit of its own ink is too often another digit (a 7 without
# the end of its bar is a flagged 1), and teaching that as the 7 made flagged 1s read as 7s
SLIVER = 0.15  # parts smaller than this share of a piece's ink are dropped: like the reader's re-cut
# (segmentation.sub_piece, which drops only parts at the cut's edges smaller than this share of the largest part)


def cut_from_pair(target: np.ndarray, neighbour: np.ndarray, on_left: bool, draws: np.ndarray) -> np.ndarray:
    """`target`'s piece (a binary mask) once it is drawn touching `neighbour` on its right (`on_left`) or
    left and the pair is cut apart; `draws` are four uniform numbers in [0, 1) (baseline, overlap, slant, miss)."""
    target, neighbour = tight(target), tight(neighbour)
    left, right = (target, neighbour) if on_left else (neighbour, target)
    height = max(left.shape[0], right.shape[0])
    right_top = left.shape[0] - right.shape[0] + round((draws[0] - 0.5) * 2 * BASELINE * height)
    shift = contact_shift(left, 0, right, right_top)
    x = left.shape[1] if shift is None else max(shift - round(draws[1] * OVERLAP * height), 1)
    top = min(0, right_top)
    rows = max(left.shape[0], right_top + right.shape[0]) - top
    owner = np.zeros((rows, max(left.shape[1], x + right.shape[1])), np.int8)  # 1: left's ink, 2: right's
    owner[right_top - top : right_top - top + right.shape[0], x : x + right.shape[1]][right] = 2
    owner[-top : -top + left.shape[0], : left.shape[1]][left] = 1
    ys, xs = np.nonzero(owner)
    leaning = xs + (draws[2] - 0.5) * 2 * SLANT * (ys - rows / 2)  # each ink pixel's column along the cut
    # The best cut leaves fewest pixels on the wrong side: left ink at or right of it, right ink left of it.
    at = np.arange(np.floor(leaning.min()), np.ceil(leaning.max()) + 2)
    is_left = owner[ys, xs] == 1
    wrong = (leaning[is_left, None] >= at).sum(0) + (leaning[~is_left, None] < at).sum(0)
    miss = (MISS[0] + draws[3] * (MISS[1] - MISS[0])) * height
    cut = at[int(np.argmin(wrong))] + (miss if on_left else -miss)
    side = (leaning < cut) if on_left else (leaning >= cut)
    piece = np.zeros(owner.shape, bool)
    piece[ys[side], xs[side]] = True
    parts, count = ndimage.label(piece, np.ones((3, 3), bool))
    if count > 1:
        sizes = np.bincount(parts.ravel())[1:]
        piece = np.isin(parts, 1 + np.flatnonzero(sizes >= SLIVER * sizes.sum()))
    return tight(piece) if piece.any() else target


def touching_copies(images: torch.Tensor, labels: torch.Tensor, count: int,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` random digits (uint8 (N, 28, 28), ink light) each cut out of a touching pair with another random
    digit (cut_from_pair), cropped by crops.mnist_crops. With their labels."""
    index = torch.randperm(len(images), generator=generator)[:count]
    neighbours = torch.randint(len(images), (len(index),), generator=generator)
    draws = torch.rand(len(index), 5, generator=generator, dtype=torch.float64).numpy()
    masks = binary_masks(images[torch.cat([index, neighbours])]).numpy()
    kept = [k for k in range(len(index)) if masks[k].any() and masks[len(index) + k].any()]
    pieces = [cut_from_pair(masks[k], masks[len(index) + k], bool(draws[k, 0] < 0.5), draws[k, 1:]) for k in kept]
    crops = mnist_crops(pieces)[:, 0] if pieces else torch.zeros(0, 28, 28)
    return (crops * 255).round().to(torch.uint8), labels[index[kept]]
