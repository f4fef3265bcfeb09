"""Our maps are the reference libraries' maps: Grad-CAM, Grad-CAM++ and HiResCAM against pytorch-grad-cam,
Integrated Gradients and occlusion against Captum, on the shipped model and real MNIST digits.

pytorch-grad-cam rescales each map to [0, 1] (rectify, min-max); ours are compared after the same
scaling (`maps`), and Captum's raw attributions both raw and after that scaling."""

from __future__ import annotations

import pytest
import torch

from digit_studio.explain import CANDIDATE_LAYERS, explain
from digit_studio.explain.base import unit_range

DEV_DEPENDENCY = "test-only dependency: pip install -r requirements-dev.txt"
pytorch_grad_cam = pytest.importorskip("pytorch_grad_cam", reason=DEV_DEPENDENCY)
captum_attr = pytest.importorskip("captum.attr", reason=DEV_DEPENDENCY)
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

LIBRARY_CAMS = {
    "gradcam": pytorch_grad_cam.GradCAM, "gradcam++": pytorch_grad_cam.GradCAMPlusPlus,
    "hirescam": pytorch_grad_cam.HiResCAM,
}
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def digits(mnist_test):
    return mnist_test.batch(slice(0, 32))


def library_cam(method: str, model, layer: str, images: torch.Tensor, target: int | None) -> torch.Tensor:
    targets = None if target is None else [ClassifierOutputTarget(target)] * len(images)
    with LIBRARY_CAMS[method](model, [model.get_submodule(layer)]) as cam:
        return torch.from_numpy(cam(images, targets=targets))


@pytest.mark.parametrize("method", list(LIBRARY_CAMS))
@pytest.mark.parametrize("layer", CANDIDATE_LAYERS)
def test_cams_match_pytorch_grad_cam_at_every_layer_and_class(classifier, digits, method, layer):
    images, _ = digits
    for target in (None, 3):
        ours = explain(
            classifier, images, method, target="predicted" if target is None else target, layer=layer,
            faithfulness_steps=None,
        ).maps
        assert (ours - library_cam(method, classifier, layer, images, target)).abs().max() <= TOLERANCE


@pytest.mark.parametrize("steps, baseline", [(32, 0.0), (8, 0.0), (16, 0.25)])
def test_integrated_gradients_match_captum(classifier, digits, steps, baseline):
    images, _ = digits
    ours = explain(classifier, images, "integrated_gradients", steps=steps, baseline=baseline, faithfulness_steps=None)
    theirs = captum_attr.IntegratedGradients(classifier).attribute(
        images, baselines=baseline, target=ours.target, n_steps=steps, method="gausslegendre"
    )[:, 0]
    assert (ours.attributions - theirs).abs().max() <= TOLERANCE
    assert (ours.maps - unit_range(theirs)).abs().max() <= TOLERANCE


@pytest.mark.parametrize("window, stride, fill", [(4, 2, 0.0), (5, 3, 0.0), (6, 4, 0.5)])
def test_occlusion_matches_captum(classifier, digits, window, stride, fill):
    images = digits[0][:16]  # Captum slides one window at a time
    ours = explain(classifier, images, "occlusion", window=window, stride=stride, fill=fill, faithfulness_steps=None)
    theirs = captum_attr.Occlusion(classifier).attribute(
        images, sliding_window_shapes=(1, window, window), strides=(1, stride, stride), baselines=fill,
        target=ours.target, perturbations_per_eval=256,
    )[:, 0]
    assert (ours.attributions - theirs).abs().max() <= TOLERANCE
    assert (ours.maps - unit_range(theirs)).abs().max() <= TOLERANCE
