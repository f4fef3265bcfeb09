"""Integrated Gradients (Sundararajan et al., 2017): the gradient averaged along the straight path from a
baseline to the digit, times the difference; the attributions add up to the score's change along the
path. The path integral uses Gauss-Legendre quadrature (Captum's default rule), all steps of all
digits (and the digits themselves, for their prediction) in one forward and one backward pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from digit_studio.errors import DigitStudioError
from digit_studio.explain.base import Attribution, Method, Select


@dataclass(frozen=True)
class IntegratedGradients(Method):
    steps: int = 32
    baseline: float | torch.Tensor = 0.0  # a value, or an image broadcastable to (B, 1, 28, 28); 0 = blank paper
    name = "integrated_gradients"

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise DigitStudioError(f"integrated gradients needs steps >= 1, got {self.steps!r}")

    def attribute(self, model: nn.Module, images: torch.Tensor, select: Select) -> Attribution:
        nodes, weights = np.polynomial.legendre.leggauss(self.steps)  # on [-1, 1]; rescaled to [0, 1]
        alphas = torch.as_tensor((nodes + 1) / 2, dtype=images.dtype, device=images.device)
        weights = torch.as_tensor(weights / 2, dtype=images.dtype, device=images.device)
        baseline = torch.as_tensor(self.baseline, dtype=images.dtype, device=images.device)
        delta = images - baseline
        with torch.inference_mode(False), torch.enable_grad():
            path = (baseline + alphas.view(-1, 1, 1, 1, 1) * delta).flatten(0, 1).requires_grad_()  # step-major
            outputs = model(torch.cat([path, images]))  # the digits ride along to give their own logits
            logits = outputs[len(path) :].detach()
            objective = select(logits)
            (gradients,) = torch.autograd.grad(objective.score(outputs[: len(path)]).sum(), path)
        mean_gradient = torch.einsum("s,sbchw->bchw", weights, gradients.view(self.steps, *images.shape))
        return Attribution((mean_gradient * delta)[:, 0], logits, objective)
