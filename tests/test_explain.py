"""Explanations: one batched interface for every method, targets and contrasts, faithfulness scores,
input errors, hooks released, no memory growth, thread safety."""

from __future__ import annotations

import gc
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from digit_studio.errors import DigitStudioError
from digit_studio.explain import DEFAULT_STEPS, METHODS, explain
from digit_studio.explain.base import Objective
from digit_studio.explain.faithfulness import curves, ink_ranks

# Options that keep the many calls of the memory and thread tests cheap.
QUICK = {
    "gradcam": {}, "gradcam++": {"layer": "stages.1.1"}, "hirescam": {"layer": "stages.0"},
    "integrated_gradients": {"steps": 4}, "occlusion": {"window": 14, "stride": 14},
}


@pytest.fixture(scope="module")
def digits(mnist_test):
    return mnist_test.batch(slice(0, 6))


def forward_hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_explains_a_batch_as_it_explains_each_digit(classifier, digits, method):
    images, _ = digits
    result = explain(classifier, images, method)
    with torch.no_grad():
        logits = classifier(images)
    assert result.maps.shape == result.attributions.shape == (6, 28, 28)
    assert result.maps.min() >= 0 and torch.allclose(result.maps.amax((1, 2)), torch.ones(6), atol=1e-3)
    assert torch.equal(result.target, logits.argmax(1)) and torch.equal(result.predicted, result.target)
    assert torch.allclose(result.probabilities, logits.softmax(1), atol=1e-5)
    f = result.faithfulness
    assert f.deletion.shape == f.insertion.shape == f.random_deletion.shape == (6, DEFAULT_STEPS + 1)
    for auc in (f.deletion_auc, f.insertion_auc, f.random_deletion_auc, f.random_insertion_auc):
        assert auc.shape == (6,) and ((auc >= 0) & (auc <= 1)).all()
    one_by_one = [explain(classifier, images[i : i + 1], method, faithfulness_steps=None).maps for i in range(6)]
    assert torch.allclose(result.maps, torch.cat(one_by_one), atol=1e-4)


def test_targets_and_contrasts(classifier, digits):
    images, labels = digits
    probabilities = explain(classifier, images, faithfulness_steps=None).probabilities
    runner_up = probabilities.topk(2).indices[:, 1]
    assert torch.equal(explain(classifier, images, target="runner_up", faithfulness_steps=None).target, runner_up)
    assert explain(classifier, images, target=3, faithfulness_steps=None).target.tolist() == [3] * 6
    assert torch.equal(explain(classifier, images, target=labels.tolist(), faithfulness_steps=None).target, labels)

    why_not = explain(classifier, images, "integrated_gradients", contrast="runner_up")
    assert torch.equal(why_not.contrast, runner_up)
    # IG is linear in the explained score: the contrastive map is the difference of the two maps.
    first = explain(classifier, images, "integrated_gradients", faithfulness_steps=None).attributions
    second = explain(classifier, images, "integrated_gradients", target=runner_up, faithfulness_steps=None).attributions
    assert torch.allclose(why_not.attributions, first - second, atol=1e-5)
    # A contrastive map is scored on p(target) - p(contrast).
    expected = probabilities.gather(1, why_not.target[:, None]) - probabilities.gather(1, runner_up[:, None])
    assert torch.allclose(why_not.faithfulness.deletion[:, 0], expected[:, 0], atol=1e-5)


def test_faithfulness_curves_match_a_step_by_step_computation(classifier, digits):
    images, _ = digits
    result = explain(classifier, images, "integrated_gradients")
    steps = DEFAULT_STEPS
    for i in range(len(images)):
        flat = images[i].flatten()
        ink = (flat > 0).nonzero().flatten()
        by_importance = ink[result.attributions[i].flatten()[ink].argsort(descending=True)]
        deleted, inserted = [], []
        for k in range(steps + 1):
            chosen = by_importance[: round(k * len(ink) / steps)]
            gone, drawn = flat.clone(), torch.zeros_like(flat)
            gone[chosen], drawn[chosen] = 0, flat[chosen]
            deleted.append(gone)
            inserted.append(drawn)
        with torch.no_grad():
            p = classifier(torch.stack(deleted + inserted).view(-1, 1, 28, 28)).softmax(1)[:, result.target[i]]
        assert torch.allclose(result.faithfulness.deletion[i], p[: steps + 1], atol=1e-5)
        assert torch.allclose(result.faithfulness.insertion[i], p[steps + 1 :], atol=1e-5)


def test_faithfulness_tells_a_map_from_its_opposite(classifier, mnist_test):
    images, _ = mnist_test.batch(slice(0, 64))
    result = explain(classifier, images, "integrated_gradients", faithfulness_steps=None)
    ink = images.flatten(1) > 0
    generator = torch.Generator().manual_seed(0)
    importance = result.attributions.flatten(1)
    ranks = torch.stack([ink_ranks(importance, ink, generator), ink_ranks(-importance, ink, generator)], 1)
    objective = Objective(result.target)
    deletion, insertion = curves(classifier, images, result.probabilities, ranks, objective, DEFAULT_STEPS)
    deletion_auc, insertion_auc = torch.trapezoid(deletion, dim=-1), torch.trapezoid(insertion, dim=-1)
    assert (deletion_auc[:, 0] < deletion_auc[:, 1]).float().mean() > 0.9
    assert (insertion_auc[:, 0] > insertion_auc[:, 1]).float().mean() > 0.9


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, x: explain(m, x[:, 0]), "shape"),
        (lambda m, x: explain(m, (x * 255).to(torch.uint8)), "floats"),
        (lambda m, x: explain(m, x * 2), "[0, 1]"),
        (lambda m, x: explain(m, x.numpy()), "torch.Tensor"),
        (lambda m, x: explain(m, x, "saliency"), "unknown explanation method"),
        (lambda m, x: explain(m, x, "gradcam", steps=3), "unknown option 'steps'"),
        (lambda m, x: explain(m, x, "gradcam", layer="stages.9"), "not a module"),
        (lambda m, x: explain(m, x, "gradcam", layer="head"), "convolutional"),
        (lambda m, x: explain(m, x, target="best"), "'predicted', 'runner_up'"),
        (lambda m, x: explain(m, x, target=[1, 2]), "one per digit"),
        (lambda m, x: explain(m, x, target=10), "between 0 and 9"),
        (lambda m, x: explain(m, x, target=1.5), "integer"),
        (lambda m, x: explain(m, x, target=3, contrast=3), "contrast class equals"),
        (lambda m, x: explain(m, x, faithfulness_steps=0), "faithfulness_steps"),
        (lambda m, x: explain(m, x, "occlusion", window=3, stride=4), "stride <= window"),
        (lambda m, x: explain(m, x, "integrated_gradients", steps=0), "steps >= 1"),
    ],
)
def test_bad_input_is_a_clear_error_and_leaves_no_hook(classifier, digits, call, message):
    with pytest.raises(DigitStudioError, match=message.replace("[", r"\[").replace("(", r"\(")):
        call(classifier, digits[0])
    assert forward_hooks(classifier) == 0


def test_a_model_in_training_mode_is_refused(classifier, digits):
    classifier.train()
    try:
        with pytest.raises(DigitStudioError, match="model.eval"):
            explain(classifier, digits[0])
    finally:
        classifier.eval()


def test_works_inside_inference_mode(classifier, digits):
    with torch.inference_mode():
        images = digits[0].clone()
        result = explain(classifier, images, "gradcam")
    assert torch.allclose(result.maps, explain(classifier, digits[0], "gradcam").maps)


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads resident memory from /proc (Linux)")
def test_a_thousand_calls_do_not_grow_memory(classifier, digits):
    images = digits[0][:2]
    calls = list(QUICK.items())

    def run(n: int) -> None:
        for i in range(n):
            name, options = calls[i % len(calls)]
            explain(classifier, images, name, contrast="runner_up" if i % 2 else None, faithfulness_steps=2, **options)

    def tensors() -> int:
        gc.collect()
        return sum(type(o) is torch.Tensor for o in gc.get_objects())

    run(100)  # warm up the allocator and the libraries' caches
    tensors_before, rss_before = tensors(), resident_bytes()
    run(1000)
    assert tensors() <= tensors_before
    assert resident_bytes() - rss_before < 16 * 2**20  # keeping one call's activations would add > 30 MB
    assert forward_hooks(classifier) == 0


def test_threads_sharing_one_model_get_their_own_maps(classifier, mnist_test):
    jobs = [(mnist_test.batch(slice(6 * i, 6 * i + 6))[0], name, opts) for i, (name, opts) in enumerate(QUICK.items())]
    jobs += [(images.flip(-1), name, {"layer": "stages.1.0"}) for images, name, _ in jobs if name == "gradcam"]
    alone = [explain(classifier, images, name, **options).maps for images, name, options in jobs]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        for _ in range(3):
            together = list(pool.map(lambda job: explain(classifier, job[0], job[1], **job[2]).maps, jobs))
            for a, b in zip(alone, together):
                assert torch.allclose(a, b, atol=1e-5)
    assert forward_hooks(classifier) == 0
