"""Does a map tell the truth? Deletion and insertion curves (Petsiuk et al., 2018, RISE), batched.

Deletion blanks the digit's pixels in the map's order, most important first, and follows the explained
score (the target's probability, minus the contrast class's for a contrastive map): a faithful map makes
it fall fast (low area under the curve). Insertion draws the pixels onto blank paper in the same order:
a faithful map makes it rise fast (high area). The same curves for a random order are the bar a map has
to clear. Ties in a map (e.g. the zeros of a rectified map) are broken at random.

Blanking a pixel that is already blank changes nothing, so the curves are sampled at equal fractions of
the digit's ink (about 140 of 784 pixels in MNIST) rather than of all pixels, and the random order is a
random order of the ink. This spends every model evaluation on a step that changes the image, and makes
the bar honest: a map earns no credit merely for telling ink from background, which any edge detector
can do; it has to rank the strokes by what the network actually uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from digit_studio.explain.base import Objective

DEFAULT_STEPS = 10  # points along each curve after the start: 10 % of the ink per step


@dataclass(frozen=True)
class Faithfulness:
    """Curves of shape (B, steps + 1) from 0 to 100 % of the ink; areas are means over that axis."""

    deletion: torch.Tensor
    insertion: torch.Tensor
    random_deletion: torch.Tensor
    random_insertion: torch.Tensor

    @staticmethod
    def area(curve: torch.Tensor) -> torch.Tensor:
        return torch.trapezoid(curve, dx=1 / (curve.shape[-1] - 1), dim=-1)

    @property
    def deletion_auc(self) -> torch.Tensor:  # lower is better
        return self.area(self.deletion)

    @property
    def insertion_auc(self) -> torch.Tensor:  # higher is better
        return self.area(self.insertion)

    @property
    def random_deletion_auc(self) -> torch.Tensor:
        return self.area(self.random_deletion)

    @property
    def random_insertion_auc(self) -> torch.Tensor:
        return self.area(self.random_insertion)

    def summary(self, i: int) -> dict[str, float]:
        """Item i's four areas, rounded to 4 places: what the studio and its API report."""
        areas = {"deletion_auc": self.deletion_auc, "random_deletion_auc": self.random_deletion_auc,
                 "insertion_auc": self.insertion_auc, "random_insertion_auc": self.random_insertion_auc}
        return {name: round(float(area[i]), 4) for name, area in areas.items()}


def ink_ranks(importance: torch.Tensor, ink: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(B, N) position of every pixel in the order of decreasing `importance` (B, N), ink pixels first;
    ties in random order."""
    importance = importance.float().masked_fill(~ink, -torch.inf)
    shuffle = torch.rand(importance.shape, generator=generator).argsort(1).to(importance.device)
    order = shuffle.gather(1, importance.gather(1, shuffle).argsort(dim=1, descending=True, stable=True))
    return order.argsort(1)


def map_and_random_ranks(importance: torch.Tensor, ink: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ranks (`ink_ranks`) of the ink in the order of `importance` (B, N) and in a random order, both from one
    generator seeded per call (no random state shared between threads). `ink` is (B, N), or (1, N) where
    every map is of the same image: then the maps share one random order, (1, N)."""
    generator = torch.Generator().manual_seed(seed)
    random_importance = torch.rand(ink.shape, generator=generator).to(ink.device)
    return ink_ranks(importance, ink, generator), ink_ranks(random_importance, ink, generator)


def probes(flat: torch.Tensor, ranks: torch.Tensor, steps: int, fill: float = 0.0) -> torch.Tensor:
    """(B, 2, R, steps - 1, N): each image of `flat` (B, N) with 1/steps ... (steps-1)/steps of its ink
    blanked (index 0, deletion) or drawn onto blank paper (1, insertion), in each of the R pixel orders
    `ranks` (B, R, N) from `ink_ranks`. The two ends of the curves (intact image, blank paper) are left out:
    every order shares them."""
    ink = (flat != fill).sum(1, keepdim=True)
    fractions = torch.arange(1, steps, device=flat.device) / steps
    counts = (fractions * ink).round()  # (B, steps - 1) ink pixels gone (deletion) or drawn (insertion)
    chosen = ranks[:, :, None, :] < counts[:, None, :, None]  # (B, R, steps - 1, N)
    image = flat[:, None, None, :]
    return torch.stack([torch.where(chosen, fill, image), torch.where(chosen, image, fill)], 1)


def assemble(intact: torch.Tensor, blank: torch.Tensor, inner: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Deletion and insertion curves (B, R, steps + 1) from the scores of the intact images (B,), of blank
    paper (B,) and of the `probes` (B, 2, R, steps - 1)."""
    orders = inner.shape[2]
    intact, blank = (end[:, None, None].expand(-1, orders, 1) for end in (intact, blank))
    return torch.cat([intact, inner[:, 0], blank], -1), torch.cat([blank, inner[:, 1], intact], -1)


@torch.inference_mode()
def curves(
    model: nn.Module, images: torch.Tensor, probabilities: torch.Tensor, ranks: torch.Tensor,
    objective: Objective, steps: int, fill: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deletion and insertion curves (B, R, steps + 1) for R pixel orders per digit, given as `ranks`
    (B, R, N) from `ink_ranks`; `probabilities` are the intact digits'. All the partly drawn digits go
    through the model as one batch, with one blank page."""
    batch, orders, _ = ranks.shape
    probed = probes(images.flatten(1), ranks, steps, fill)
    probed = torch.cat([probed.reshape(-1, *images.shape[1:]), torch.full_like(images[:1], fill)])
    probed_probabilities = model(probed).softmax(1)
    sample = torch.arange(batch, device=images.device).repeat_interleave(2 * orders * (steps - 1))
    inner = objective.score(probed_probabilities[:-1], sample).view(batch, 2, orders, steps - 1)
    blank = objective.score(probed_probabilities[-1:].expand(batch, -1))
    return assemble(objective.score(probabilities), blank, inner)


def faithfulness(
    model: nn.Module, images: torch.Tensor, logits: torch.Tensor, attributions: torch.Tensor,
    objective: Objective, steps: int = DEFAULT_STEPS, seed: int = 0, fill: float = 0.0,
) -> Faithfulness:
    """Deletion/insertion curves of `attributions` (B, 28, 28) and of one random ink order per digit."""
    ranks = torch.stack(map_and_random_ranks(attributions.flatten(1), images.flatten(1) != fill, seed), 1)
    deletion, insertion = curves(model, images, logits.softmax(1), ranks, objective, steps, fill)
    return Faithfulness(deletion[:, 0], insertion[:, 0], deletion[:, 1], insertion[:, 1])
