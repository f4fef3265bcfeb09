"""HiResCAM (Draelos & Carin, 2020): activations times gradients position by position, without Grad-CAM's
spatial averaging; at the last conv layer of a GAP network it is exactly the class score's share per
position, so the map cannot point where the model did not look."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from digit_studio.explain.cam import CAM, DEFAULT_LAYER


@dataclass(frozen=True)
class HiResCAM(CAM):
    layer: str = DEFAULT_LAYER
    name = "hirescam"

    def combine(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return (gradients * activations).sum(1)
