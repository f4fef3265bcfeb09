"""Occlusion (Zeiler & Fergus, 2014): blank out a square window slid over the digit and record how much the
score drops; each pixel gets the mean drop of the windows covering it. All window positions of all
digits, and the digits themselves, go through the model as one batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from digit_studio.errors import DigitStudioError
from digit_studio.explain.base import IMAGE_SIZE, Attribution, Method, Select


@dataclass(frozen=True)
class Occlusion(Method):
    window: int = 4
    stride: int = 2
    fill: float = 0.0  # value of an occluded pixel; 0 = blank paper
    name = "occlusion"

    def __post_init__(self) -> None:
        integers = isinstance(self.window, int) and isinstance(self.stride, int)
        if not (integers and 1 <= self.stride <= self.window <= IMAGE_SIZE):
            raise DigitStudioError(
                f"occlusion needs 1 <= stride <= window <= {IMAGE_SIZE} (so that every pixel is covered); "
                f"got window={self.window!r}, stride={self.stride!r}"
            )

    def windows(self, like: torch.Tensor) -> torch.Tensor:
        """(P, 28, 28) masks of the window positions; windows at the last position are cut at the border."""
        shifts = -(-(IMAGE_SIZE - self.window) // self.stride) + 1
        starts = torch.arange(shifts, device=like.device) * self.stride
        pixels = torch.arange(IMAGE_SIZE, device=like.device)
        inside = (pixels >= starts[:, None]) & (pixels < starts[:, None] + self.window)  # (shifts, 28)
        return (inside[:, None, :, None] & inside[None, :, None, :]).flatten(0, 1).to(like.dtype)

    def attribute(self, model: nn.Module, images: torch.Tensor, select: Select) -> Attribution:
        masks = self.windows(images)[:, None]  # (P, 1, 28, 28)
        occluded = images * (1 - masks[:, None]) + self.fill * masks[:, None]  # (P, B, 1, 28, 28), position-major
        with torch.inference_mode():
            outputs = model(torch.cat([images, occluded.flatten(0, 1)]))
            logits = outputs[: len(images)]
            objective = select(logits)
            drop = objective.score(logits) - objective.score(outputs[len(images) :]).view(len(masks), -1)
        attributions = torch.einsum("pb,phw->bhw", drop, masks[:, 0]) / masks[:, 0].sum(0)
        return Attribution(attributions, logits, objective)
