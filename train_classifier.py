"""Train the compact MNIST classifier.

    python train_classifier.py --config configs/classifier.yaml [--training.epochs 3] [--device cpu]

Keeps the best-validation epoch, scores it on the test set, and writes the checkpoint (safetensors with
its configs and metrics), results/classifier/metrics.json and the training curves.
"""

from __future__ import annotations

import argparse

from digit_studio.cli import run_script
from digit_studio.config import ClassifierConfig, add_config_arguments, config_from_args
from digit_studio.training import train_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, ClassifierConfig, "configs/classifier.yaml")
    parser.add_argument("--resume", metavar="FILE", help="continue from a .resume.pt file written during training")
    args = parser.parse_args()
    config = config_from_args(args, ClassifierConfig)
    metrics = train_classifier(config, resume=args.resume)
    print(
        f"best epoch {metrics['best_epoch']}: validation {metrics['val_accuracy']:.4%}, "
        f"test {metrics['test_accuracy']:.4%}, {metrics['parameters']:,} parameters, "
        f"{metrics['train_seconds']:.0f}s of training -> {config.output.checkpoint}"
    )


if __name__ == "__main__":
    run_script(main)
