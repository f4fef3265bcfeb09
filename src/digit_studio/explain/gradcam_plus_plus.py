"""Grad-CAM++ (Chattopadhay et al., 2018): per-position weights from higher powers of the gradient, so that
several separate parts of a digit can all light up instead of only the strongest one."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from digit_studio.explain.cam import CAM, DEFAULT_LAYER


@dataclass(frozen=True)
class GradCAMPlusPlus(CAM):
    layer: str = DEFAULT_LAYER
    name = "gradcam++"

    def combine(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        # Equation 19 of the paper, with the exponential's derivatives taken as powers of the gradient.
        g2 = gradients.square()
        g3 = g2 * gradients
        alpha = g2 / (2 * g2 + activations.sum(dim=(2, 3), keepdim=True) * g3 + 1e-6)
        alpha = torch.where(gradients != 0, alpha, 0)
        weights = (gradients.clamp(min=0) * alpha).sum(dim=(2, 3), keepdim=True)
        return (weights * activations).sum(1)
