"""Evaluate a classifier checkpoint on the full MNIST test set.

    python evaluate_classifier.py --config configs/classifier.yaml --checkpoint checkpoints/classifier.safetensors

Prints per-class precision, recall and F1; writes results/classifier/evaluation.{json,md}, the confusion
matrix, the reliability diagram, the most confident mistakes, results/test_predictions.png and
results/misclassified_gradcam.png (Grad-CAM maps of the mistakes for the class read and the true class).
"""

from __future__ import annotations

import argparse
import time

from digit_studio.cli import run_script
from digit_studio.config import ClassifierConfig, add_config_arguments, config_from_args
from digit_studio.data import load_mnist
from digit_studio.evaluation import evaluate_checkpoint
from digit_studio.explain.overlay import plot_misclassified_explanations
from digit_studio.models.classifier import load_classifier
from digit_studio.runtime import resolve_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, ClassifierConfig, "configs/classifier.yaml")
    parser.add_argument("--checkpoint", help="classifier checkpoint (default: the config's output.checkpoint)")
    args = parser.parse_args()
    config = config_from_args(args, ClassifierConfig)
    started = time.perf_counter()
    checkpoint, device = args.checkpoint or config.output.checkpoint, resolve_device(config.device)
    metrics = evaluate_checkpoint(
        checkpoint, config.data, config.output.results_dir, config.training.eval_batch_size, device
    )
    plot_misclassified_explanations(
        load_classifier(checkpoint, device)[0], load_mnist(config.data, train=False),
        "results/misclassified_gradcam.png", batch_size=config.training.eval_batch_size,
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
