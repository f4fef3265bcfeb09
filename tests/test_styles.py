"""Styles MNIST lacks: drawn on digits of their own class only, seeded, and visible (ink added or erased)."""

from __future__ import annotations

import pytest
import torch

from digit_studio.training.augment import reshaped_copies
from digit_studio.training.data import Split
from digit_studio.training.styles import STYLED_CLASSES, STYLES, styled_copies, stylise


@pytest.fixture(scope="module")
def batch(mnist_test: Split) -> tuple[torch.Tensor, torch.Tensor]:
    return mnist_test.batch(slice(0, 400))


def test_styles_change_only_chosen_digits_of_their_classes(batch) -> None:
    images, labels = batch
    chosen = torch.arange(len(labels)) % 2 == 0
    styled = stylise(images, labels, chosen, torch.Generator().manual_seed(0))
    changed = (styled - images).abs().flatten(1).amax(1) > 0.5
    has_style = torch.isin(labels, torch.tensor(STYLED_CLASSES))
    assert not changed[~chosen | ~has_style].any()
    assert changed[chosen & has_style].float().mean() > 0.9  # a style always shows (a rare 4 is open already)
    assert styled.min() >= 0 and styled.max() <= 1


@pytest.mark.parametrize("name", sorted(STYLES))
def test_each_style_is_seeded_and_stays_on_the_canvas(batch, name: str) -> None:
    label, _ = STYLES[name]
    images, labels = batch
    pick = labels == label
    images, labels = images[pick][:16], labels[pick][:16]
    runs = [stylise(images, labels, torch.ones(len(labels), dtype=torch.bool), torch.Generator().manual_seed(7))
            for _ in range(2)]
    assert torch.equal(*runs)
    ink = runs[0][:, 0] > 0.5
    assert ink.flatten(1).any(1).all()  # every digit keeps ink
    assert ink[:, 0].sum() + ink[:, -1].sum() + ink[:, :, 0].sum() + ink[:, :, -1].sum() < len(ink) * 4


def test_training_copies_keep_their_labels(mnist_test: Split) -> None:
    generator = torch.Generator().manual_seed(0)
    images, labels = styled_copies(mnist_test.images[:2000], mnist_test.labels[:2000], 300, generator)
    assert images.shape == (300, 28, 28) and images.dtype == torch.uint8
    assert torch.isin(labels, torch.tensor(STYLED_CLASSES)).all()
    images, labels = reshaped_copies(mnist_test.images[:2000], mnist_test.labels[:2000], 200, generator)
    assert images.shape == (200, 28, 28) and len(labels) == 200
    rows, cols = (images > 127).any(2), (images > 127).any(1)
    assert (rows.sum(1) <= 21).all() and (cols.sum(1) <= 21).all()  # fitted in MNIST's 20×20 box again
