"""How faithful are the explanations, and do they pass the sanity checks?

    flock /tmp/digit_cpu.lock python bench/explain_quality.py [--digits 1000]

On the shipped classifier and the first `digits` MNIST test digits (predicted class):
- every method's mean deletion and insertion AUC against the random ink order's, Grad-CAM, Grad-CAM++
  and HiResCAM at every candidate layer (this picks the default layer: the largest insertion minus
  deletion AUC of Grad-CAM), plus the contrastive Grad-CAM map (predicted vs runner-up);
- Integrated Gradients' completeness error (attributions' sum against the logit change);
- the sanity checks (cascading randomisation, shuffled labels) on `sanity_digits` digits, pass or fail;
- pictures: results/explanations.png (digits × methods) and results/explanations_drawing.png (a drawing
  of six test digits with their Grad-CAM maps placed back at their boxes).
Writes results/bench/explain_quality.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from digit_studio import cli
from digit_studio.cli import run_script
from digit_studio.config import DataConfig
from digit_studio.explain import (
    CANDIDATE_LAYERS,
    DEFAULT_LAYER,
    DEFAULT_STEPS,
    METHODS,
    Faithfulness,
    Method,
    Objective,
    explain,
    get_method,
)
from digit_studio.explain.faithfulness import curves, ink_ranks
from digit_studio.models.classifier import load_classifier
from digit_studio.research.sanity import (
    WELL_BELOW,
    cascading_randomization,
    label_randomization,
    label_randomization_models,
    passes_cascading,
    passes_label_randomization,
)
from digit_studio.training.data import load_mnist
from digit_studio.training.explanation_figures import write_explanation_figures

CAMS = ("gradcam", "gradcam++", "hirescam")


def summarise(deletion: torch.Tensor, insertion: torch.Tensor, random_deletion: torch.Tensor,
              random_insertion: torch.Tensor) -> dict[str, float]:
    """Mean AUCs of the maps and of the random order, and how often a map beats it on the same digit."""
    deletion, insertion = Faithfulness.area(deletion), Faithfulness.area(insertion)
    random_deletion, random_insertion = Faithfulness.area(random_deletion), Faithfulness.area(random_insertion)
    return {
        "deletion_auc": round(deletion.mean().item(), 4),
        "random_deletion_auc": round(random_deletion.mean().item(), 4),
        "insertion_auc": round(insertion.mean().item(), 4),
        "random_insertion_auc": round(random_insertion.mean().item(), 4),
        "insertion_minus_deletion": round((insertion - deletion).mean().item(), 4),
        "share_beating_random_deletion": round((deletion < random_deletion).float().mean().item(), 3),
        "share_beating_random_insertion": round((insertion > random_insertion).float().mean().item(), 3),
    }


def faithfulness_table(
    model, images: torch.Tensor, methods: dict[str, Method], contrast: str | None, chunk: int, seed: int
) -> dict[str, dict[str, float]]:
    """Faithfulness of each method's maps over all images, chunk by chunk, beside one random ink order
    per digit shared by all methods."""
    generator = torch.Generator().manual_seed(seed)
    found: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {name: [] for name in ["random", *methods]}
    for start in range(0, len(images), chunk):
        batch = images[start : start + chunk]
        ink = batch.flatten(1) != 0
        orders: dict[str, torch.Tensor] = {}
        for name, method in methods.items():
            result = explain(model, batch, method, contrast=contrast, faithfulness_steps=None)
            orders[name] = result.attributions.flatten(1)
        orders["random"] = torch.rand(ink.shape, generator=generator)
        objective = Objective(result.target, result.contrast)  # the same classes for every method
        for name, order in orders.items():
            ranks = ink_ranks(order, ink, generator)[:, None]
            deletion, insertion = curves(model, batch, result.probabilities, ranks, objective, DEFAULT_STEPS)
            found[name].append((deletion[:, 0], insertion[:, 0]))
    cat = {name: [torch.cat(parts) for parts in zip(*pairs)] for name, pairs in found.items()}
    return {name: summarise(*cat[name], *cat["random"]) for name in methods}


def ig_completeness(model, images: torch.Tensor, steps: int) -> dict[str, float]:
    """|sum of attributions - (logit(digit) - logit(blank))| relative to the logit change."""
    result = explain(model, images, "integrated_gradients", steps=steps, faithfulness_steps=None)
    with torch.no_grad():
        change = (model(images) - model(torch.zeros_like(images[:1]))).gather(1, result.target[:, None])[:, 0]
    error = (result.attributions.flatten(1).sum(1) - change).abs() / change.abs()
    return {
        "steps": steps, "mean_relative_error": round(error.mean().item(), 5),
        "max_relative_error": round(error.max().item(), 5),
    }


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--checkpoint", default="checkpoints/classifier.safetensors")
    parser.add_argument("--digits", type=int, default=1000)
    parser.add_argument("--sanity-digits", type=int, default=100)
    parser.add_argument("--chunk", type=int, default=50, help="digits per batch (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/bench/explain_quality.json")
    parser.add_argument("--pictures", default="results", help="folder for the pictures (default: %(default)s)")
    args = parser.parse_args()
    started = time.perf_counter()

    model, _ = load_classifier(args.checkpoint)
    data = DataConfig(download=False)
    test = load_mnist(data, train=False)
    images, labels = test.batch(slice(0, args.digits))

    sweep = {f"{name}@{layer}": get_method(name, layer=layer) for name in CAMS for layer in CANDIDATE_LAYERS}
    others = {name: get_method(name) for name in ("integrated_gradients", "occlusion")}
    table = faithfulness_table(model, images, {**sweep, **others}, None, args.chunk, args.seed)
    methods: dict[str, dict] = {name: {} for name in CAMS}
    for key, summary in table.items():
        print(f"{key:24s} {summary}", flush=True)
        name, _, layer = key.partition("@")
        if layer:
            methods[name][layer] = summary
        else:
            methods[name] = summary
    contrastive = faithfulness_table(
        model, images, {"gradcam": get_method("gradcam")}, "runner_up", args.chunk, args.seed
    )
    methods["gradcam_contrast_runner_up"] = contrastive["gradcam"]
    best_layer = max(CANDIDATE_LAYERS, key=lambda layer: methods["gradcam"][layer]["insertion_minus_deletion"])

    sanity_images, sanity_labels = images[: args.sanity_digits], labels[: args.sanity_digits]
    label_models = label_randomization_models(load_mnist(data, train=True), seed=args.seed)
    sanity = {}
    for name in METHODS:
        cascade = cascading_randomization(model, sanity_images, name, sanity_labels, seed=args.seed)
        labels_check = label_randomization(label_models, sanity_images, sanity_labels, name)
        sanity[name] = {
            "cascading_randomization": {k: round(v, 3) for k, v in cascade.items()},
            "passes_cascading_randomization": passes_cascading(cascade),
            "label_randomization": {k: round(v, 3) for k, v in labels_check.items()},
            "passes_label_randomization": passes_label_randomization(labels_check),
        }
        print(f"sanity {name}: {sanity[name]}", flush=True)

    report = {
        "digits": args.digits,
        "target": "predicted class",
        "faithfulness": {
            "steps": DEFAULT_STEPS,
            "measure": "deletion/insertion of the digit's ink pixels in the map's order, 10 % of the ink per "
            "step, score = probability of the target class; AUC over the fraction of ink; random = a random "
            "ink order for the same digit",
            "methods": methods,
        },
        "default_layer": {
            "chosen_by_faithfulness": best_layer, "in_code": DEFAULT_LAYER, "matches": best_layer == DEFAULT_LAYER,
            "criterion": "largest mean insertion AUC minus deletion AUC of Grad-CAM",
        },
        "integrated_gradients_completeness": ig_completeness(model, images[: args.sanity_digits], 32),
        "sanity": {
            "digits": args.sanity_digits,
            "criterion": f"mean Spearman correlation at most {WELL_BELOW} x the reference (1 for the trained "
            "model with itself; two true-label models with each other for shuffled labels); the cascade "
            "must pass at every block",
            "methods": sanity,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")

    write_explanation_figures(model, images, Path(args.pictures))
    print(json.dumps({k: report[k] for k in ("default_layer", "integrated_gradients_completeness", "seconds")}))


if __name__ == "__main__":
    run_script(main)
