"""Evaluate a classifier checkpoint on the full MNIST test set.

    python evaluate_classifier.py --config configs/classifier.yaml --checkpoint checkpoints/classifier.safetensors

Prints per-class precision, recall and F1; writes results/classifier/evaluation.{json,md}, the confusion
matrix, the reliability diagram, the most confident mistakes, results/test_predictions.png and
results/classifier/misclassified_gradcam.png (Grad-CAM maps of the mistakes for the class read and the true class).
"""

from __future__ import annotations

import time
from pathlib import Path

from digit_studio import cli
from digit_studio.cli import run_script
from digit_studio.config import ClassifierConfig, add_config_arguments, config_from_args

OPTIONS = ("device", "data", "training.eval_batch_size", "output")  # what evaluation uses of the config


def main() -> None:
    parser = cli.parser(__doc__)
    add_config_arguments(parser, ClassifierConfig, "configs/classifier.yaml", only=OPTIONS)
    parser.add_argument("--checkpoint", help="classifier checkpoint (default: the config's output.checkpoint)")
    args = parser.parse_args()
    config = config_from_args(args, ClassifierConfig)
    # torch and the models load only now: --help answers at once
    from digit_studio.models.classifier import load_classifier
    from digit_studio.runtime import resolve_device
    from digit_studio.training.data import load_mnist
    from digit_studio.training.evaluation import evaluate_checkpoint
    from digit_studio.training.explanation_figures import plot_misclassified_explanations

    started = time.perf_counter()
    checkpoint, device = args.checkpoint or config.output.checkpoint, resolve_device(config.device)
    metrics = evaluate_checkpoint(
        checkpoint, config.data, config.output.results_dir, config.training.eval_batch_size, device
    )
    plot_misclassified_explanations(
        load_classifier(checkpoint, device)[0], load_mnist(config.data, train=False),
        Path(config.output.results_dir) / "misclassified_gradcam.png", batch_size=config.training.eval_batch_size,
    )
    print(f"{'class':>6} {'precision':>9} {'recall':>7} {'F1':>7} {'support':>8}")
    for name, row in metrics["per_class"].items():
        print(f"{name:>6} {row['precision']:>9.4f} {row['recall']:>7.4f} {row['f1']:>7.4f} {row['support']:>8}")
    print(
        f"accuracy {metrics['accuracy']:.4%} ({metrics['errors']} errors of {metrics['test_images']}), "
        f"ECE {metrics['ece']:.4f}, {time.perf_counter() - started:.1f}s -> {config.output.results_dir}/"
    )


if __name__ == "__main__":
    run_script(main)
