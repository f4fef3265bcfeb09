"""Training and inference throughput of the default classifier on this machine's CPU.

    python bench/train_speed.py [--config configs/classifier.yaml] [--steps 60]

Times the real training loop (augmentation, forward, backward, AdamW step) and batched and single-digit
inference, and writes results/bench/train_speed.json.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from digit_studio import cli
from digit_studio.config import ClassifierConfig, load_config
from digit_studio.models.classifier import DigitCNN, count_parameters
from digit_studio.runtime import seed_everything
from digit_studio.training.classifier import CHANNELS_LAST, ClassifierTask
from digit_studio.training.data import load_mnist, load_splits
from digit_studio.training.loop import make_optimizer, make_scheduler, train_epoch

OUT = Path("results/bench/train_speed.json")


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--config", default="configs/classifier.yaml")
    parser.add_argument("--steps", type=int, default=60, help="timed training steps")
    args = parser.parse_args()
    config: ClassifierConfig = load_config(ClassifierConfig, args.config)
    generator = seed_everything(config.seed)
    device = torch.device("cpu")
    train, _ = load_splits(config.data)
    test = load_mnist(config.data, train=False)

    model = DigitCNN(config.model).to(memory_format=CHANNELS_LAST)
    t = config.training
    optimizer = make_optimizer(model, t.lr, t.weight_decay)
    scheduler = make_scheduler(optimizer, t.schedule, t.lr, math.ceil(len(train) / t.batch_size))
    task = ClassifierTask(train, config, device)
    train_epoch(model, task, optimizer, scheduler, generator, t.batch_size, 10, "warm-up")
    started = time.perf_counter()
    train_epoch(model, task, optimizer, scheduler, generator, t.batch_size, args.steps, "timed")
    train_rate = args.steps * config.training.batch_size / (time.perf_counter() - started)

    model.eval()
    with torch.inference_mode():
        images, _ = test.batch(slice(0, 1000))
        model(images)
        started = time.perf_counter()
        for _ in range(5):
            model(images)
        batch_rate = 5 * 1000 / (time.perf_counter() - started)
        single = []
        for i in range(200):
            one, _ = test.batch(slice(i, i + 1))
            t0 = time.perf_counter()
            model(one)
            single.append(time.perf_counter() - t0)

    result = {
        "parameters": count_parameters(model),
        "train_batch_size": config.training.batch_size,
        "train_samples_per_s": round(train_rate, 1),
        "train_epoch_seconds_estimate": round(len(train) / train_rate, 1),
        "inference_batch_1000_samples_per_s": round(batch_rate, 1),
        "inference_single_digit_median_ms": round(statistics.median(single) * 1000, 3),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
