"""Reading whole numbers drawn the way the sketchpad draws them, made from MNIST test digits.

    flock /tmp/digit_cpu.lock python bench/multidigit.py [--per-category 500] [--seed 0]

A fixed-seed set of drawings (800-px-wide white canvas, opaque black strokes of one brush width, see
digit_studio.synth) of 1 to 10 digits in five categories: well separated; at least one touching or
slightly overlapping pair (ink in contact or overlapping by up to 8 % of the digit height, their boxes by
at most a quarter of the narrower digit's width: synth.Style.box_overlap); a digit broken into two strokes;
slanted or uneven baseline; two lines.
Reports exact-string, per-digit (longest common subsequence of the digits) and digit-count accuracy
per category and overall, where the misses come from, the exact accuracy the classifier would reach if
every symbol were segmented perfectly (each digit's own ink, classified as the reader classifies a piece:
the ceiling that segmentation can approach), and reading latency: every drawing's, and the
median over 6-digit drawings on an 800×800 canvas sent as the sketchpad's value (segmentation and
classification). Writes results/bench/multidigit.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from digit_studio.cli import run_script
from digit_studio.config import DataConfig
from digit_studio.data import load_mnist
from digit_studio.reader import DEFAULT_CLASSIFIER, DEFAULT_VAE, Reader
from digit_studio.synth import Drawing, Style, draw_number, pick_digits

ONE_LINE, TWO_LINES = (800, 400), (800, 600)
CATEGORIES: dict[str, tuple[Style, int]] = {  # style, fewest digits
    "separated": (Style(canvas=ONE_LINE), 1),
    "touching": (Style(canvas=ONE_LINE, touching=2), 2),
    "broken": (Style(canvas=ONE_LINE, broken=1), 1),
    "slanted": (Style(canvas=ONE_LINE, slope_deg=(5.0, 15.0), jitter=0.08, size_jitter=0.15), 2),
    "two_lines": (Style(canvas=TWO_LINES), 2),
}
BARS = {"separated": 0.99, "touching": 0.95, "overall": 0.97}
LATENCY_BAR_MS = 30.0


def random_text(rng: np.random.Generator, fewest: int, lines: int) -> str:
    count = int(rng.integers(fewest, 11))
    digits = "".join(str(d) for d in rng.integers(0, 10, count))
    if lines == 1:
        return digits
    cut = int(rng.integers(1, count))
    return digits[:cut] + "\n" + digits[cut:]


def lcs(a: str, b: str) -> int:
    row = [0] * (len(b) + 1)
    for ca in a:
        prev = 0
        for j, cb in enumerate(b):
            prev, row[j + 1] = row[j + 1], prev + 1 if ca == cb else max(row[j + 1], row[j])
    return row[-1]


def score(category: str, drawings: list[Drawing], reader: Reader) -> dict:
    exact = digits = digit_total = count_ok = oracle = 0
    times, misses, causes = [], [], Counter()
    for drawing in drawings:
        start = time.perf_counter()
        text = reader.read(drawing.image).text
        times.append(time.perf_counter() - start)
        _, probs, _ = reader.classify([m for m, c in zip(drawing.masks, drawing.text.replace("\n", "")) if c.isdigit()])
        oracle += "".join(str(int(i)) for i in probs.argmax(1)) == drawing.text.replace("\n", "")
        truth, read = drawing.text.replace("\n", ""), text.replace("\n", "")
        exact += text == drawing.text
        count_ok += len(read) == len(truth)
        digits += lcs(truth, read)
        digit_total += len(truth)
        if text != drawing.text:
            if len(read) != len(truth):
                causes["too many symbols" if len(read) > len(truth) else "too few symbols"] += 1
            elif read != truth:
                causes["a digit misread"] += 1
            else:
                causes["lines split wrongly"] += 1
            misses.append({"truth": drawing.text, "read": text})
    n = len(drawings)
    return {
        "images": n, "exact": exact / n, "exact_if_segmented_perfectly": oracle / n,
        "per_digit": digits / digit_total, "digit_count": count_ok / n,
        "median_ms": 1000 * statistics.median(times), "misses": n - exact, "causes": dict(causes),
        "examples": misses[:15],
    }


def latency(reader: Reader, split, rng: np.random.Generator, count: int) -> dict:
    """Median reading time of 6-digit drawings on an 800×800 canvas, as the sketchpad sends them."""
    values = [
        draw_number(text, pick_digits(split, text, rng), rng, Style(canvas=(800, 800))).sketchpad_value()
        for text in ("".join(map(str, rng.integers(0, 10, 6))) for _ in range(count))
    ]
    reader.read(values[0])  # warm-up
    times = []
    for value in values:
        start = time.perf_counter()
        reader.read(value)
        times.append(1000 * (time.perf_counter() - start))
    return {"drawings": count, "median_ms": statistics.median(times), "p90_ms": float(np.percentile(times, 90))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-category", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classifier", default=DEFAULT_CLASSIFIER)
    parser.add_argument("--vae", default=DEFAULT_VAE)
    parser.add_argument("--no-vae", dest="vae", action="store_const", const=None, help="read without the VAE")
    parser.add_argument("--train-digits", action="store_true", help="draw MNIST training digits (for tuning)")
    parser.add_argument("--out", default="results/bench/multidigit.json")
    args = parser.parse_args()
    split = load_mnist(DataConfig(download=False), train=args.train_digits)
    reader = Reader.from_checkpoint(args.classifier, args.vae)
    rng = np.random.default_rng(args.seed)
    report = {"categories": {}}
    for category, (style, fewest) in CATEGORIES.items():
        lines = 2 if category == "two_lines" else 1
        texts = [random_text(rng, fewest, lines) for _ in range(args.per_category)]
        drawings = [draw_number(t, pick_digits(split, t, rng), rng, style) for t in texts]
        report["categories"][category] = score(category, drawings, reader)
        r = report["categories"][category]
        print(f"{category:10s} exact {r['exact']:.2%} (perfectly segmented {r['exact_if_segmented_perfectly']:.2%})  per digit {r['per_digit']:.2%}  count {r['digit_count']:.2%}  "
              f"median {r['median_ms']:.1f} ms  misses {r['causes']}")
    cats = report["categories"].values()
    total = sum(c["images"] for c in cats)
    report["overall"] = {k: sum(c[k] * c["images"] for c in cats) / total for k in ("exact", "exact_if_segmented_perfectly", "per_digit", "digit_count")}
    report["overall"]["images"] = total
    report["latency_6_digits_800x800"] = latency(reader, split, rng, 200)
    exact = {**{k: report["categories"][k]["exact"] for k in ("separated", "touching")}, "overall": report["overall"]["exact"]}
    report["bars"] = {
        **{f"exact_{k}>={v}": exact[k] >= v for k, v in BARS.items()},
        f"latency_median<={LATENCY_BAR_MS}ms": report["latency_6_digits_800x800"]["median_ms"] <= LATENCY_BAR_MS,
    }
    report["setup"] = {
        "seed": args.seed, "per_category": args.per_category, "digits": "train" if args.train_digits else "test",
        "classifier": str(args.classifier), "vae": args.vae and str(args.vae), "torch_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
    }
    print(f"overall    exact {report['overall']['exact']:.2%}  latency {report['latency_6_digits_800x800']}")
    print("bars:", report["bars"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    run_script(main)
