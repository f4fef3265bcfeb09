"""Why did the network read each digit as it did? Batched, faithfulness-scored explanations.

    from digit_studio.explain import explain
    result = explain(model, crops, "gradcam")                         # predicted class
    why_not = explain(model, crops, "gradcam", contrast="runner_up")  # "why 7 and not 1"
    result.maps            # (B, 28, 28) in [0, 1]
    result.faithfulness.deletion_auc, result.faithfulness.random_deletion_auc

Every method explains all digits of a drawing in one batched pass, is checked against pytorch-grad-cam
or Captum in the tests, and is safe to call from several threads on one model.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from digit_studio.errors import DigitStudioError
from digit_studio.explain.base import (
    Explanation,
    Method,
    Objective,
    TargetSpec,
    check_images,
    check_model,
    resolve_objective,
    unit_range,
)
from digit_studio.explain.cam import CANDIDATE_LAYERS, DEFAULT_LAYER
from digit_studio.explain.faithfulness import DEFAULT_STEPS, Faithfulness, faithfulness
from digit_studio.explain.gradcam import GradCAM
from digit_studio.explain.gradcam_plus_plus import GradCAMPlusPlus
from digit_studio.explain.hirescam import HiResCAM
from digit_studio.explain.integrated_gradients import IntegratedGradients
from digit_studio.explain.occlusion import Occlusion

METHODS: dict[str, type[Method]] = {
    cls.name: cls for cls in (GradCAM, GradCAMPlusPlus, HiResCAM, IntegratedGradients, Occlusion)
}

__all__ = [
    "CANDIDATE_LAYERS", "DEFAULT_LAYER", "DEFAULT_STEPS", "METHODS", "Explanation", "Faithfulness", "Method",
    "Objective", "explain", "get_method",
]


def get_method(method: str | Method, **options: object) -> Method:
    """A configured method: a registered name with its options (e.g. layer='stages.2', steps=64)."""
    if isinstance(method, Method):
        if options:
            raise DigitStudioError("give options either in the method object or as keywords, not both")
        return method
    if method not in METHODS:
        raise DigitStudioError(f"unknown explanation method '{method}'; choose one of {', '.join(METHODS)}")
    cls = METHODS[method]
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise DigitStudioError(
            f"unknown option '{unknown[0]}' for method '{method}' (valid: {', '.join(sorted(valid))})"
        )
    return cls(**options)


def explain(
    model: nn.Module, images: torch.Tensor, method: str | Method = "gradcam", target: TargetSpec = "predicted",
    contrast: TargetSpec | None = None, faithfulness_steps: int | None = DEFAULT_STEPS, seed: int = 0,
    **options: object,
) -> Explanation:
    """Explain a batch of digits (B, 1, 28, 28), floats in [0, 1] as the classifier takes them.

    target: 'predicted', 'runner_up', a class for all digits, or one class per digit.
    contrast: None, or a class (same forms) to explain the target against: the map of
        logit[target] - logit[contrast], i.e. the evidence for the target that is not evidence for it.
    faithfulness_steps: points of the deletion/insertion curves; None skips the faithfulness scores.
    seed: of the random pixel order that the faithfulness scores are compared with.
    options: the method's options, e.g. layer='stages.2' for the CAMs, steps=64 for IG.
    """
    explainer = get_method(method, **options)
    if faithfulness_steps is not None and (not isinstance(faithfulness_steps, int) or faithfulness_steps < 1):
        raise DigitStudioError(f"faithfulness_steps must be a positive integer or None, got {faithfulness_steps!r}")
    images = check_images(images, *check_model(model))
    result = explainer.attribute(model, images, lambda logits: resolve_objective(logits, target, contrast))
    scores = None
    if faithfulness_steps is not None:
        scores = faithfulness(
            model, images, result.logits, result.attributions, result.objective, faithfulness_steps, seed
        )
    return Explanation(
        method=explainer.name, layer=explainer.layer, maps=unit_range(result.attributions),
        attributions=result.attributions, target=result.objective.target, contrast=result.objective.contrast,
        probabilities=result.logits.softmax(1), faithfulness=scores,
    )
