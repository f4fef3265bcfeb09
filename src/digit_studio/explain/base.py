"""What every explanation method shares: the interface, the class being explained, input checks.

Methods are small frozen dataclasses (their options) with one `attribute` call. They keep no state
between calls and never change the model (no `.eval()` toggling, no `.grad` accumulation, hooks only
for the duration of a call), so one model can serve explanations from several threads at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, NamedTuple, Union

import torch
from torch import nn

from digit_studio.errors import DigitStudioError

if TYPE_CHECKING:
    from digit_studio.explain.faithfulness import Faithfulness

IMAGE_SIZE = 28

# Which class to explain: 'predicted', 'runner_up' (second most probable), one class for every digit,
# or one class per digit.
TargetSpec = Union[str, int, Sequence[int], torch.Tensor]


@dataclass(frozen=True)
class Objective:
    """The score being explained: logit of `target`, minus the logit of `contrast` for a contrastive
    map ("why 7 and not 1"). The same rule scores probabilities in the faithfulness curves."""

    target: torch.Tensor  # (B,) int64
    contrast: torch.Tensor | None = None  # (B,) int64

    def score(self, outputs: torch.Tensor, sample: torch.Tensor | None = None) -> torch.Tensor:
        """(N,) scores of (N, classes) outputs; row i belongs to digit `sample[i]` (by default the rows
        are whole copies of the batch one after the other, as in a batch of perturbed inputs)."""
        if sample is None:
            sample = torch.arange(len(outputs), device=outputs.device) % len(self.target)
        rows = torch.arange(len(outputs), device=outputs.device)
        score = outputs[rows, self.target[sample]]
        if self.contrast is not None:
            score = score - outputs[rows, self.contrast[sample]]
        return score


Select = Callable[[torch.Tensor], Objective]  # resolves the objective from the batch's logits


class Attribution(NamedTuple):
    attributions: torch.Tensor  # (B, 28, 28) raw, in the method's own units and sign
    logits: torch.Tensor  # (B, classes) of the unperturbed digits
    objective: Objective


class Method(ABC):
    """One explanation method; subclasses are frozen dataclasses holding its options."""

    name: ClassVar[str]
    layer: str | None = None  # the hooked layer, for the layer-based methods

    @abstractmethod
    def attribute(self, model: nn.Module, images: torch.Tensor, select: Select) -> Attribution:
        """Explain a batch (B, 1, 28, 28) in one batched pass; `select` picks the classes from the logits
        of the method's own forward pass, so that no extra pass is spent on finding the prediction."""


def _classes(spec: TargetSpec, logits: torch.Tensor, what: str) -> torch.Tensor:
    batch, num_classes = logits.shape
    if isinstance(spec, str):
        if spec not in ("predicted", "runner_up"):
            raise DigitStudioError(
                f"{what} must be 'predicted', 'runner_up', a class or one class per digit; got '{spec}'"
            )
        return logits.topk(2, dim=1).indices[:, 0 if spec == "predicted" else 1]
    classes = torch.as_tensor(spec, device=logits.device)
    if classes.dtype.is_floating_point or classes.dtype == torch.bool or classes.dim() > 1:
        raise DigitStudioError(f"{what} must be integer classes; got {spec!r}")
    classes = classes.long().expand(batch) if classes.dim() == 0 else classes.long()
    if len(classes) != batch:
        raise DigitStudioError(
            f"{what} gives {len(classes)} classes for {batch} digits; give one per digit or one for all"
        )
    if ((classes < 0) | (classes >= num_classes)).any():
        raise DigitStudioError(f"{what} classes must be between 0 and {num_classes - 1}; got {classes.tolist()}")
    return classes


def resolve_objective(logits: torch.Tensor, target: TargetSpec, contrast: TargetSpec | None) -> Objective:
    classes = _classes(target, logits, "target")
    if contrast is None:
        return Objective(classes)
    against = _classes(contrast, logits, "contrast")
    same = (against == classes).nonzero().flatten().tolist()
    if same:
        raise DigitStudioError(
            f"contrast class equals the target class for digit(s) {same}; pick another class to contrast with"
        )
    return Objective(classes, against)


def check_model(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """The model's device and dtype; a model in training mode is refused (dropout and batch statistics
    would make the maps random, and switching its mode here would race with other threads using it)."""
    if not isinstance(model, nn.Module):
        raise DigitStudioError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if model.training:
        raise DigitStudioError("the model is in training mode; call model.eval() before explaining its readings")
    parameter = next(model.parameters(), None)
    if parameter is None:
        raise DigitStudioError(f"{type(model).__name__} has no parameters; explain a trained classifier")
    return parameter.device, parameter.dtype


def check_images(images: torch.Tensor, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, 1, 28, 28) floats in [0, 1] on the model's device and dtype, usable by autograd even if they
    were made in inference mode."""
    if not isinstance(images, torch.Tensor):
        raise DigitStudioError(f"images must be a torch.Tensor of shape (B, 1, 28, 28), got {type(images).__name__}")
    if images.dim() != 4 or images.shape[0] == 0 or tuple(images.shape[1:]) != (1, IMAGE_SIZE, IMAGE_SIZE):
        raise DigitStudioError(f"images must have shape (B, 1, 28, 28) with B >= 1, got {tuple(images.shape)}")
    if not images.dtype.is_floating_point:
        raise DigitStudioError(f"images must be floats in [0, 1], got dtype {images.dtype}")
    with torch.inference_mode(False):
        images = images.to(device, dtype).clone()  # a clone is a normal tensor, never an inference one
    if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise DigitStudioError("images must hold finite values in [0, 1] (ink light on dark, MNIST's convention)")
    return images


def unit_range(attributions: torch.Tensor) -> torch.Tensor:
    """Positive evidence rescaled to [0, 1] per map (rectify, then min-max, as pytorch-grad-cam scales
    its maps); independent of the attributions' scale, an all-zero map stays zero."""
    flat = attributions.clamp(min=0).flatten(1)
    flat = flat - flat.amin(1, keepdim=True)
    peak = flat.amax(1, keepdim=True).clamp(min=torch.finfo(flat.dtype).tiny)
    return (flat / peak).view_as(attributions)


@dataclass(frozen=True)
class Explanation:
    """Maps for a batch of digits, with what they explain and how faithful they are."""

    method: str
    layer: str | None  # the hooked layer for the CAM methods
    maps: torch.Tensor  # (B, 28, 28) in [0, 1]: positive evidence, what the studio shows
    attributions: torch.Tensor  # (B, 28, 28) raw and signed (IG, occlusion), in the method's units
    target: torch.Tensor  # (B,) class explained
    contrast: torch.Tensor | None  # (B,) class explained against, for a contrastive map
    probabilities: torch.Tensor  # (B, classes) of the digits
    faithfulness: Faithfulness | None

    @property
    def predicted(self) -> torch.Tensor:
        return self.probabilities.argmax(1)
