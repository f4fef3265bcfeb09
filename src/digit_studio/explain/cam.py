"""Class activation maps: the shared machinery of Grad-CAM, Grad-CAM++ and HiResCAM.

One forward pass captures the target layer's activations A (B, C, h, w); one backward pass from the
objective to A (not further, and no parameter gradients) gives dS/dA. Each method only says how to
combine the two into an (B, h, w) map; the map is rectified and upsampled to 28×28 bilinearly, which
is what pytorch-grad-cam does, so that the maps can be compared with it number for number.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from digit_studio.errors import DigitStudioError
from digit_studio.explain.base import IMAGE_SIZE, Attribution, Method, Select

# DigitCNN's layers that a map can be taken from, coarse to fine, with their map sizes:
# stages.2 = last conv block (7×7, 88 channels), stages.2.0 (7×7, 64), stages.1 (after pooling, 7×7, 48),
# stages.1.1 (14×14, 48), stages.1.0 (14×14, 32), stages.0 (after pooling, 14×14, 16), stages.0.0 (28×28, 16).
CANDIDATE_LAYERS = ("stages.2", "stages.2.0", "stages.1", "stages.1.1", "stages.1.0", "stages.0", "stages.0.0")

# Chosen by faithfulness over 1,000 test digits (bench/explain_quality.py, results/bench/explain_quality.json):
# the layer whose Grad-CAM maps have the largest mean insertion AUC minus deletion AUC.
DEFAULT_LAYER = "stages.2"


@contextmanager
def captured_activations(model: nn.Module, layer: str) -> Iterator[list[torch.Tensor]]:
    """Hook `layer` for the duration of the block; yields the list its activations are appended to.

    The hook swaps the layer's output for a detached leaf that requires grad, so the backward pass stops
    at the layer, and switches autograd on for the rest of the pass: the pass up to the layer can run
    without recording a graph (under torch.no_grad()), which halves the time of a map. It only acts in the
    thread that opened the block (grad mode is per thread too): another thread's forward pass through the
    same model is left alone. The hook is removed however the block ends.
    """
    try:
        module = model.get_submodule(layer)
    except AttributeError:
        raise DigitStudioError(
            f"target layer '{layer}' is not a module of {type(model).__name__}; "
            f"candidates: {', '.join(CANDIDATE_LAYERS)}"
        ) from None
    owner = threading.get_ident()
    store: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if threading.get_ident() != owner:
            return None
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise DigitStudioError(f"layer '{layer}' outputs {shape}; a map needs a convolutional layer's (B, C, H, W)")
        leaf = output.detach().requires_grad_()
        store.append(leaf)
        torch.set_grad_enabled(True)  # the caller's no_grad() block restores its mode when it ends
        return leaf

    handle = module.register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


class CAM(Method):
    """A class activation map at `layer` (a dotted module name, e.g. 'stages.1.1')."""

    layer: str

    def attribute(self, model: nn.Module, images: torch.Tensor, select: Select) -> Attribution:
        with captured_activations(model, self.layer) as store, torch.inference_mode(False):
            with torch.no_grad():  # no graph before the layer; the hook records one from it on
                logits = model(images)
            objective = select(logits.detach())
            (activations,) = store
            with torch.enable_grad():
                (gradients,) = torch.autograd.grad(objective.score(logits).sum(), activations)
        cam = self.combine(activations.detach(), gradients).clamp(min=0)
        cam = F.interpolate(cam[:, None], size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
        return Attribution(cam[:, 0], logits.detach(), objective)

    @abstractmethod
    def combine(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """(B, h, w) map from activations and gradients of shape (B, C, h, w)."""
