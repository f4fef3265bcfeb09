"""Train the CTC line reader: a compact CRNN that reads a whole line of ink without cutting it into symbols.

    python train_line_reader.py --config configs/line_reader.yaml [--training.epochs 2] [--device cpu]

Lines are drawn on the fly from MNIST training digits the way the sketchpad draws them. Keeps the epoch
that reads the most validation lines exactly, reads a fixed set of lines made from MNIST test digits, and
writes the checkpoint (safetensors with its configs and metrics), results/line_reader/metrics.json and
test_lines.png.
"""

from __future__ import annotations

from digit_studio import cli
from digit_studio.cli import run_script
from digit_studio.config import LineReaderConfig, config_from_args


def main() -> None:
    args = cli.training_parser(__doc__, LineReaderConfig, "configs/line_reader.yaml").parse_args()
    config = config_from_args(args, LineReaderConfig)
    from digit_studio.training.line_reader import train_line_reader  # torch loads only now: --help answers at once

    metrics = train_line_reader(config, resume=args.resume)
    test = metrics["test"]
    print(
        f"best epoch {metrics['best_epoch']}: validation exact {metrics['val_exact']:.2%}, test exact "
        f"{test['overall']['exact']:.2%} (touching {test['touching']['exact']:.2%}), "
        f"CER {test['overall']['cer']:.2%}, {metrics['parameters']:,} parameters, "
        f"{metrics['train_seconds']:.0f}s of training -> {config.output.checkpoint}"
    )


if __name__ == "__main__":
    run_script(main)
