"""Explanation speed for the digits of one drawing: ours against pytorch-grad-cam and Captum.

    flock /tmp/digit_cpu.lock python bench/explain_speed.py [--repeats 15]

Times, on the shipped classifier and 6 MNIST test digits (a 6-digit drawing), in one run:
- our Grad-CAM against pytorch-grad-cam's GradCAM at the same layer (its object built once, outside the
  timing; both find the predicted class themselves);
- our Integrated Gradients against Captum's with the same steps, rule and baseline (Captum needs the
  class given: its time includes the forward pass that finds it, which ours does inside its one pass;
  the attribution call alone is reported too);
- every method of ours with its faithfulness scores, the figure the studio's budget is about.
Rounds alternate between the calls (each timed over a few calls in a row) and the median of `repeats`
rounds is kept. The maps are checked to be the same.
Writes results/bench/explain_speed.json.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from captum.attr import IntegratedGradients as CaptumIG
from pytorch_grad_cam import GradCAM as LibraryGradCAM

from digit_studio import cli
from digit_studio.cli import run_script
from digit_studio.config import DataConfig
from digit_studio.explain import DEFAULT_LAYER, METHODS, explain
from digit_studio.explain.base import unit_range
from digit_studio.models.classifier import load_classifier
from digit_studio.training.data import load_mnist


def median_ms(calls: dict[str, Callable[[], object]], repeats: int, block: int = 5) -> dict[str, float]:
    """Median wall time of each call. Rounds alternate between the calls, so that drifts of the machine hit
    all alike; within a round a call runs `block` times in a row and its mean counts, so that a small call
    is not timed in the wake of a big one (the 200-image batches of Integrated Gradients leave the caches
    and the allocator cold for the next call, which would measure that, not the method)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # warm-up
        call()
    for _ in range(repeats):
        for name, call in calls.items():
            call()  # the first call after another method's pays for the switch; not counted
            start = time.perf_counter()
            for _ in range(block):
                call()
            times[name].append((time.perf_counter() - start) * 1e3 / block)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--checkpoint", default="checkpoints/classifier.safetensors")
    parser.add_argument("--digits", type=int, default=6, help="digits in the drawing (default: %(default)s)")
    parser.add_argument("--ig-steps", type=int, default=32, help="Integrated Gradients steps (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default="results/bench/explain_speed.json")
    args = parser.parse_args()

    model, _ = load_classifier(args.checkpoint)
    images, _ = load_mnist(DataConfig(download=False), train=False).batch(slice(0, args.digits))
    with torch.no_grad():
        predicted = model(images).argmax(1)
    library_cam = LibraryGradCAM(model, [model.get_submodule(DEFAULT_LAYER)])
    captum_ig = CaptumIG(model)

    def ours_gradcam() -> torch.Tensor:
        return explain(model, images, "gradcam", layer=DEFAULT_LAYER, faithfulness_steps=None).maps

    def library_gradcam() -> torch.Tensor:
        return torch.from_numpy(library_cam(images, targets=None))

    def ours_ig() -> torch.Tensor:
        return explain(model, images, "integrated_gradients", steps=args.ig_steps, faithfulness_steps=None).attributions

    def captum_ig_attribute() -> torch.Tensor:
        return captum_ig.attribute(images, target=predicted, n_steps=args.ig_steps, method="gausslegendre")[:, 0]

    def captum_ig_from_digits() -> torch.Tensor:
        with torch.no_grad():
            target = model(images).argmax(1)
        return captum_ig.attribute(images, target=target, n_steps=args.ig_steps, method="gausslegendre")[:, 0]

    ms = median_ms(
        {
            "ours_gradcam": ours_gradcam, "pytorch_grad_cam_gradcam": library_gradcam,
            "ours_integrated_gradients": ours_ig, "captum_integrated_gradients": captum_ig_from_digits,
            "captum_integrated_gradients_attribute_only": captum_ig_attribute,
        },
        args.repeats,
    )
    with_faithfulness = median_ms(
        {name: (lambda name=name: explain(model, images, name)) for name in METHODS}, max(3, args.repeats // 4)
    )
    ig_ours, ig_captum = ours_ig(), captum_ig_attribute()
    report = {
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__},
        "digits": args.digits,
        "layer": DEFAULT_LAYER,
        "ig_steps": args.ig_steps,
        "repeats": args.repeats,
        "median_ms": {name: round(value, 3) for name, value in ms.items()},
        "speedup": {
            "gradcam_vs_pytorch_grad_cam": round(ms["pytorch_grad_cam_gradcam"] / ms["ours_gradcam"], 2),
            "integrated_gradients_vs_captum": round(
                ms["captum_integrated_gradients"] / ms["ours_integrated_gradients"], 3
            ),
            "integrated_gradients_vs_captum_attribute_only": round(
                ms["captum_integrated_gradients_attribute_only"] / ms["ours_integrated_gradients"], 3
            ),
        },
        "same_maps_max_abs_diff": {
            "gradcam_unit_range": float((ours_gradcam() - library_gradcam()).abs().max()),
            "integrated_gradients_raw": float((ig_ours - ig_captum).abs().max()),
            "integrated_gradients_unit_range": float((unit_range(ig_ours) - unit_range(ig_captum)).abs().max()),
        },
        "ours_with_faithfulness_median_ms": {name: round(value, 2) for name, value in with_faithfulness.items()},
        "bars": {},
    }
    library_cam.activations_and_grads.release()
    report["bars"] = {
        "gradcam_at_least_2x_faster": report["speedup"]["gradcam_vs_pytorch_grad_cam"] >= 2,
        "integrated_gradients_no_slower": report["speedup"]["integrated_gradients_vs_captum"] >= 1,
        "same_maps_within_1e-4": all(
            v <= 1e-4 for k, v in report["same_maps_max_abs_diff"].items() if "unit_range" in k
        ),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    run_script(main)
