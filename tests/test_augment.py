"""Training augmentation: seeded, the pen-lift band cuts strokes where it says, and digits cut out of touching
pairs are mostly their own ink."""

from __future__ import annotations

import numpy as np
import torch

from digit_studio.config import AugmentConfig
from digit_studio.training.augment import augment, binary_masks, random_break
from digit_studio.training.data import Split
from digit_studio.training.touching import cut_from_pair, touching_copies


def test_same_seed_same_batch(mnist_test: Split) -> None:
    images, _ = mnist_test.batch(slice(0, 64))
    first, again = (augment(images, AugmentConfig(break_prob=0.5), torch.Generator().manual_seed(3)) for _ in range(2))
    assert torch.equal(first, again)
    assert not torch.equal(first, augment(images, AugmentConfig(break_prob=0.5), torch.Generator().manual_seed(4)))


def test_a_pen_lift_cuts_a_band_through_the_middle(mnist_test: Split) -> None:
    images, _ = mnist_test.batch(slice(0, 256))
    broken = random_break(images, AugmentConfig(break_prob=1.0), torch.Generator().manual_seed(0))
    assert torch.all(broken <= images + 1e-6)  # ink is only ever removed
    removed = (images - broken).sum((0, 1, 3))  # per row, over the batch
    assert 12 < (removed * torch.arange(28)).sum() / removed.sum() < 16  # through the middle of the digits
    assert 0.02 < 1 - broken.sum() / images.sum() < 0.3
    untouched = random_break(images, AugmentConfig(break_prob=0.0), torch.Generator().manual_seed(0))
    assert torch.equal(untouched, images)


def test_a_digit_cut_out_of_a_touching_pair(mnist_test: Split) -> None:
    masks = binary_masks(mnist_test.images[:40]).numpy()
    kept, grown = [], []
    for target, neighbour in zip(masks[:20], masks[20:]):
        for on_left in (True, False):
            # Same baseline, no overlap, upright cut: on the best boundary, 2 % of the height into the digit,
            # and 12 % into the neighbour.
            best, inward, outward = (cut_from_pair(target, neighbour, on_left, np.array((0.5, 0.0, 0.5, miss))).sum()
                                     for miss in (2 / 14, 0.0, 1.0))
            assert inward <= best <= outward
            kept.append(best / target.sum())
            grown.append(outward / best)
    assert 0.9 < np.median(kept) < 1.1  # the best boundary gives the digit back, give or take its neighbour's touch
    assert np.median(grown) > 1.05  # a cut into the neighbour leaves some of it with the digit
    digits, truth = mnist_test.images[:64], mnist_test.labels[:64]
    images, labels = touching_copies(digits, truth, 32, torch.Generator().manual_seed(1))
    again = touching_copies(digits, truth, 32, torch.Generator().manual_seed(1))
    assert images.shape == (32, 28, 28) and images.dtype == torch.uint8
    assert torch.equal(images, again[0]) and torch.equal(labels, again[1])
    assert set(labels.tolist()) <= set(truth.tolist())
