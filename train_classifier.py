"""Train the compact MNIST classifier.

    python train_classifier.py --config configs/classifier.yaml [--training.epochs 3] [--device cpu]

Keeps the best-validation epoch, scores it on the test set, and writes the checkpoint (safetensors with
its configs and metrics), results/classifier/metrics.json and the training curves.
"""

from __future__ import annotations

from digit_studio import cli
from digit_studio.cli import run_script
from digit_studio.config import ClassifierConfig, config_from_args


def main() -> None:
    args = cli.training_parser(__doc__, ClassifierConfig, "configs/classifier.yaml").parse_args()
    config = config_from_args(args, ClassifierConfig)
    from digit_studio.training.classifier import train_classifier  # torch loads only now: --help answers at once

    metrics = train_classifier(config, resume=args.resume)
    print(
        f"best epoch {metrics['best_epoch']}: validation {metrics['val_accuracy']:.4%}, "
        f"test {metrics['test_accuracy']:.4%}, {metrics['parameters']:,} parameters, "
        f"{metrics['train_seconds']:.0f}s of training -> {config.output.checkpoint}"
    )


if __name__ == "__main__":
    run_script(main)
