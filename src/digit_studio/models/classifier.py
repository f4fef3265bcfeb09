"""A compact MNIST classifier: conv-BN-ReLU stages, global average pooling, dropout, one linear head.

Input: (B, 1, 28, 28) floats in [0, 1], ink light on dark (MNIST's convention). The model normalises
internally so that every caller (reader, explainers, VAE checks) feeds the same raw pixel range.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from digit_studio.checkpoint import load_weights, read_checkpoint
from digit_studio.config import ClassifierModelConfig, from_dict
from digit_studio.errors import CheckpointError, ConfigError

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
M = TypeVar("M", bound=nn.Module)


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),  # not in-place: explanation hooks read these activations
    )


def reading_form(model: M) -> M:
    """An eval-mode copy of `model` for reading and explaining, never training: the BatchNorm of each
    conv_bn_relu block folded into its convolution and the ReLU in place. The line model's copies of a line
    run about 1.6x faster so on the CPU (normalising and copying each activation cost about as much as the
    convolutions); outputs move by less than 1e-3. Explanation hooks take a block's output, never the
    convolution's alone, so they see the same activations. A model already in this form is copied as it is."""
    fast = copy.deepcopy(model).eval()
    for block in fast.modules():
        if isinstance(block, nn.Sequential) and len(block) == 3 and isinstance(block[1], nn.BatchNorm2d):
            block[0], block[1], block[2] = fuse_conv_bn_eval(block[0], block[1]), nn.Identity(), nn.ReLU(True)
    return fast


class DigitCNN(nn.Module):
    """Stages of 3×3 convolutions; every stage but the last ends with 2×2 max pooling (28→14→7)."""

    def __init__(self, config: ClassifierModelConfig, num_classes: int = 10) -> None:
        super().__init__()
        self.config = config
        stages: list[nn.Module] = []
        c_in = 1
        for i, widths in enumerate(config.stages):
            layers: list[nn.Module] = []
            for c_out in widths:
                layers.append(conv_bn_relu(c_in, c_out))
                c_in = c_out
            if i < len(config.stages) - 1:
                layers.append(nn.MaxPool2d(2))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - MNIST_MEAN) / MNIST_STD
        x = self.pool(self.stages(x)).flatten(1)
        return self.head(self.dropout(x))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> tuple[DigitCNN, dict]:
    """Load a classifier checkpoint (safetensors, no pickle) in eval mode, with its metadata."""
    tensors, meta = read_checkpoint(path, kind="classifier")
    try:
        config = from_dict(ClassifierModelConfig, meta["model_config"], prefix="model.")
    except (KeyError, ConfigError) as exc:
        raise CheckpointError(f"{path} has no usable model config in its metadata ({exc})") from None
    model = DigitCNN(config)
    load_weights(model, tensors, path)
    return model.to(device).eval(), meta
