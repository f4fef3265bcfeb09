"""Grad-CAM (Selvaraju et al., 2017): activations weighted by their spatially averaged gradients."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from digit_studio.explain.cam import CAM, DEFAULT_LAYER


@dataclass(frozen=True)
class GradCAM(CAM):
    layer: str = DEFAULT_LAYER
    name = "gradcam"

    def combine(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        weights = gradients.mean(dim=(2, 3), keepdim=True)
        return (weights * activations).sum(1)
