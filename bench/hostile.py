"""Bounded work on any drawing: the reader on drawings that are no number (or a number and something else).

    flock /tmp/digit_cpu.lock python bench/hostile.py

A lone dash, an underline, long lines of every brush width from 1 to 40 px, vertical and diagonal lines,
a zigzag, a spiral, dense hatching, a filled blob, 120 dots, a random scribble, a 4096×4096 canvas full of
long strokes and a number with an underline (digit_studio.training.synth.hostile_drawings). Each is read three times
by the whole Reader; its time is the median of the three. Writes results/bench/hostile.json with the
slowest and median times, the peak resident memory's growth over the run (after the models are loaded and
one warm-up reading) and, per drawing, what was read.
"""

from __future__ import annotations

import json
import resource
import statistics
import time
import traceback
from pathlib import Path

from digit_studio import cli
from digit_studio.cli import run_script
from digit_studio.config import DataConfig
from digit_studio.reading.reader import DEFAULT_CLASSIFIER, DEFAULT_VAE, Reader
from digit_studio.training.data import load_mnist
from digit_studio.training.synth import hostile_drawings

BARS = {"max_ms": 1000.0, "median_ms": 50.0, "peak_rss_mb": 300.0, "errors": 0}
REPEATS = 3


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports kB


def main() -> None:
    parser = cli.parser(__doc__)
    parser.add_argument("--classifier", default=DEFAULT_CLASSIFIER)
    parser.add_argument("--vae", default=DEFAULT_VAE)
    parser.add_argument("--out", default="results/bench/hostile.json")
    args = parser.parse_args()
    reader = Reader.from_checkpoint(args.classifier, args.vae)
    drawings = hostile_drawings(load_mnist(DataConfig(download=False), train=False))
    reader.read(drawings["lone dash"])  # warm-up: first calls allocate the models' working memory
    start_rss = peak_rss_mb()
    per_drawing, errors = [], 0
    for name, image in drawings.items():
        times, reading, error = [], None, None
        for _ in range(REPEATS):
            started = time.perf_counter()
            try:
                reading = reader.read(image)
            except Exception as exc:  # the bench counts every exception: there must be none
                error = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            times.append(1000 * (time.perf_counter() - started))
        errors += error is not None
        row = {"name": name, "size": [image.shape[1], image.shape[0]], "ms": round(statistics.median(times), 1)}
        if reading is not None:
            row.update(text=reading.text, message=reading.message, uncertain=reading.uncertain,
                       symbols=len(reading.symbols))
        if error:
            row["error"] = error
        per_drawing.append(row)
        print(f"{name:24s} {row['ms']:7.1f} ms  {row.get('text', '')!r:14s} "
              f"{'uncertain' if row.get('uncertain') else '':9s} {row.get('message') or row.get('error') or ''}")
    times = [r["ms"] for r in per_drawing]
    report = {
        "drawings": len(per_drawing), "max_ms": max(times), "median_ms": statistics.median(times),
        "peak_rss_mb": round(peak_rss_mb() - start_rss, 1), "errors": errors, "per_drawing": per_drawing,
    }
    report["bars"] = {f"{k}<={v}": report[k] <= v for k, v in BARS.items()}
    print({k: report[k] for k in ("drawings", "max_ms", "median_ms", "peak_rss_mb", "errors")}, report["bars"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    run_script(main)
