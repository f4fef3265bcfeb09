"""Training augmentation: seeded, and the pen-lift band cuts strokes where it says."""

from __future__ import annotations

import torch

from digit_studio.config import AugmentConfig
from digit_studio.training.augment import augment, random_break
from digit_studio.training.data import Split


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
