"""Sanity checks for saliency maps (Adebayo et al., 2018): a map that explains the model must change
when the model's knowledge is taken away.

- Cascading randomisation: re-initialise the layers from the top (head) down, one block at a time; the
  maps should stop resembling the trained model's.
- Data randomisation: a model trained on shuffled labels has learnt nothing about digits; its maps
  should resemble a model trained on the true labels much less than two models trained on the true
  labels (from the same start, in different data orders) resemble each other.

Resemblance is the Spearman rank correlation of two maps, averaged over digits. A check passes when it
is at most half the reference's: the trained model's maps with themselves (1) for the cascade, two
true-label models' maps with each other for the labels.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from digit_studio.config import ClassifierConfig, ClassifierModelConfig, ClassifierTrainingConfig
from digit_studio.explain import Method, TargetSpec, explain
from digit_studio.models.classifier import DigitCNN
from digit_studio.training.classifier import ClassifierTask
from digit_studio.training.data import Split
from digit_studio.training.loop import make_optimizer, make_scheduler, train_epoch

WELL_BELOW = 0.5  # a randomised model's maps may keep at most this fraction of the reference resemblance


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """(B,) Spearman correlation of each pair of maps (B, H, W); 0 where a map is constant (a map that
    lost all structure no longer resembles anything)."""
    ranks_a = rankdata(a.flatten(1).cpu().numpy(), axis=1)
    ranks_b = rankdata(b.flatten(1).cpu().numpy(), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pairs = np.corrcoef(ranks_a, ranks_b)[: len(ranks_a), len(ranks_a) :].diagonal()
    return np.nan_to_num(pairs, nan=0.0)


def weight_blocks(model: nn.Module) -> list[str]:
    """The model's blocks with weights, from the output down: 'head', then each conv block."""
    blocks = [
        name for name, module in model.named_modules()
        if isinstance(module, nn.Linear) or any(isinstance(child, nn.Conv2d) for child in module.children())
    ]
    return blocks[::-1]


def cascading_randomization(
    model: nn.Module, images: torch.Tensor, method: str | Method, target: TargetSpec, seed: int = 0,
    **options: object,
) -> dict[str, float]:
    """Mean rank correlation with the trained model's maps after re-initialising each block from the
    top down (cumulatively), keyed by the last block re-initialised."""
    reference = explain(model, images, method, target, faithfulness_steps=None, **options).maps
    randomized = copy.deepcopy(model)
    result: dict[str, float] = {}
    with torch.random.fork_rng():  # reset_parameters draws from the global generator
        torch.manual_seed(seed)
        for block in weight_blocks(randomized):
            for module in randomized.get_submodule(block).modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
            maps = explain(randomized, images, method, target, faithfulness_steps=None, **options).maps
            result[block] = float(rank_correlation(reference, maps).mean())
    return result


def train_briefly(
    start: nn.Module, train: Split, steps: int, seed: int, config: ClassifierConfig
) -> nn.Module:
    """A copy of `start` trained for `steps` optimiser steps by the project's own training loop."""
    model = copy.deepcopy(start)
    t = config.training
    optimizer = make_optimizer(model, t.lr, t.weight_decay)
    scheduler = make_scheduler(optimizer, t.schedule, t.lr, steps)
    generator = torch.Generator().manual_seed(seed)
    task = ClassifierTask(train, config, torch.device("cpu"))
    train_epoch(model, task, optimizer, scheduler, generator, t.batch_size, steps, "sanity")
    return model.eval()


def label_randomization_models(
    train: Split, steps: int = 150, seed: int = 0, model_config: ClassifierModelConfig | None = None,
) -> tuple[nn.Module, nn.Module, nn.Module]:
    """Three small classifiers from one initialisation: two trained on the true labels in different data
    orders, one on shuffled labels, each for `steps` steps."""
    config = ClassifierConfig(
        model=model_config or ClassifierModelConfig(stages=[[8], [16, 16], [32, 32]], dropout=0.0),
        training=replace(ClassifierTrainingConfig(), batch_size=64, epochs=1, schedule="cosine"),
    )
    with torch.random.fork_rng():  # the initialisation draws from the global generator
        torch.manual_seed(seed)
        start = DigitCNN(config.model)
    shuffle = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    shuffled = Split(train.images, train.labels[shuffle])
    return (
        train_briefly(start, train, steps, seed, config),
        train_briefly(start, train, steps, seed + 1, config),
        train_briefly(start, shuffled, steps, seed, config),
    )


def label_randomization(
    models: tuple[nn.Module, nn.Module, nn.Module], images: torch.Tensor, labels: torch.Tensor,
    method: str | Method, **options: object,
) -> dict[str, float]:
    """Mean rank correlation of the true-label model's maps (of the true class) with the other
    true-label model's ('true_vs_true') and with the shuffled-label model's ('true_vs_shuffled')."""
    maps = [explain(m, images, method, labels, faithfulness_steps=None, **options).maps for m in models]
    return {
        "true_vs_true": float(rank_correlation(maps[0], maps[1]).mean()),
        "true_vs_shuffled": float(rank_correlation(maps[0], maps[2]).mean()),
    }


def passes_cascading(correlations: dict[str, float]) -> bool:
    """Every step of the cascade stays well below the trained model's resemblance with itself (1)."""
    return max(correlations.values()) <= WELL_BELOW


def passes_label_randomization(correlations: dict[str, float]) -> bool:
    return correlations["true_vs_shuffled"] <= WELL_BELOW * correlations["true_vs_true"]
